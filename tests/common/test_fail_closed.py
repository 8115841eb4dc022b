"""core and ws_delivery refuse to start without a key to verify tokens: exit 2, one line naming the setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT, clean_env


@pytest.mark.parametrize(
    ("command", "secret"),
    [
        (("-m", "workers.core"), None),
        (("-m", "workers.ws_delivery"), None),
        (("-m", "workers.cli", "core"), ""),
        (("-m", "workers.cli", "ws-delivery"), "short"),
    ],
)
def test_a_verifying_room_without_a_usable_secret_exits_2_with_one_line(
    command: tuple[str, ...], secret: str | None
) -> None:
    env = {**clean_env(), "NOTIFIER_OPS_PORT": "0", "NOTIFIER_HTTP_PORT": "0"}
    if secret is not None:
        env["NOTIFIER_JWT_SECRET"] = secret
    result = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "NOTIFIER_JWT_SECRET" in lines[0]
    assert result.stdout == ""
