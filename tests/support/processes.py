"""Starting real Notifier processes from tests: rooms and CLI commands, on loopback only."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RoomProcess:
    """A room started with `python -m workers.<room>`; its output goes to a log file."""

    room: str
    process: subprocess.Popen[bytes]
    ops_port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, *, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.room} exited with {self.process.returncode}:\n{self.log}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.ops_port}/readyz", timeout=1.0)
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.room} not ready within {timeout_s}s:\n{self.log}")

    async def wait_log(self, text: str, *, timeout_s: float = 30.0, after: int = 0) -> str:
        """Wait until `text` appears in the log (after character offset `after`); returns the log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self.log
            if text in log[after:]:
                return log
            if self.process.poll() is not None:
                raise AssertionError(f"{self.room} exited with {self.process.returncode} before {text!r}:\n{log}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} not in the {self.room} log within {timeout_s}s:\n{self.log}")

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=5.0)
            return response.text

    def terminate(self, *, timeout_s: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_room(room: str, *, env: Mapping[str, str], log_dir: Path, ops_port: int, name: str = "") -> RoomProcess:
    full_env = {**env, "NOTIFIER_OPS_PORT": str(ops_port), "PYTHONUNBUFFERED": "1"}
    log_path = log_dir / f"{name or room}-{ops_port}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"workers.{room}"], cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    return RoomProcess(room, process, ops_port, log_path, full_env)


def notifier(*args: str, env: Mapping[str, str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the `notifier` CLI as a user would; returns the completed process (never raises on exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def metric_value(metrics_text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in metrics_text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
