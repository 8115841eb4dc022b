"""A redis-server of a test's own on a free loopback port, with an append-only file, to kill and restart.

    server = RedisServer(tmp_path / "redis")
    server.start()          # waits until it answers PING
    server.kill()           # SIGKILL: no save, no goodbye
    server.start()          # the same port and directory: the data set comes back from the append-only file
    server.stop()

`appendfsync everysec`, as most deployments run it: a killed process loses nothing it acknowledged (each
write reaches the kernel before the reply); only a lost machine loses up to about a second.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support.processes import kill_process, stop_process
from workers.local.stack import free_port


class RedisServer:
    def __init__(
        self, directory: Path, *, port: int = 0, fsync: str = "everysec", options: dict[str, str] | None = None
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.fsync = fsync
        self.options = options or {}
        """More `redis-server` options (`cluster-enabled` and the like)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_s: float = 30.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make services installs it)")
        self.directory.mkdir(parents=True, exist_ok=True)
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self.directory),
            "appendonly": "yes",
            "appendfsync": self.fsync,
            "save": "",
            "daemonize": "no",
            "logfile": str(self.directory / "redis.log"),
            **self.options,
        }
        command = [binary, *(part for name, value in options.items() for part in (f"--{name}", value))]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"redis-server on port {self.port} exited, see {self.directory / 'redis.log'}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {self.port} not ready within {timeout_s:.0f}s")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill."""
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process, timeout_s=10)
