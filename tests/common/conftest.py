"""Fixtures of the kernel's tests that cost too much to start for every test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rabbitmq_cluster import RabbitCluster, available


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A 3-node RabbitMQ cluster beside the machine's broker, started once per session by the first test that
    needs it (about 35 s and 400 MiB here). Its folder is outside pytest's temporary tree, which the rabbitmq
    user may not enter."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    cluster = RabbitCluster(Path(tempfile.mkdtemp(prefix="notifier-rabbit-"))).start()
    yield cluster
    cluster.stop()
