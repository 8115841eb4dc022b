"""Where Redis is: the forms `NOTIFIER_REDIS_URL` takes, parsed without any client library.

- `redis://[user:password@]host:port[/db]`, `rediss://...` (TLS), `unix:///path.sock`: one Redis node, read by
  redis-py as it reads any URL.
- `redis+cluster://[user:password@]host:port[,host:port...]`, `rediss+cluster://...`: a Redis Cluster. The nodes
  listed are where a client starts; it learns the rest of the cluster from any one of them. A cluster has only
  database 0.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SINGLE_SCHEMES = frozenset({"redis", "rediss", "unix"})
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def check_redis_url(url: str) -> str:
    """`url` when it is a Redis URL of one of the forms above; ValueError with what is wrong otherwise."""
    scheme = urlsplit(url).scheme
    if scheme in CLUSTER_SCHEMES:
        cluster_nodes(url)
    elif scheme not in SINGLE_SCHEMES:
        known = ", ".join(sorted(SINGLE_SCHEMES | CLUSTER_SCHEMES.keys()))
        raise ValueError(f"a Redis URL starts with one of {known}://, got {scheme or 'no scheme'!r}")
    return url


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL as a single-node URL (credentials, TLS, options, its first node) and its start nodes.

    Raises ValueError for a node without a port, or a database other than 0."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for node in hosts.split(","):
        host, sep, port = node.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a Redis Cluster node is host:port, got {node!r}")
        nodes.append((host.strip("[]"), int(port)))
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    first = hosts.split(",")[0]
    netloc = f"{credentials}@{first}" if credentials else first
    return parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme], netloc=netloc, path="").geturl(), nodes
