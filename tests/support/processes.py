"""Starting real Notifier processes from tests: rooms and CLI commands, on loopback only.

    room = start_room("pusher", env=env, log_dir=tmp_path, ops_port=free_port())
    await room.wait_ready()                 # /readyz answers 200, or the test fails with the room's output
    assert room.terminate() == 0, room.log  # SIGTERM, SIGKILL if it does not stop

    async with room_process("core", env, http_port=free_port(), ops_port=free_port()) as core:
        ...                                 # started, ready; stopped the same way on the way out

A room's output goes to a log file (`log_dir`, the system's temporary directory without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.metrics import sample
from tests.support.waiting import eventually, wait_ready

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RoomProcess:
    """A room started as a process (`python -m workers.<room>`, or a command that runs one)."""

    room: str
    process: subprocess.Popen[bytes]
    ops_port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)
    http_port: int = 0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    @property
    def url(self) -> str:
        """The base URL of the room's HTTP port (core and ws_delivery)."""
        return f"http://127.0.0.1:{self.http_port}"

    async def wait_ready(self, *, timeout_s: float = 30.0) -> None:
        await wait_ready(
            self.ops_url, exit_code=self.process.poll, output=lambda: self.log, what=self.room, timeout_s=timeout_s
        )

    async def wait_log(self, text: str, *, timeout_s: float = 30.0, after: int = 0) -> str:
        """Wait until `text` appears in the log (after character offset `after`); returns the log."""

        def seen_or_exited() -> str:
            log = self.log
            return log if text in log[after:] or self.process.poll() is not None else ""

        try:
            log = await eventually(seen_or_exited, timeout_s=timeout_s)
        except AssertionError:
            raise AssertionError(f"{text!r} not in the {self.room} log within {timeout_s}s:\n{self.log}") from None
        if text not in log[after:]:
            raise AssertionError(f"{self.room} exited with {self.process.returncode} before {text!r}:\n{log}")
        return log

    async def metrics(self) -> str:
        """The room's /metrics page (Prometheus text)."""
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.ops_url}/metrics", timeout=5.0)
            return response.text

    async def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """One sample of the room's /metrics (0 when absent)."""
        return sample(name, labels, text=await self.metrics())

    def terminate(self, *, timeout_s: float = 15.0) -> int:
        """SIGTERM, SIGKILL after `timeout_s`; returns the exit code."""
        return stop_process(self.process, timeout_s=timeout_s)

    def kill(self) -> None:
        kill_process(self.process)


def stop_process(process: subprocess.Popen[bytes] | None, *, timeout_s: float) -> int | None:
    """SIGTERM a process still running, SIGKILL it after `timeout_s`; its exit code (None: never started)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            kill_process(process)
    return process.returncode


def kill_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a process still running, as a crash or the OOM killer would, and reap it."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def start_room(
    room: str,
    *,
    env: Mapping[str, str],
    ops_port: int,
    http_port: int = 0,
    log_dir: Path | None = None,
    name: str = "",
    command: Sequence[str] = (),
    preexec_fn: Callable[[], object] | None = None,
) -> RoomProcess:
    """Start `python -m workers.<room>` (or `python -m COMMAND...`) with `env` and the given ports."""
    full_env = {**env, "NOTIFIER_OPS_PORT": str(ops_port), "PYTHONUNBUFFERED": "1"}
    if http_port:
        full_env["NOTIFIER_HTTP_PORT"] = str(http_port)
    log_path = (log_dir or Path(tempfile.gettempdir())) / f"{name or room}-{ops_port}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *(command or [f"workers.{room}"])],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    return RoomProcess(room, process, ops_port, log_path, full_env, http_port)


@contextlib.asynccontextmanager
async def room_process(
    room: str, env: Mapping[str, str], *, ops_port: int, http_port: int = 0, log_dir: Path | None = None
) -> AsyncIterator[RoomProcess]:
    """`room` started and ready; stopped with SIGTERM (killed if it does not stop) on the way out, its output
    printed when the block fails."""
    started = start_room(room, env=env, ops_port=ops_port, http_port=http_port, log_dir=log_dir)
    try:
        await started.wait_ready()
        yield started
    except BaseException:
        print(f"--- {started.room} output ({started.log_path}) ---\n{started.log}", file=sys.stderr)
        raise
    finally:
        await asyncio.to_thread(started.terminate)


def core_process(
    env: Mapping[str, str], *, http_port: int, ops_port: int, log_dir: Path | None = None
) -> contextlib.AbstractAsyncContextManager[RoomProcess]:
    """Core as a real process: `room_process("core", ...)`."""
    return room_process("core", env, http_port=http_port, ops_port=ops_port, log_dir=log_dir)


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


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
