"""`notifier`: one command line for every room and tool.

`notifier <room>` starts a room (the same as `python -m workers.<room>`); the other subcommands come from
the rooms' `cli` modules and from the kernel (mapping, token, listen, demo, up).

Every module is imported only when its command runs: `notifier clean USER` loads the cleaner and nothing of
the other rooms. Importing every room up front made each command cost about 85 MB of memory in a pod and put
every room's Prometheus families (at 0) into every room's /metrics, since each room's `metrics` module
registers its families in the process-wide registry when it is imported. `COMMANDS` names the module of each
subcommand; tests/cli checks it against what the modules register.
"""

from __future__ import annotations

import importlib
import sys

import typer
from pydantic import ValidationError
from typer._click.core import Command, Context  # typer carries its own click; its groups take these types
from typer.core import TyperGroup

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

COMMANDS: dict[str, str] = {
    "push-valid-data": "workers.pusher.cli",
    "push-invalid-data": "workers.pusher.cli",
    "publish-reviews": "workers.pusher.cli",
    "pull": "workers.puller.cli",
    "check": "workers.monitor.cli",
    "clean": "workers.cleaner.cli",
    "mapping": "workers.cli.mapping",
    "token": "workers.cli.token",
    "listen": "workers.client.cli",
    "demo": "workers.local.cli",
    "up": "workers.local.cli",
}
"""Subcommand -> the module whose `register(app)` defines it, imported when the subcommand is looked up."""


def load_command(name: str) -> Command | None:
    """Import the module behind subcommand `name` and return its click command (None for an unknown name)."""
    module = COMMANDS.get(name)
    if module is None:
        return None
    scratch = typer.Typer()
    importlib.import_module(module).register(scratch)
    return typer.main.get_group(scratch).commands.get(name)


class LazyGroup(TyperGroup):
    """The `notifier` group: lists every subcommand, imports one only when it is looked up."""

    def list_commands(self, ctx: Context) -> list[str]:
        listed = super().list_commands(ctx)
        return [*listed, *(name for name in COMMANDS if name not in listed)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = load_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command


app = typer.Typer(
    name="notifier",
    cls=LazyGroup,
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


for _command, _package in ROOMS.items():
    _room_command(_command, _package)


def main() -> None:
    try:
        app()
    except NotifierError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except ValidationError as exc:
        err.print(f"error: invalid settings: {exc}", markup=False)
        sys.exit(2)
