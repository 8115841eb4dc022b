"""Review events are judged before they are written: no `occurred_at`, or one out of range, is a dead letter."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from google.protobuf.timestamp_pb2 import Timestamp

from tests.conftest import take_messages
from tests.pusher.test_pusher import event, publish, pusher
from tests.support.processes import RoomProcess
from tests.support.waiting import eventually
from workers.common.contract.entries import decode
from workers.common.contract.errors import InvalidInput
from workers.common.contract.keys import BusKeys
from workers.common.contract.names import REASON_HEADER, Topology
from workers.common.contract.wire import ReviewEvent, to_timestamp
from workers.pusher.fanout import OCCURRED_MAX_AGE_S, OCCURRED_MAX_AHEAD_S, entry_of

__all__ = ["pusher"]
DAY_S = 86_400


def dated(review: str, at: Timestamp | None) -> ReviewEvent:
    return ReviewEvent(brand_id="Brand2", review_id=review, kind=ReviewEvent.ADDED, occurred_at=at)


OUT_OF_RANGE = {
    "no occurred_at": (dated("undated", None), "has no occurred_at"),
    "year 1": (dated("year-1", Timestamp(seconds=-62_135_596_800)), "out of range"),
    "year 9999": (dated("year-9999", Timestamp(seconds=253_402_214_400)), "out of range"),
    "epoch": (dated("epoch", Timestamp(seconds=0, nanos=1)), "out of range"),
    "two years old": (dated("old", to_timestamp(time.time() - 2 * 365 * DAY_S)), "out of range"),
    "a day ahead": (dated("ahead", to_timestamp(time.time() + DAY_S)), "out of range"),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_an_event_without_a_sane_occurred_at_is_invalid(name: str) -> None:
    review, reason = OUT_OF_RANGE[name]
    with pytest.raises(InvalidInput, match=reason):
        entry_of(review, now_ms=int(time.time() * 1000))


def test_the_edges_of_the_range_are_taken() -> None:
    now_s = time.time()
    now_ms = int(now_s * 1000)
    oldest = entry_of(dated("oldest", Timestamp(seconds=now_ms // 1000 - OCCURRED_MAX_AGE_S + 1)), now_ms=now_ms)
    newest = entry_of(dated("newest", Timestamp(seconds=now_ms // 1000 + OCCURRED_MAX_AHEAD_S)), now_ms=now_ms)
    assert oldest.occurred_ms < newest.occurred_ms


async def test_out_of_range_reviews_are_dead_lettered_with_their_reason_and_the_rest_written(
    pusher: RoomProcess, redis: aioredis.Redis, stream: str, amqp: AbstractRobustConnection, topology: Topology
) -> None:
    keys = BusKeys(stream)
    bad = [review.SerializeToString() for review, _ in OUT_OF_RANGE.values()]
    await publish(amqp, topology, *bad, event("Brand2", "good"))
    dead = await take_messages(amqp, topology.dead_letter_queue, len(bad), timeout_s=20)
    assert [message.body for message in dead] == bad
    for (name, (_, reason)), message in zip(OUT_OF_RANGE.items(), dead, strict=True):
        assert reason in str((message.headers or {})[REASON_HEADER]), name
    await eventually(lambda: _pending(redis, keys.pending("4"), 1))
    assert [decode(e).review for e in await redis.lrange(keys.pending("4"), 0, -1)] == ["good"]


async def _pending(redis: aioredis.Redis, key: str, n: int) -> bool:
    return int(await redis.llen(key)) == n
