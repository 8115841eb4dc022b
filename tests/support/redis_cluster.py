"""A Redis Cluster of a test session's own: 3 masters and 3 replicas on free loopback ports.

    cluster = RedisCluster(tmp_path / "cluster").start()   # nodes up, slots assigned, replicas in sync
    cluster.url                                            # redis+cluster://127.0.0.1:<port>,...
    cluster.kill_master_of("nf:s:u:{s.3}:alice:pending")   # SIGKILL; returns once its replica took over
    cluster.stop()

Each node is a `RedisServer` with `cluster-enabled yes` and an append-only file; `redis-cli --cluster create`
joins them. `cluster-node-timeout` is 1 s, so a killed master's replica is promoted within a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import key_slot

from tests.support.redis_server import RedisServer

NODE_TIMEOUT_MS = 1000


class RedisCluster:
    def __init__(self, directory: Path, *, masters: int = 3, replicas: int = 1) -> None:
        self.directory = directory
        self.masters = masters
        self.nodes = [
            RedisServer(
                directory / f"node-{i}",
                options={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": str(NODE_TIMEOUT_MS),
                    "cluster-require-full-coverage": "yes",
                },
            )
            for i in range(masters * (1 + replicas))
        ]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """A cluster URL naming every node as a start node (any live one is enough to find the others)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, *, timeout_s: float = 60.0) -> RedisCluster:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (make services installs it)")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
        )
        self.wait_healthy(timeout_s=timeout_s)
        return self

    def _client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2.0, decode_responses=True)

    def _live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.running]

    def wait_healthy(self, *, timeout_s: float = 60.0) -> None:
        """Until every live node says the cluster is ok, every slot has a live master and every master has
        as many connected replicas as there are live nodes to be its replicas."""
        deadline = time.monotonic() + timeout_s
        problem = "not asked yet"
        while time.monotonic() < deadline:
            problem = self._problem()
            if problem is None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster not healthy within {timeout_s:.0f}s: {problem}")

    def _problem(self) -> str | None:
        for node in self._live():
            client = self._client(node)
            try:
                info = client.cluster("info")
                if info.get("cluster_state") != "ok":
                    return f"node {node.port}: cluster_state {info.get('cluster_state')}"
                if int(info.get("cluster_slots_ok", 0)) != 16384:
                    return f"node {node.port}: {info.get('cluster_slots_ok')} slots ok"
                replication = client.info("replication")
                if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                    return f"replica {node.port}: link to its master {replication.get('master_link_status')}"
            except redis.RedisError as error:
                return f"node {node.port}: {error}"
            finally:
                client.close()
        return None

    def master_of(self, key: str) -> RedisServer:
        """The live node serving `key`'s slot as master."""
        slot = key_slot(key.encode())
        for node in self._live():
            client = self._client(node)
            try:
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError(f"no live node knows the master of slot {slot}")

    def kill_master_of(self, key: str, *, timeout_s: float = 60.0) -> RedisServer:
        """SIGKILL the master of `key`'s slot; returns it once a replica serves the slot and the cluster is ok."""
        victim = self.master_of(key)
        victim.kill()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.master_of(key) is not victim and self._problem() is None:
                    return victim
            except (RuntimeError, StopIteration):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over from {victim.port} within {timeout_s:.0f}s")

    def restart(self, node: RedisServer, *, timeout_s: float = 60.0) -> None:
        """Start a killed node again: it comes back from its append-only file and rejoins as a replica."""
        node.start()
        self.wait_healthy(timeout_s=timeout_s)

    def flush(self) -> None:
        for node in self._live():
            client = self._client(node)
            try:
                if client.info("replication").get("role") == "master":
                    client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
