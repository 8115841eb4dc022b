"""The places that cannot import the room list (Dockerfile, chart, import contracts) list the same rooms."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from workers.common.contract.rooms import ROOMS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {room.package for room in ROOMS}


def test_every_room_is_listed_the_same_everywhere() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert set(re.findall(r'^ENTRYPOINT \["notifier", "([\w-]+)"\]', dockerfile, re.M)) == {r.command for r in ROOMS}

    helpers = (ROOT / "helm/notifier/templates/_helpers.tpl").read_text()
    listed = re.search(r'define "notifier\.rooms" -}}\n(.*?)\n{{- end }}', helpers, re.S)
    assert listed is not None
    chart = dict(line.split(": ") for line in listed.group(1).splitlines())
    assert chart == {room.values_key: room.command for room in ROOMS}

    contracts = {
        c["name"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    }
    assert set(contracts["Rooms never import each other"]["modules"]) == PACKAGES
    kernel = set(contracts["The kernel knows no room"]["forbidden_modules"])
    assert kernel - {"workers.cli", "workers.client", "workers.local"} == PACKAGES
    console = set(contracts["Only command-line modules use the console kit"]["source_modules"])
    assert console - {"workers.common.contract", "workers.common.runtime"} == PACKAGES
