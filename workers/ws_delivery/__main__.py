"""`python -m workers.ws_delivery` starts the room."""

from __future__ import annotations

from workers.ws_delivery.main import run

raise SystemExit(run())
