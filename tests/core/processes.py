"""Core as real processes (`python -m workers.core`) for tests and the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class CoreProcess:
    process: asyncio.subprocess.Process
    http_port: int
    ops_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def metric(self, name: str, labels: dict[str, str]) -> float:
        """One sample from the process's /metrics (0 when absent)."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{self.ops_port}/metrics")).text
        wanted = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        for line in text.splitlines():
            if line.startswith(name + wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


async def wait_ready(ops_port: int, process: asyncio.subprocess.Process, *, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"core exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{ops_port}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("core did not become ready")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def core_process(env: dict[str, str], *, http_port: int, ops_port: int) -> AsyncIterator[CoreProcess]:
    """A core process on 127.0.0.1, stopped with SIGTERM (killed if it does not stop)."""
    full_env = {**env, "NOTIFIER_HTTP_PORT": str(http_port), "NOTIFIER_OPS_PORT": str(ops_port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.core", cwd=ROOT, env=full_env, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_ready(ops_port, process)
        yield CoreProcess(process=process, http_port=http_port, ops_port=ops_port)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
