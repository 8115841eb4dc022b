"""`notifier`: one command line for every room and tool.

`notifier <room>` starts a room (the same as `python -m workers.<room>`); the other subcommands come from
the rooms' `cli` modules and from the kernel (mapping, token, listen, demo, up).

Every module is imported only when its command runs: `notifier clean USER` loads the cleaner and nothing of
the other rooms. Importing every room up front made each command cost about 85 MB of memory in a pod and put
every room's Prometheus families (at 0) into every room's /metrics, since each room's `metrics` module
registers its families in the process-wide registry when it is imported. `COMMANDS` names the module of each
subcommand and its one-line summary, so `notifier --help` lists every command without importing any of them;
tests/cli checks the table against what the modules register.

A command starts in a fraction of a second only if this module imports nothing but typer: no pydantic, no
client library, and no rich (help is plain text, `rich_markup_mode=None`; the consoles of `clikit` import rich
when they first print, and errors are written as plain lines). tests/cli/test_cli_imports.py holds the list
of what `notifier --help` and `notifier clean` must not load.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple, NoReturn

import typer
from typer._click.core import Command, Context  # typer carries its own click; its groups take these types
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from workers.common.clikit import write_error
from workers.common.contract import rooms as contract_rooms
from workers.common.contract.errors import NotifierError

ROOMS: dict[str, str] = {room.command: room.package for room in contract_rooms.ROOMS}
"""Command name -> room package; each has `main.run()` and `cli.register(app)`."""


class Lazy(NamedTuple):
    """A subcommand defined by `register(app)` in `module`, listed by `notifier --help` with `summary`."""

    module: str
    summary: str


COMMANDS: dict[str, Lazy] = {
    "push-valid-data": Lazy("workers.pusher.cli", "Push a random review for every brand, reaching every user."),
    "push-invalid-data": Lazy("workers.pusher.cli", "Push a random review under a user who belongs to no brand."),
    "publish-reviews": Lazy("workers.pusher.cli", "Publish generated ReviewEvents to the broker, with confirms."),
    "pull": Lazy("workers.puller.cli", "Drain every user who belongs to a brand and print what was drained."),
    "check": Lazy("workers.monitor.cli", "Print stale users, invalid users and the backlog once."),
    "clean": Lazy("workers.cleaner.cli", "Remove a user's bus data, or every invalid user's."),
    "mapping": Lazy("workers.cli.mapping", "The brand -> users mapping of a stream."),
    "token": Lazy("workers.cli.token", "Print a signed JWT for SUB with the given roles."),
    "listen": Lazy("workers.client.cli", "Print USER's notifications as they arrive and acknowledge each one."),
    "demo": Lazy("workers.local.cli", "Run every room locally and show reviews reaching listening devices."),
    "up": Lazy("workers.local.cli", "Run every room locally until Ctrl-C or SIGTERM."),
}
"""Subcommand -> the module whose `register(app)` defines it, imported when the subcommand is looked up."""

MARKUP = None
"""Help and usage errors as plain text: typer's rich formatting imports rich and markdown-it on every --help."""


def load_command(name: str) -> Command | None:
    """Import the module behind subcommand `name` and return its click command (None for an unknown name)."""
    lazy = COMMANDS.get(name)
    if lazy is None:
        return None
    scratch = typer.Typer(rich_markup_mode=MARKUP)
    importlib.import_module(lazy.module).register(scratch)
    command = typer.main.get_group(scratch).commands.get(name)
    if command is not None:
        command.short_help = lazy.summary
    return command


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

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The command list of `notifier --help`, from `COMMANDS` for the commands not loaded yet."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, self.commands[name].get_short_help_str(limit) if name in self.commands else COMMANDS[name].summary)
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="notifier",
    cls=LazyGroup,
    help="Notifier: aggregated review notifications, delivered reliably to every device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
)


def _room_command(command: str, package: str) -> None:
    def start() -> None:
        main = importlib.import_module(f"{package}.main")
        raise typer.Exit(main.run())

    start.__doc__ = f"Start the {command} room.\n\nThe same as `python -m {package}`."
    app.command(command)(start)


for _command, _package in ROOMS.items():
    _room_command(_command, _package)


def _invalid_settings(exc: Exception) -> bool:
    """Whether `exc` is pydantic's ValidationError, without importing pydantic: a command that raised one has
    imported it already, and one that did not never needs it."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def _error(message: str, *, code: int) -> NoReturn:
    """Exit with `message` on stderr as one plain line (`clikit.write_error`, as `clikit.fail` writes one)."""
    write_error(message)
    sys.exit(code)


def main() -> None:
    try:
        app()
    except NotifierError as exc:
        _error(str(exc), code=1)
    except Exception as exc:
        if not _invalid_settings(exc):
            raise
        _error(f"invalid settings: {exc}", code=2)
