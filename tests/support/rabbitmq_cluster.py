"""A RabbitMQ cluster of a test session's own: 3 nodes on loopback, beside the machine's own broker.

    cluster = RabbitCluster(Path(tempfile.mkdtemp())).start()   # nodes up and joined into one cluster
    cluster.url                                                 # amqp://guest:guest@127.0.0.1:<a>/,amqp://...
    cluster.kill(cluster.nodes[0])                              # SIGKILL of the node's Erlang VM
    cluster.restart(cluster.nodes[0])                           # back with its data; it rejoins by itself
    cluster.stop()                                              # every node stopped, its folder removed

Each node (`nf-a-<token>@localhost`, `nf-b-<token>@localhost`, ...: a token per cluster, so two test sessions
never share a node name) has its own AMQP and distribution ports (free ones), its own config file (the
machine's `/etc/rabbitmq/rabbitmq.conf` names port 5672, which the machine's own `rabbit@localhost` holds),
its own data, log and pid files, and an empty enabled-plugins file (no management listener to clash over).
The nodes run as the `rabbitmq` user with its `HOME`, so they share the Erlang cookie of the machine's node
and its `rabbitmqctl`. The machine's node is never joined, stopped or restarted.

Measured here (2 cores, other tests running): the cluster is up in 35-55 s; each node holds 125-140 MB
resident (about 400 MB for three); a killed node is back in the cluster 10-13 s after `restart`.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import kill_process, stop_process
from workers.local.stack import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
USER = "rabbitmq"


def available() -> str | None:
    """Why a cluster cannot start on this machine, or None when it can."""
    if not SERVER.exists() or not CTL.exists():
        return "RabbitMQ is not installed (make services installs it)"
    if os.geteuid() != 0:
        return "starting RabbitMQ nodes as the rabbitmq user needs root"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return "there is no rabbitmq user"
    return None


@dataclass
class RabbitNode:
    name: str
    """Erlang node name, `nf-a-<token>@localhost`."""
    port: int
    dist_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    """The node's Erlang VM itself (started in the foreground, so this is no wrapper script)."""

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": pwd.getpwnam(USER).pw_dir,  # the machine's Erlang cookie
            "RUNNING_UNDER_SYSTEMD": "1",  # rabbitmq-server execs the VM instead of waiting on it in a shell
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
        }


class RabbitCluster:
    def __init__(self, directory: Path, *, nodes: int = 3) -> None:
        self.directory = directory
        token = secrets.token_hex(3)  # two clusters at once (two test sessions) must not share a node name
        self.nodes = [
            RabbitNode(
                name=f"nf-{letter}-{token}@localhost",
                port=free_port(),
                dist_port=free_port(),
                directory=directory / f"nf-{letter}",
            )
            for letter in string.ascii_lowercase[:nodes]
        ]

    @property
    def url(self) -> str:
        """`NOTIFIER_AMQP_URL` naming every node."""
        return ",".join(node.url for node in self.nodes)

    def node_on(self, port: int) -> RabbitNode:
        return next(node for node in self.nodes if node.port == port)

    def start(self, *, timeout_s: float = 120.0) -> RabbitCluster:
        """Start every node, join the others to the first and wait until all are running in one cluster."""
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.directory, USER, USER)
        try:
            for node in self.nodes:
                self._prepare(node)
                self._launch(node)
            for node in self.nodes:
                self._wait_started(node, timeout_s=timeout_s)
            first = self.nodes[0]
            for node in self.nodes[1:]:
                self.ctl(node, "stop_app")
                self.ctl(node, "join_cluster", first.name)
                self.ctl(node, "start_app", timeout_s=timeout_s)
            self.wait_clustered(timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self, node: RabbitNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        (node.directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{node.port}\n")
        (node.directory / "enabled_plugins").write_text("[].\n")
        for path in (node.directory, *node.directory.iterdir()):
            shutil.chown(path, USER, USER)

    def _launch(self, node: RabbitNode) -> None:
        node.process = subprocess.Popen(
            [str(SERVER)],
            user=USER,
            env=node.environment(),
            cwd=node.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_started(self, node: RabbitNode, *, timeout_s: float) -> None:
        if node.process is None:
            raise RuntimeError(f"{node.name} was not launched")
        self.ctl(node, "wait", "--pid", str(node.process.pid), "--timeout", str(int(timeout_s)), timeout_s=timeout_s)

    def ctl(self, node: RabbitNode, *arguments: str, timeout_s: float = 60.0) -> str:
        """`rabbitmqctl -n <node> ...` as the rabbitmq user; raises with its output when it fails."""
        done = subprocess.run(
            [str(CTL), "-n", node.name, *arguments],
            user=USER,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": pwd.getpwnam(USER).pw_dir},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=timeout_s + 10,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(arguments)} on {node.name} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def running_nodes(self, via: RabbitNode) -> set[str]:
        """The nodes `via` sees running in its cluster."""
        status = json.loads(self.ctl(via, "cluster_status", "--formatter", "json", timeout_s=30))
        return set(status.get("running_nodes", []))

    def wait_clustered(self, *, timeout_s: float = 120.0) -> None:
        """Until every node that runs sees exactly the running nodes as its running cluster."""
        deadline = time.monotonic() + timeout_s
        problem = "not asked yet"
        while time.monotonic() < deadline:
            live = [node for node in self.nodes if node.running]
            expected = {node.name for node in live}
            try:
                seen = {node.name: self.running_nodes(node) for node in live}
            except RuntimeError as exc:
                problem = str(exc)
            else:
                wrong = {name: nodes for name, nodes in seen.items() if nodes != expected}
                if not wrong:
                    return
                problem = f"expected {sorted(expected)}, seen {wrong}"
            time.sleep(0.5)
        raise RuntimeError(f"the RabbitMQ cluster did not form within {timeout_s:.0f}s: {problem}")

    def kill(self, node: RabbitNode) -> None:
        """SIGKILL the node's Erlang VM, as a crash or an OOM kill: no goodbye to clients or peers."""
        kill_process(node.process)

    def restart(self, node: RabbitNode, *, timeout_s: float = 120.0) -> None:
        """Start a stopped or killed node again with its data; it rejoins the cluster it belonged to."""
        self._launch(node)
        self._wait_started(node, timeout_s=timeout_s)
        self.wait_clustered(timeout_s=timeout_s)

    def stop(self) -> None:
        """Stop every node this cluster started (SIGKILL what does not stop in time) and remove its folder."""
        for node in self.nodes:
            if node.process is None or not node.running:
                continue
            stop_process(node.process, timeout_s=30)  # the VM stops RabbitMQ in order on SIGTERM
        shutil.rmtree(self.directory, ignore_errors=True)
