from workers.monitor.main import run

raise SystemExit(run())
