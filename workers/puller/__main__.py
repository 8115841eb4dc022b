from workers.puller.main import run

raise SystemExit(run())
