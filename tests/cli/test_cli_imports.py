"""A command starts fast because it imports only what it runs: `notifier --help` loads typer and nothing heavy,
`notifier clean` loads Redis and the settings but no broker client, no metrics library and no console
renderer.

What a command imports is a property of a whole process, so each probe is a fresh interpreter; the test checks
`sys.modules`, not timings (docs/benchmarks.md records the start-up times these imports cost).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REDIS_URL
from tests.support.processes import ROOT, clean_env

PROBE = """
import json, sys
from workers.cli.main import main
sys.argv = ["notifier", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("PROBE" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

HEAVY = (
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "rich",
    "markdown_it",
    "typer.rich_utils",
    "redis",
    "aio_pika",
    "aiormq",
    "httpx",
    "prometheus_client",
    "jwt",
    "yaml",
    "google.protobuf",
    "asyncio",
)
"""Packages `notifier --help` needs none of; each costs tens to hundreds of milliseconds to import."""


def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        env={**clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE"))
    found = json.loads(line.removeprefix("PROBE"))
    return found["code"], set(found["modules"])


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(p for p in packages if any(m == p or m.startswith(p + ".") for m in modules))


def rooms(modules: set[str]) -> set[str]:
    return {m.split(".")[1] for m in modules if m.startswith("workers.") and m.split(".")[1] not in ("cli", "common")}


def test_help_imports_nothing_heavy() -> None:
    code, modules = probe("--help")
    assert code == 0
    assert loaded(modules, HEAVY) == []
    assert rooms(modules) == set()


RICH_HELP = ("typer.rich_utils", "markdown_it")
"""typer's rich help and error formatting; `notifier` formats help as plain text."""


@pytest.mark.parametrize("args", [("pusher", "--help"), ("no-such-command",)])
def test_help_of_a_room_and_a_usage_error_import_no_console(args: tuple[str, ...]) -> None:
    _, modules = probe(*args)
    assert loaded(modules, ("rich", *RICH_HELP)) == []
    assert rooms(modules) == set()


SERVERS = ("fastapi", "starlette", "uvicorn")
"""The HTTP servers of core and ws_delivery: no command line but `notifier core` or `notifier ws-delivery` runs one."""

CLEAN_NEEDS_NONE = (
    "aio_pika",
    "aiormq",
    "httpx",
    "jwt",
    "rich",
    "google.protobuf",
    "prometheus_client",
    *SERVERS,
    *RICH_HELP,
)
"""What `notifier clean` runs without: the broker and HTTP clients (faults recognises their errors only once
they are loaded), JWT, protobuf, the HTTP servers, a console renderer (its lines and its error are plain
text) and prometheus_client: the dependency record every connection goes through (`faults.HEALTH`) becomes
metrics only in a process that serves /metrics."""


def test_clean_imports_redis_but_no_broker_client_or_other_room(stream: str) -> None:
    env = {"NOTIFIER_REDIS_URL": REDIS_URL, "NOTIFIER_STREAM": stream}
    code, modules = probe("clean", "u-absent", "--dry-run", env=env)
    assert code == 1  # it ran against Redis: the user has no data in this fresh stream
    assert loaded(modules, ("redis", "pydantic_settings")) == ["pydantic_settings", "redis"]
    assert loaded(modules, CLEAN_NEEDS_NONE) == []
    assert rooms(modules) == {"cleaner"}


CLEAN_CHECKS_NEED_NONE = (*CLEAN_NEEDS_NONE, "redis", "pydantic_settings", "asyncio")
"""What `notifier clean --help` and a `clean` usage error run without, besides what `clean` never needs: the
Redis client, the settings and an event loop, which the command imports once its arguments are checked."""


@pytest.mark.parametrize(
    ("args", "expected"), [(("clean", "--help"), 0), (("clean",), 2), (("clean", "u1", "--invalid"), 2)]
)
def test_clean_help_and_usage_errors_load_no_client_settings_or_metrics(args: tuple[str, ...], expected: int) -> None:
    code, modules = probe(*args)
    assert code == expected
    assert loaded(modules, CLEAN_CHECKS_NEED_NONE) == []
    assert rooms(modules) == {"cleaner"}


BUS_COMMANDS_NEED_NONE = ("aio_pika", "aiormq", "jwt", "yaml", "google.protobuf", *SERVERS, *RICH_HELP)
"""What `notifier push-valid-data` and `notifier pull` run without: the broker client, JWT, protobuf, the
NotificationStream schema's YAML reader and the HTTP servers of the rooms (a room's lifecycle is not a
command's). `pull` hands its digests to the log unless NOTIFIER_CORE_URL is set, so it loads no HTTP client."""


@pytest.mark.parametrize(("args", "room"), [(("push-valid-data",), "pusher"), (("pull", "--summary"), "puller")])
def test_bus_commands_import_redis_but_no_broker_client_or_server(
    args: tuple[str, ...], room: str, stream: str
) -> None:
    env = {"NOTIFIER_REDIS_URL": REDIS_URL, "NOTIFIER_STREAM": stream}
    code, modules = probe(*args, env=env)
    assert code == 1  # it ran against Redis: this fresh stream has no mapping
    assert loaded(modules, ("redis",)) == ["redis"]
    assert loaded(modules, (*BUS_COMMANDS_NEED_NONE, "httpx")) == []
    assert rooms(modules) == {room}
