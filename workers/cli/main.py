"""`notifier`: one command line for every room and tool.

`notifier <room>` starts a room (the same as `python -m workers.<room>`); the other subcommands come from
the rooms' `cli` modules and from the kernel (mapping, token).
"""

from __future__ import annotations

import importlib
import sys

import typer
from pydantic import ValidationError

from workers.common.clikit import err
from workers.common.errors import NotifierError

ROOMS: dict[str, str] = {
    "pusher": "workers.pusher",
    "puller": "workers.puller",
    "monitor": "workers.monitor",
    "cleaner": "workers.cleaner",
    "controller": "workers.controller",
    "core": "workers.core",
    "ws-delivery": "workers.ws_delivery",
}
"""Command name -> room package; each has `main.run()` and `cli.register(app)`."""

KERNEL_COMMANDS = ("workers.cli.mapping", "workers.cli.token", "workers.client.cli", "workers.local.cli")

app = typer.Typer(
    name="notifier",
    help="Notifier: aggregated review notifications, delivered reliably to every device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _room_command(command: str, package: str) -> None:
    def start() -> None:
        main = importlib.import_module(f"{package}.main")
        raise typer.Exit(main.run())

    start.__doc__ = f"Start the {command} room (the same as `python -m {package}`)."
    app.command(command)(start)


def _register() -> None:
    for command, package in ROOMS.items():
        _room_command(command, package)
        importlib.import_module(f"{package}.cli").register(app)
    for module in KERNEL_COMMANDS:
        importlib.import_module(module).register(app)


_register()


def main() -> None:
    try:
        app()
    except NotifierError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except ValidationError as exc:
        err.print(f"error: invalid settings: {exc}", markup=False)
        sys.exit(2)
