"""The live devices of one instance, by user: fan-out of events, network status, admin and shutdown closes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from workers.common.contract.closes import Close
from workers.common.contract.keys import MAX_SHARDS, shard_of
from workers.common.contract.wire import BrokerNotification, Notification
from workers.ws_delivery import frames, metrics
from workers.ws_delivery.dedup import BROADCAST, Deduplicator
from workers.ws_delivery.outbox import Pending

log = logging.getLogger(__name__)

Confirm = Callable[[str, str], None]
"""Hands on `(user_id, notification_id)` of an acknowledged NEW notification."""


class Device(Protocol):
    """What the hub needs of a device connection (`connection.DeviceConnection` is one)."""

    @property
    def user(self) -> str: ...

    def send_message(self, shared: bytes, *, confirm_id: str = "") -> bool: ...

    def close(self, close: Close) -> None: ...


class Hub:
    def __init__(self, *, dedup: Deduplicator, confirm: Confirm) -> None:
        self._dedup = dedup
        self._confirm = confirm
        self._by_user: dict[str, set[Device]] = {}
        self._count = 0
        self.sockets = 0
        """Open TCP connections of the device port: devices, and upgrades and HTTP requests in progress."""
        self._idle = asyncio.Event()
        self._idle.set()
        self.broker_up = True
        self.opened_total = 0
        self.acked_total = 0

    def __len__(self) -> int:
        return self._count

    def devices(self, user: str) -> int:
        return len(self._by_user.get(user, ()))

    def connections(self, user: str) -> tuple[Device, ...]:
        return tuple(self._by_user.get(user, ()))

    def _all(self) -> list[Device]:
        return [conn for conns in self._by_user.values() for conn in conns]

    # connection lifecycle

    def opened(self, conn: Device) -> None:
        self._by_user.setdefault(conn.user, set()).add(conn)
        self._count += 1
        self.opened_total += 1
        self._idle.clear()
        metrics.CONNECTIONS.inc()
        if not self.broker_up:
            self._send([conn], frames.shared_part(now_s=time.time(), status=frames.ERROR))

    def closed(self, conn: Device) -> None:
        conns = self._by_user.get(conn.user)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self._by_user[conn.user]
        self._count -= 1
        metrics.CONNECTIONS.dec()
        if not self._count:
            self._idle.set()

    def acknowledged(self, conn: Device, entry: Pending, *, now: float) -> None:
        self.acked_total += 1
        metrics.MESSAGES_ACKED.inc()
        metrics.ACK_LATENCY.observe(now - entry.first_sent)
        if entry.confirm_id:
            self._confirm(conn.user, entry.confirm_id)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # events

    def deliver(self, event: BrokerNotification) -> int:
        """Send the event to every device of its users (all devices for a broadcast); returns frames sent."""
        notification = event.notification
        now = time.time()
        shared = frames.shared_part(now_s=now, notification=frames.notification_part(notification))
        confirm_id = notification.id if notification.status == Notification.NEW else ""
        if confirm_id:
            metrics.EVENT_AGE.observe(max(0.0, now - frames.timestamp_ns(notification) / 1e9))
        if event.user_ids:
            targets: list[Device] = []
            for user in dict.fromkeys(event.user_ids):
                if self._admit(user, notification):
                    targets.extend(self._by_user.get(user, ()))
        elif not event.HasField("audience_shard"):
            targets = self._all() if self._admit(BROADCAST, notification) else []
        elif self._admit(f"{BROADCAST}{event.audience_shard}", notification):
            targets = self._audience(event.audience_shard, event.audience_shards)
        else:
            targets = []
        return self._send(targets, shared, confirm_id=confirm_id)

    def _audience(self, shard: int, shards: int) -> list[Device]:
        """The devices of the users of one store shard: a broadcast comes once per shard, each with the position
        of that shard's feeds."""
        if not 0 < shards <= MAX_SHARDS:
            return []
        return [conn for user, conns in self._by_user.items() if shard_of(user, shards) == shard for conn in conns]

    @staticmethod
    def _send(conns: Iterable[Device], shared: bytes, *, confirm_id: str = "") -> int:
        sent = 0
        for conn in conns:
            sent += conn.send_message(shared, confirm_id=confirm_id)
        metrics.MESSAGES_SENT.inc(sent)
        return sent

    def _admit(self, user: str, notification: Notification) -> bool:
        fresh = self._dedup.admit(
            user, notification.id, notification.status, timestamp_ns=frames.timestamp_ns(notification)
        )
        metrics.EVENTS.labels("delivered" if fresh else "duplicate").inc()
        return fresh

    def set_broker(self, *, up: bool) -> None:
        """Tell every device to rely on the WebSocket (OK) or to fall back to long polling (ERROR)."""
        if up == self.broker_up:
            return
        self.broker_up = up
        metrics.BROKER_CONNECTED.set(1 if up else 0)
        shared = frames.shared_part(now_s=time.time(), status=frames.OK if up else frames.ERROR)
        devices = self._all()
        self._send(devices, shared)
        log.warning(
            "broker %s: told %d devices to %s",
            "back" if up else "lost",
            len(devices),
            "use the WebSocket" if up else "poll",
        )

    # closes

    def close_user(self, user: str, close: Close) -> int:
        return self._close(tuple(self._by_user.get(user, ())), close)

    def close_all(self, close: Close) -> int:
        return self._close(self._all(), close)

    @staticmethod
    def _close(conns: Iterable[Device], close: Close) -> int:
        count = 0
        for conn in conns:
            conn.close(close)
            count += 1
        return count
