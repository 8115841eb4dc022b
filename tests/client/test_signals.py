"""`notifier listen` stops cleanly on Ctrl-C and SIGTERM, also when started with SIGINT ignored (a background job)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.processes import ROOT, clean_env
from workers.local.stack import free_port


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_listen_exits_0_on_a_signal_even_with_sigint_ignored(sig: signal.Signals) -> None:
    env = {**clean_env(), "NOTIFIER_JWT_SECRET": "s" * 40, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "listen", "--user", "1", "--ws-url", f"http://127.0.0.1:{free_port()}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # what a shell does to a background job
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while "reconnecting" not in process.stderr.readline():  # it runs: no ws_delivery there, it retries
            assert time.monotonic() < deadline
            assert process.poll() is None
        os.kill(process.pid, sig)
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()
