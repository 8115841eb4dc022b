"""ws_delivery adds no subcommand besides `notifier ws-delivery`; devices listen with `notifier listen`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
