"""`notifier up` and `notifier demo` print addresses, paths and commands whole, whatever the output's width."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from workers.local.show import console, where

LONG_LOG = Path("/var/tmp/a/rather/long/folder/for/the/logs/of/notifier/up") / "ws-delivery-1.log"


class FakeRooms:
    """What `where` reads of the running rooms: process groups with names, pids, URLs and log paths."""

    def __init__(self) -> None:
        self.procs: list[Any] = [
            SimpleNamespace(
                name=name,
                room=room,
                process=SimpleNamespace(pid=4242 + i),
                http_url=f"http://127.0.0.1:{18000 + i}",
                ops_url=f"http://127.0.0.1:{19100 + i}",
                log_path=LONG_LOG.with_name(f"{name}.log"),
            )
            for i, (name, room) in enumerate(
                [("core-1", "core"), ("ws-delivery-1", "ws-delivery"), ("puller-1", "puller")]
            )
        ]

    def groups(self) -> list[list[Any]]:
        return [self.procs]


def printed(*, width: int, terminal: bool) -> str:
    out = io.StringIO()
    on = Console(file=out, width=width, force_terminal=terminal, color_system=None, soft_wrap=True)
    on.print(where(FakeRooms(), on=on))  # type: ignore[arg-type]
    return out.getvalue()


def test_not_a_terminal_gets_one_whole_line_per_process() -> None:
    text = printed(width=80, terminal=False)
    lines = text.splitlines()
    assert "…" not in text
    assert any("ws-delivery-1" in line and "http://127.0.0.1:18001" in line and str(LONG_LOG) in line for line in lines)
    assert any("core-1" in line and "http://127.0.0.1:19100" in line for line in lines)
    assert not any("puller-1" in line and " http " in line for line in lines)


def test_a_terminal_too_narrow_for_the_table_gets_the_list() -> None:
    text = printed(width=60, terminal=True)
    assert "…" not in text
    assert str(LONG_LOG) in text


def test_a_wide_terminal_gets_the_table_with_every_address_whole() -> None:
    text = printed(width=250, terminal=True)
    assert "┃" in text or "│" in text
    assert str(LONG_LOG) in text
    assert "http://127.0.0.1:18001" in text


def test_printed_commands_are_never_broken_at_the_console_width() -> None:
    command = "  notifier listen --user 1 --ws-url http://127.0.0.1:18001 --core-url http://127.0.0.1:18000 " * 3
    with console.capture() as capture:
        console.print(command)
    assert capture.get() == command + "\n"
