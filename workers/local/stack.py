"""A local stack: room processes with their own ops ports and log files, stopped cleanly together."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from workers.common.contract.errors import ServiceUnavailable

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 10_000
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range and not handed out before by this process.

    A port the kernel picks for `bind(0)` comes from the ephemeral range, the same range every outgoing
    connection (to Redis, to RabbitMQ) takes its source port from: between picking it and the room binding
    it, a client of another process could take it. Below that range only listeners live."""
    try:
        ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 0
    candidates = list(range(LISTEN_PORTS_FROM, ephemeral_low))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket() as sock:  # no room below the ephemeral range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class RoomAddress:
    """Where one running room answers on loopback: its ops port and its HTTP port."""

    name: str
    room: str
    ops_port: int
    http_port: int

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class Proc(RoomAddress):
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LocalStack:
    env: Mapping[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def command_env(self) -> dict[str, str]:
        """The environment of a `notifier` command run against this stack (its stream and namespace)."""
        return {**os.environ, **self.env}

    def start(self, room: str, *, name: str = "", extra: Mapping[str, str] | None = None) -> Proc:
        name = name or f"{room}-{sum(p.room == room for p in self.procs) + 1}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / f"{name}.log").write_bytes(b"")
        proc = self._spawn(room, name=name, ops_port=free_port(), http_port=free_port(), extra=extra or {})
        self.procs.append(proc)
        return proc

    def restart(self, proc: Proc) -> Proc:
        """Start `proc`'s room again under the same name and ports (after it stopped or was killed)."""
        if proc.process.poll() is None:
            raise ServiceUnavailable(f"{proc.name} is still running")
        again = self._spawn(
            proc.room, name=proc.name, ops_port=proc.ops_port, http_port=proc.http_port, extra=proc.extra
        )
        self.procs[self.procs.index(proc)] = again
        return again

    def kill(self, proc: Proc) -> None:
        """SIGKILL: no drain, no goodbye (what a crash or an OOM kill looks like to the other rooms)."""
        if proc.process.poll() is None:
            proc.process.kill()
        proc.process.wait()

    def _spawn(self, room: str, *, name: str, ops_port: int, http_port: int, extra: Mapping[str, str]) -> Proc:
        env = {
            **self.command_env(),
            **extra,
            "NOTIFIER_OPS_PORT": str(ops_port),
            "NOTIFIER_HTTP_PORT": str(http_port),
            "PYTHONUNBUFFERED": "1",
        }
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:  # a restarted process goes on writing the same log
            process = subprocess.Popen(
                [sys.executable, "-m", f"workers.{room.replace('-', '_')}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Proc(
            name=name,
            room=room,
            ops_port=ops_port,
            http_port=http_port,
            process=process,
            log_path=log_path,
            extra=dict(extra),
        )

    async def wait_ready(self, procs: Sequence[Proc] = (), *, timeout_s: float = 60.0) -> None:
        """Wait until every process (default: all) answers /readyz with 200."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            for proc in procs or self.procs:
                while True:
                    if proc.process.poll() is not None:
                        raise ServiceUnavailable(
                            f"{proc.name} exited with {proc.process.returncode}, see {proc.log_path}"
                        )
                    try:
                        if (await client.get(f"{proc.ops_url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceUnavailable(f"{proc.name} not ready within {timeout_s:.0f}s, see {proc.log_path}")
                    await asyncio.sleep(0.1)

    def stop(self, *, timeout_s: float = 20.0) -> dict[str, int]:
        """SIGTERM every process (newest first), wait, SIGKILL stragglers; returns exit codes by name."""
        for proc in reversed(self.procs):
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        deadline = time.monotonic() + timeout_s
        for proc in self.procs:
            try:
                codes[proc.name] = proc.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.process.kill()
                codes[proc.name] = proc.process.wait()
        return codes
