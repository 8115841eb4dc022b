"""The linger inbox: batches of what arrived, a first item waits for company, stopping ends the wait."""

from __future__ import annotations

import asyncio

from workers.common.runtime.aio import LingerInbox


async def test_a_batch_takes_what_arrives_within_the_linger() -> None:
    inbox = LingerInbox[int](max_batch=10, linger_s=5.0)
    stopping = asyncio.Event()
    inbox.put(0)
    taking = asyncio.create_task(inbox.next_batch(stopping))
    for n in range(1, 4):
        await asyncio.sleep(0)
        inbox.put(n)
    await asyncio.sleep(0)
    assert not taking.done(), "the batch lingers for more"
    stopping.set()
    assert await taking == [0, 1, 2, 3], "stopping ends the linger and takes what is there"


async def test_a_full_batch_is_taken_without_waiting_out_the_linger() -> None:
    inbox = LingerInbox[int](max_batch=3, linger_s=60.0)
    stopping = asyncio.Event()
    taking = asyncio.create_task(inbox.next_batch(stopping))
    for n in range(5):
        inbox.put(n)
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        assert await taking == [0, 1, 2]
    assert len(inbox) == 2


async def test_without_a_linger_a_batch_is_what_is_there() -> None:
    inbox = LingerInbox[str](max_batch=2, linger_s=0.0)
    for item in "abc":
        inbox.put(item)
    stopping = asyncio.Event()
    assert await inbox.next_batch(stopping) == ["a", "b"]
    assert await inbox.next_batch(stopping) == ["c"]


async def test_an_empty_inbox_waits_until_an_item_or_stopping() -> None:
    inbox = LingerInbox[int](max_batch=5, linger_s=0.0)
    stopping = asyncio.Event()
    waiting = asyncio.create_task(inbox.next_batch(stopping))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    inbox.put(7)
    assert await waiting == [7]
    waiting = asyncio.create_task(inbox.next_batch(stopping))
    await asyncio.sleep(0.05)
    stopping.set()
    assert await waiting == [], "empty only when stopping and nothing is left"


async def test_stopping_still_hands_out_what_is_left() -> None:
    inbox = LingerInbox[int](max_batch=2, linger_s=60.0)
    stopping = asyncio.Event()
    stopping.set()
    for n in range(3):
        inbox.put(n)
    assert await inbox.next_batch(stopping) == [0, 1]
    assert await inbox.next_batch(stopping) == [2]
    assert await inbox.next_batch(stopping) == []
