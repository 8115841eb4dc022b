"""The pure parts: resend bookkeeping, deduplication, the heap policy."""

from __future__ import annotations

import asyncio
import gc

from tests.support.waiting import eventually
from workers.ws_delivery import heap
from workers.ws_delivery.dedup import Deduplicator
from workers.ws_delivery.outbox import Outbox


def test_outbox_resends_up_to_the_limit_then_reports_unresponsive() -> None:
    outbox = Outbox(interval_s=10, retry_limit=2)
    outbox.track(message_id="1", frame=b"f", confirm_id="n1", now=0)
    assert outbox.collect_due(9).resend == []
    assert [e.message_id for e in outbox.collect_due(10).resend] == ["1"]
    assert [e.message_id for e in outbox.collect_due(20).resend] == ["1"]
    due = outbox.collect_due(30)
    assert due.unresponsive
    assert due.resend == []


def test_outbox_keeps_entries_in_due_order_and_forgets_acked_ones() -> None:
    outbox = Outbox(interval_s=10, retry_limit=5)
    outbox.track(message_id="1", frame=b"a", confirm_id="", now=0)
    outbox.track(message_id="2", frame=b"b", confirm_id="", now=5)
    outbox.collect_due(10)
    assert outbox.next_due() == 15
    acked = outbox.ack("2")
    assert acked is not None
    assert acked.message_id == "2"
    assert outbox.ack("2") is None, "a second ack of one message finds nothing"
    assert outbox.next_due() == 20
    assert len(outbox) == 1


def test_dedup_admits_only_newer_timestamps_per_triple() -> None:
    dedup = Deduplicator(capacity=10)
    assert dedup.admit("u", "n", 0, timestamp_ns=5)
    assert not dedup.admit("u", "n", 0, timestamp_ns=5)
    assert not dedup.admit("u", "n", 0, timestamp_ns=4)
    assert dedup.admit("u", "n", 1, timestamp_ns=5), "another status is another triple"
    assert dedup.admit("v", "n", 0, timestamp_ns=5), "another user is another triple"
    assert dedup.admit("u", "n", 0, timestamp_ns=6)


def test_dedup_memory_is_bounded_forgetting_the_least_recently_used() -> None:
    dedup = Deduplicator(capacity=2)
    dedup.admit("u", "a", 0, timestamp_ns=1)
    dedup.admit("u", "b", 0, timestamp_ns=1)
    dedup.admit("u", "a", 0, timestamp_ns=1)  # touches a
    dedup.admit("u", "c", 0, timestamp_ns=1)  # evicts b
    assert len(dedup) == 2
    assert not dedup.admit("u", "a", 0, timestamp_ns=1)
    assert dedup.admit("u", "b", 0, timestamp_ns=1)


async def test_heap_policy_freezes_live_objects_until_stopped() -> None:
    stopping = asyncio.Event()
    gc.unfreeze()
    task = asyncio.create_task(heap.keep_frozen(stopping, freeze_every_s=0.01, collect_every_s=0.02))
    try:
        await eventually(lambda: gc.get_freeze_count() > 0)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)
        gc.unfreeze()
    assert task.done()
