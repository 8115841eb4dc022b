from workers.pusher.main import run

raise SystemExit(run())
