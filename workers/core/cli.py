"""`notifier` subcommands of core: none besides `notifier core` (started through workers.cli.main)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Core adds no subcommands; producers and users talk to it over HTTP (`notifier token` mints tokens)."""
    del app
