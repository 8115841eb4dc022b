"""What a client exception means, and whether each dependency is up: the one place that decides both.

`classify` maps what redis-py, aiormq/aio-pika, httpx and the OS raise onto the kernel's error tree:

- the service cannot be reached right now (refused, reset, timed out, loading its data set, a cluster slot
  moving, a broker connection or channel closed, before or after its handshake) -> `ServiceUnavailable`, retried;
- the process is configured for something that cannot work (an unknown host, a refused login, a port in
  use) -> `InvalidSettings`, the room exits 2;
- anything else -> None: a bug or a refusal the caller handles itself (a script error, a bad request).

`HEALTH` keeps one record per dependency of this process. An outage is logged once when it starts and once
when it ends, however many retries it takes; every failure counts in
`notifier_dependency_errors_total{dependency, room}` and `notifier_dependency_up{dependency}` is 0 while the
dependency is away, which is also when `/readyz` answers 503. Both metrics are read from `HEALTH` when
/metrics is scraped (`workers.common.runtime.healthmetrics`), so a command that only connects does not
import prometheus_client.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass

from workers.common.contract.errors import InvalidSettings, NotifierError, ServiceUnavailable, TemporaryError

log = logging.getLogger(__name__)

REDIS = "redis"
RABBITMQ = "rabbitmq"
CORE = "core"
KUBERNETES = "kubernetes"

_REDIS_AWAY = (
    "ConnectionError",  # refused, reset, BusyLoadingError while it loads its append-only file
    "TimeoutError",
    "TryAgainError",
    "ClusterDownError",
    "MasterDownError",
    "ReadOnlyError",  # connected to a replica during a failover
)
_AMQP_AWAY = ("AMQPConnectionError", "ChannelInvalidStateError", "ConnectionClosed")
_AMQP_REFUSED = ("ProbableAuthenticationError", "AuthenticationError")


def _loaded(module: str, names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    """The exception classes `names` of `module` when it was imported, else none: a library that was never
    loaded raised nothing, and a command that talks only to Redis does not pay for importing the others."""
    found = sys.modules.get(module)
    return tuple(getattr(found, name) for name in names) if found is not None else ()


def classify(exc: BaseException, *, dependency: str = "") -> NotifierError | None:
    """The kernel error `exc` stands for, or None when it is not about reaching a dependency.

    `dependency` names the service for exceptions that do not tell (a plain `ConnectionError`)."""
    if isinstance(exc, NotifierError):
        return exc
    if _unknown_host(exc):
        return InvalidSettings(f"cannot resolve the host of {dependency or 'a dependency'}: {exc}")
    if isinstance(exc, _loaded("redis.exceptions", ("AuthenticationError", "AuthorizationError"))):
        return InvalidSettings(f"Redis refused the credentials of NOTIFIER_REDIS_URL: {exc}")
    if isinstance(exc, _loaded("aiormq.exceptions", _AMQP_REFUSED)):
        return InvalidSettings(f"RabbitMQ refused the credentials of NOTIFIER_AMQP_URL: {exc}")
    if isinstance(exc, _loaded("redis.exceptions", _REDIS_AWAY)) or _cluster_client_in_flux(exc):
        return ServiceUnavailable(f"Redis unavailable: {exc!r}", dependency=REDIS)
    if isinstance(exc, _loaded("aiormq.exceptions", _AMQP_AWAY)) or _broker_closed_the_socket(exc):
        return ServiceUnavailable(f"RabbitMQ unavailable: {exc!r}", dependency=RABBITMQ)
    if isinstance(exc, _loaded("httpx", ("TransportError",))):
        name = dependency or CORE
        return ServiceUnavailable(f"{name} unavailable: {type(exc).__name__}: {exc}", dependency=name)
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return InvalidSettings(f"cannot listen: {exc}")
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return ServiceUnavailable(f"{dependency or 'a dependency'} unavailable: {exc!r}", dependency=dependency)
    return None


def temporary(exc: BaseException, *, dependency: str = "") -> ServiceUnavailable | None:
    """`exc` as a temporary error worth retrying, or None when it is permanent or not about a dependency."""
    error = classify(exc, dependency=dependency)
    if isinstance(error, ServiceUnavailable):
        error.dependency = error.dependency or dependency
        return error
    if isinstance(error, TemporaryError):
        return ServiceUnavailable(str(error), dependency=dependency)
    return None


_CLIENT_STATE_ERRORS = (AttributeError, KeyError, IndexError, RuntimeError)
_REDIS_PACKAGE = f"{os.sep}redis{os.sep}"
_AMQP_PACKAGE = f"{os.sep}aiormq{os.sep}"


def _cluster_client_in_flux(exc: BaseException) -> bool:
    """An error of the Redis client's own state, raised through redis-py while a cluster changes under it (a
    slot with no node while a replica is promoted, a write to a connection the failover just closed).
    The client refreshes its view of the cluster on the next call, so the call is worth retrying."""
    return (
        isinstance(exc, _CLIENT_STATE_ERRORS)
        and "redis.asyncio.cluster" in sys.modules
        and _raised_in(exc, _REDIS_PACKAGE)
    )


def _broker_closed_the_socket(exc: BaseException) -> bool:
    """The broker closed the connection before the AMQP handshake ended (a broker still starting, a proxy or
    load balancer with no broker behind it): aiormq's frame reader then ends with StopAsyncIteration, which
    aio-pika counts among its connection errors too."""
    return isinstance(exc, StopAsyncIteration) and "aiormq" in sys.modules and _raised_in(exc, _AMQP_PACKAGE)


def _raised_in(exc: BaseException, package: str) -> bool:
    """Whether a frame of `exc`'s traceback runs code of `package` (a path fragment `/<name>/`)."""
    tb = exc.__traceback__
    while tb is not None:
        if package in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _unknown_host(exc: BaseException) -> bool:
    """A name that does not resolve: the URL is wrong, retrying will not fix it."""
    seen: BaseException | None = exc
    for _ in range(4):  # the client's own exception wraps the resolver's
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror) and seen.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(slots=True)
class _Outage:
    since: float
    failures: int


@dataclass(slots=True)
class Failures:
    """The failed calls to one dependency while this process ran as one room."""

    count: int
    first_at: float
    """Wall-clock time (`time.time()`) of the first."""


class Health:
    """Which dependencies of this process are away, since when, and how often they failed; logs each outage once."""

    def __init__(self) -> None:
        self.room = "notifier"
        self._outages: dict[str, _Outage] = {}
        self._answering: dict[str, bool] = {}
        self._failures: dict[tuple[str, str], Failures] = {}

    def failed(self, error: ServiceUnavailable, *, what: str = "") -> None:
        dependency = error.dependency or "unknown"
        counted = self._failures.get((dependency, self.room))
        if counted is None:
            self._failures[dependency, self.room] = Failures(count=1, first_at=time.time())
        else:
            counted.count += 1
        outage = self._outages.get(dependency)
        if outage is not None:
            outage.failures += 1
            return
        self._outages[dependency] = _Outage(since=time.monotonic(), failures=1)
        self._answering[dependency] = False
        log.warning(
            "%s unavailable%s (%s): retrying until it is back", dependency, f" to {what}" if what else "", error
        )

    def ok(self, dependency: str) -> None:
        """`dependency` answered: ends its outage, if there was one. Cheap when nothing changes."""
        if self._answering.get(dependency):
            return
        self._answering[dependency] = True
        outage = self._outages.pop(dependency, None)
        if outage is not None:
            log.warning(
                "%s back after %.1fs (%d failed attempts)", dependency, time.monotonic() - outage.since, outage.failures
            )

    def is_up(self, dependency: str) -> bool:
        return dependency not in self._outages

    def all_up(self, needs: frozenset[str] | None = None) -> bool:
        """No dependency away (of `needs`, when given)."""
        if needs is None:
            return not self._outages
        return not needs.intersection(self._outages)

    def away(self) -> list[str]:
        return sorted(self._outages)

    def answering(self) -> dict[str, bool]:
        """Every dependency heard of so far, in the order first heard of: True while it answers, False during
        its outage. One never called is absent."""
        return dict(self._answering)

    def failures(self) -> dict[tuple[str, str], Failures]:
        """The failed calls so far by (dependency, room), counted on after an outage ends."""
        return {
            key: Failures(count=counted.count, first_at=counted.first_at) for key, counted in self._failures.items()
        }


HEALTH = Health()
"""The process's one record of its dependencies."""
