"""`python -m workers.controller`: the same as `notifier controller`."""

from __future__ import annotations

from workers.controller.main import run

raise SystemExit(run())
