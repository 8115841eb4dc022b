"""`notifier` imports a room only when one of its commands runs, so each room exports only its own metrics.

The probes run in fresh interpreters: what a command imports is a property of a whole process.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests.conftest import free_port, room_env
from tests.support.processes import ROOT, clean_env, start_room
from workers.cli.main import COMMANDS, ROOMS

ROOM_PACKAGES = set(ROOMS.values())
FAMILY_PREFIX = {
    "pusher": "notifier_pusher_",
    "puller": "notifier_puller_",
    "monitor": "notifier_monitor_",
    "cleaner": "notifier_cleaner_",
    "controller": "notifier_controller_",
    "core": "notifier_core_",
    "ws-delivery": "notifier_ws_",
}
KERNEL_FAMILIES = ("notifier_dependency_", "notifier_gc_", "notifier_assignment_")

PROBE = """
import json, sys
from prometheus_client import REGISTRY
from workers.cli.main import app
import typer
group = typer.main.get_command(app)
args = sys.argv[1:]
if args[0] == "start":
    # What `notifier ROOM` holds when its room starts: the CLI, the command lookup, then ROOM's main.
    import importlib
    from workers.cli.main import ROOMS
    group.get_command(typer.Context(group), args[1])
    importlib.import_module(ROOMS[args[1]] + ".main")
else:
    try:
        group.main(args, prog_name="notifier", standalone_mode=True)
    except SystemExit:
        pass
families = sorted({name for collector in REGISTRY._collector_to_names.values() for name in collector})
modules = sorted(name for name in sys.modules if name.startswith("workers."))
print("PROBE" + json.dumps({"families": families, "modules": modules}))
"""


def probe(*args: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=True
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE"))
    loaded: dict[str, list[str]] = json.loads(line.removeprefix("PROBE"))
    return loaded


def rooms_loaded(modules: list[str]) -> set[str]:
    return {package for package in ROOM_PACKAGES if any(m == package or m.startswith(package + ".") for m in modules)}


def foreign_families(families: list[str], room: str | None) -> list[str]:
    own = FAMILY_PREFIX[room] if room else None
    return [
        name
        for name in families
        if name.startswith("notifier_") and not name.startswith(KERNEL_FAMILIES) and not (own and name.startswith(own))
    ]


def test_commands_name_the_module_that_registers_each_subcommand() -> None:
    registered: dict[str, str] = {}
    for module in [f"{package}.cli" for package in ROOMS.values()] + sorted(
        {lazy.module for lazy in COMMANDS.values()}
    ):
        scratch = typer.Typer()
        importlib.import_module(module).register(scratch)
        group = typer.main.get_group(scratch) if scratch.registered_commands or scratch.registered_groups else None
        for name in group.commands if group else ():
            registered[name] = module
    assert registered == {name: lazy.module for name, lazy in COMMANDS.items()}


@pytest.mark.parametrize(
    ("args", "room"), [(("clean", "--help"), "cleaner"), (("listen", "--help"), None), (("pull", "--help"), "puller")]
)
def test_a_command_imports_only_its_own_room(args: tuple[str, ...], room: str | None) -> None:
    loaded = probe(*args)
    expected = {ROOMS[room]} if room else set()
    assert rooms_loaded(loaded["modules"]) == expected
    assert foreign_families(loaded["families"], room) == []


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_a_starting_room_registers_only_its_own_metrics(room: str) -> None:
    loaded = probe("start", room)
    assert rooms_loaded(loaded["modules"]) == {ROOMS[room]}
    assert foreign_families(loaded["families"], room) == []
    assert any(name.startswith(FAMILY_PREFIX[room]) for name in loaded["families"])


async def test_a_room_started_by_notifier_serves_only_its_own_families(stream: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(), **room_env(stream, "unused.", NOTIFIER_OPS_PORT=str(port), NOTIFIER_OPS_HOST="127.0.0.1")}
    monitor = start_room("monitor", env=env, ops_port=port, log_dir=tmp_path, command=["workers.cli", "monitor"])
    try:
        await monitor.wait_ready()
        text = await monitor.metrics()
    finally:
        monitor.terminate()
    families = sorted({line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")})
    assert any(name.startswith("notifier_monitor_") for name in families)
    assert foreign_families(families, "monitor") == []
