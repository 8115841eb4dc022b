"""`notifier pull`: drain every user who belongs to a brand now, printing per user what was found."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Annotated

import typer

from workers.common.clikit import StreamOption, fail, out, print_lines, run, stream_name
from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import StreamSettings
from workers.common.runtime.connections import redis_session
from workers.common.runtime.mapping_store import read_mapping, read_settings
from workers.puller.main import make_sink
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller

SummaryOption = Annotated[
    bool, typer.Option("--summary", help="Print per user only how many entries and reviews were drained, no ids.")
]


def pull(stream: StreamOption = None, summary: SummaryOption = False) -> None:
    """Drain every user who belongs to a brand, hand the digests on (core if NOTIFIER_CORE_URL is set, else the
    log) and print per user every review id drained (--summary: the counts only). Users who belong to no brand
    are left alone."""
    settings = PullerSettings()
    keys = BusKeys(stream_name(stream, settings))

    async def go() -> None:
        async with redis_session(settings) as redis, AsyncExitStack() as stack:
            sink = make_sink(settings)
            stack.push_async_callback(sink.close)
            mapping = await read_mapping(redis, keys=keys)
            if not mapping.version:
                raise fail(f"stream {keys.stream} has no mapping: run `notifier mapping load FILE` first")
            puller = Puller(redis, keys=keys, sink=sink, settings=settings)
            started = time.monotonic()
            found, busy = await _drain(puller, sorted(mapping.user_brands), await read_settings(redis, keys=keys))
            _report(found, busy, ids=not summary)
            out.print(
                f"pulled {puller.totals['entries']} entries into {puller.totals['digests']} digests "
                f"in {time.monotonic() - started:.2f}s"
            )

    run(go())


async def _drain(puller: Puller, users: list[str], settings: StreamSettings) -> tuple[dict[str, list[str]], set[str]]:
    """Pull `users` until none has entries left; returns the review ids per user and the users held elsewhere."""
    found: dict[str, list[str]] = {user: [] for user in users}
    busy: set[str] = set()
    remaining = list(users)
    while remaining:
        pulled = await puller.pull(remaining, settings=settings)
        for batch in pulled.batches:
            found[batch.user].extend(entry.review for entry in batch.entries)
        busy.update(pulled.claimed.busy)
        remaining = [batch.user for batch in pulled.batches]
    return found, busy


def _report(found: dict[str, list[str]], busy: set[str], *, ids: bool) -> None:
    """One plain line per user: every distinct review id drained (the digests themselves may list fewer, see
    NOTIFIER_PULLER_MAX_IDS_PER_BRAND), or with `ids` false only the counts."""
    print_lines(_line(user, reviews, busy=user in busy, ids=ids) for user, reviews in found.items())


def _line(user: str, reviews: list[str], *, busy: bool, ids: bool) -> str:
    if busy:
        return f"user {user}: being pulled by another puller, skipped"
    if not reviews:
        return f"user {user}: nothing pending"
    unique = list(dict.fromkeys(reviews))
    listed = f"reviews {', '.join(unique)}" if ids else f"{len(unique)} reviews"
    return f"user {user}: {len(reviews)} entries, {listed}"


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
