"""`notifier pull`: drain every user who belongs to a brand now, printing per user what was found."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Annotated

import redis.asyncio as aioredis
import typer

from workers.common.clikit import StreamOption, fail, out, print_lines, run, stream_name
from workers.common.contract.keys import BusKeys
from workers.common.contract.stream import StreamSettings
from workers.common.runtime.connections import redis_session
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.mapping_store import read_settings
from workers.puller.claims import Batch
from workers.puller.settings import PullerSettings
from workers.puller.sink import make_sink
from workers.puller.worker import Puller

SummaryOption = Annotated[bool, typer.Option("--summary", help="Print only the totals drained, no line per user.")]


def pull(stream: StreamOption = None, summary: SummaryOption = False) -> None:
    """Drain every user who belongs to a brand, hand the digests on (core if NOTIFIER_CORE_URL is set, else the
    log) and print per user every review id drained (--summary: the totals only). Users who belong to no brand
    are left alone."""
    settings = PullerSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> None:
        async with redis_session(settings) as redis, AsyncExitStack() as stack:
            sink = make_sink(settings)
            stack.push_async_callback(sink.close)
            await claim_layout(redis, keys.stream, keys.shard_count)
            users = await _valid_users(redis, keys=keys)
            if users is None:
                raise fail(f"stream {keys.stream} has no mapping: run `notifier mapping load FILE` first")
            puller = Puller(redis, keys=keys, sink=sink, settings=settings)
            started = time.monotonic()
            users.sort()
            batches, busy = await _drain(puller, users, await read_settings(redis, keys=keys), details=not summary)
            _report(users, batches, busy, ids=not summary)
            out.print(
                f"pulled {puller.totals['entries']} entries into {puller.totals['digests']} digests "
                f"in {time.monotonic() - started:.2f}s"
            )

    run(go())


async def _valid_users(redis: aioredis.Redis, *, keys: BusKeys) -> list[str] | None:
    """Every user of a brand in the mapping in force, or None without a mapping: the names of the version hash's
    `user:` fields (docs/design.md section 4), none of its values decoded."""
    for _ in range(5):
        version = await redis.get(keys.map_current)
        if not version:
            return None
        fields: list[str] = await redis.hkeys(keys.map_version(version))
        if fields:
            return [field[5:] for field in fields if field.startswith("user:")]
    return None


async def _drain(
    puller: Puller, users: list[str], settings: StreamSettings, *, details: bool
) -> tuple[list[Batch], set[str]]:
    """Pull `users` until none has entries left; returns every batch taken, in the order taken, and the users held
    elsewhere. Without `details` (counts only) the batches come without their entries where the script rendered
    the digest, and a full batch without what it left pending: such a user is pulled again."""
    taken: list[Batch] = []
    busy: set[str] = set()
    remaining = users
    while remaining:
        passes = await puller.pull(remaining, settings=settings, details=details)
        remaining = []
        for pulled in passes:
            taken += pulled.batches
            busy.update(pulled.claimed.busy)
            remaining += [batch.user for batch in pulled.batches if batch.left is None or batch.left > 0]
    return taken, busy


def _report(users: list[str], batches: list[Batch], busy: set[str], *, ids: bool) -> None:
    """With `ids`, one plain line per user of `users`: every distinct review id drained (the digests themselves
    may list fewer, see NOTIFIER_PULLER_MAX_IDS_PER_BRAND); else one line of totals (reviews counted per digest
    when a user was drained into several)."""
    if ids:
        by_user: dict[str, list[Batch]] = {}
        for batch in batches:
            by_user.setdefault(batch.user, []).append(batch)
        print_lines(_line(user, by_user.get(user, []), busy=user in busy) for user in users)
        return
    drained = {batch.user for batch in batches}
    entries = sum(batch.size for batch in batches)
    reviews = sum(batch.distinct if batch.content else len(_unique([batch])) for batch in batches)
    line = f"{len(drained)} users drained: {entries} entries, {reviews} reviews in {len(batches)} digests"
    if busy:
        line += f"; {len(busy)} being pulled by another puller, skipped"
    if nothing := len(users) - len(drained) - len(busy - drained):
        line += f"; {nothing} with nothing pending"
    print_lines([line])


def _unique(batches: list[Batch]) -> list[str]:
    return list(dict.fromkeys(entry.review for batch in batches for entry in batch.entries))


def _line(user: str, batches: list[Batch], *, busy: bool) -> str:
    if busy:
        return f"user {user}: being pulled by another puller, skipped"
    if not batches:
        return f"user {user}: nothing pending"
    entries = sum(batch.size for batch in batches)
    return f"user {user}: {entries} entries, reviews {', '.join(_unique(batches))}"


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
