"""Helpers shared by the `notifier` subcommands: the common options, output consoles, error exits.

Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from workers.common.runtime.settings import CommonSettings

T = TypeVar("T")


class LazyConsole:
    """A rich Console built when it first prints. Importing rich costs about as much as the rest of a short
    command's start, and `notifier --help`, a usage error or a command that prints plain lines never needs it."""

    def __init__(self, *, stderr: bool) -> None:
        self.stderr = stderr

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(stderr=self.stderr, highlight=False, soft_wrap=True)

    def print(self, *objects: Any, markup: bool | None = None) -> None:
        self.console.print(*objects, markup=markup)


out = LazyConsole(stderr=False)

StreamOption = Annotated[
    str | None,
    typer.Option("--stream", help="Stream name (default: $NOTIFIER_STREAM, else `default`).", show_default=False),
]


def print_lines(lines: Iterable[str]) -> None:
    """Write plain lines to stdout at once: a command that reports one line per user or brand must not pay a
    console renderer per line (100,000 users are 100,000 lines)."""
    text = "\n".join(lines)
    if text:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def stream_name(option: str | None, settings: CommonSettings) -> str:
    if option is None:
        return settings.stream
    from workers.common.runtime.settings import CommonSettings  # `notifier --help` imports this module, not pydantic

    checked = CommonSettings.model_validate({**settings.model_dump(by_alias=False), "stream": option})
    return checked.stream


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # `notifier --help` imports this module and runs no loop

    return asyncio.run(coro)


def write_error(message: str) -> None:
    """Write `error: message` on stderr as one plain line: a console renderer would cost more to import than a
    short command's whole run, and would read `:name:` in the message as an emoji code."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def fail(message: str, *, code: int = 1) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise."""
    write_error(message)
    return typer.Exit(code)
