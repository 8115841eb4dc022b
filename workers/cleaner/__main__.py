from workers.cleaner.main import run

raise SystemExit(run())
