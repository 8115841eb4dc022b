from __future__ import annotations

from workers.core.main import run

raise SystemExit(run())
