"""Pusher commands: `push-valid-data`, `push-invalid-data` (straight into Redis, like the prototype) and
`publish-reviews` (generated ReviewEvents through the broker)."""

from __future__ import annotations

import json
import random
import secrets
import time
from typing import Annotated

import redis.asyncio as aioredis
import typer

from workers.common.clikit import StreamOption, fail, out, print_lines, run, stream_name
from workers.common.contract.entries import KINDS, make_entry
from workers.common.contract.keys import ID_PATTERN, BusKeys, is_valid_id
from workers.common.runtime.connections import redis_session
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.mapping_store import read_mapping, read_settings
from workers.common.runtime.settings import BrokerSettings
from workers.pusher.fanout import FanOut
from workers.pusher.writer import append_entries

BRAND_SCAN = 1_000_000
"""HSCAN's COUNT for the brand fields: the whole version hash in one call."""


def _review_id() -> str:
    return f"r-{secrets.token_hex(6)}"


def push_valid_data(stream: StreamOption = None) -> None:
    """Push a random review for every brand, reaching every user of the brand."""
    settings = BrokerSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> None:
        async with redis_session(settings) as redis:
            await claim_layout(redis, keys.stream, keys.shard_count)
            brand_users = await _brand_users(redis, keys=keys)
            if brand_users is None:
                raise fail(f"stream {keys.stream} has no mapping: run `notifier mapping load FILE` first")
            now_ms = int(time.time() * 1000)
            fan = FanOut(shards=keys.shard_count)
            lines = []
            for brand, users in sorted(brand_users.items()):
                entry = make_entry(
                    brand=brand, review=_review_id(), kind=random.choice(KINDS), pushed_ms=now_ms, occurred_ms=now_ms
                )
                fan.add(entry, users)
                lines.append(f"pushed review {entry.review} ({entry.kind}) of {brand} to users {', '.join(users)}")
            stream_settings = await read_settings(redis, keys=keys)
            await append_entries(redis, keys=keys, by_user=fan.by_user, settings=stream_settings, now_s=now_ms / 1000)
            lines.append(f"{fan.entries} entries for {len(fan.by_user)} users in stream {keys.stream}")
            print_lines(lines)

    run(go())


async def _brand_users(redis: aioredis.Redis, *, keys: BusKeys) -> dict[str, list[str]] | None:
    """Each brand's users in the mapping in force, or None without a mapping. Only the `brand:` fields of the
    version hash are read and decoded (docs/design.md section 4), not the user -> brands half: a push needs
    no more, and with 100,000 users that half is most of the hash."""
    for _ in range(5):
        version = await redis.get(keys.map_current)
        if not version:
            return None
        name, cursor, raw = keys.map_version(version), 0, {}
        while True:
            cursor, found = await redis.hscan(name, cursor, match="brand:*", count=BRAND_SCAN)
            raw.update(found)
            if not cursor:
                break
        if raw or await redis.exists(name):
            return {field.removeprefix("brand:"): json.loads(users) for field, users in raw.items()}
    return None


def push_invalid_data(
    stream: StreamOption = None,
    user: Annotated[str | None, typer.Option("--user", help="The user to push under (default: a random one).")] = None,
) -> None:
    """Push a random review under a user who belongs to no brand (invalid data)."""
    settings = BrokerSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)
    if user is not None and not is_valid_id(user):
        raise fail(f"--user must match {ID_PATTERN}", code=2)

    async def go() -> None:
        async with redis_session(settings) as redis:
            await claim_layout(redis, keys.stream, keys.shard_count)
            mapping = await read_mapping(redis, keys=keys)
            target = user or _unknown_user(set(mapping.user_brands))
            if mapping.is_valid_user(target):
                raise fail(f"user {target} belongs to brands {', '.join(mapping.user_brands[target])}: not invalid")
            brand = random.choice(sorted(mapping.brand_users) or ["Brand0"])
            now_ms = int(time.time() * 1000)
            entry = make_entry(brand=brand, review=_review_id(), kind="added", pushed_ms=now_ms, occurred_ms=now_ms)
            stream_settings = await read_settings(redis, keys=keys)
            await append_entries(
                redis, keys=keys, by_user={target: [entry.encode()]}, settings=stream_settings, now_s=now_ms / 1000
            )
            out.print(f"pushed review {entry.review} of {brand} to invalid user {target} (belongs to no brand)")

    run(go())


def _unknown_user(known: set[str]) -> str:
    while True:
        candidate = str(random.randint(1000, 9999))
        if candidate not in known:
            return candidate


def publish_reviews(
    count: Annotated[int, typer.Option("--count", min=1, help="How many review events to publish.")] = 1000,
    rate: Annotated[float, typer.Option("--rate", min=0, help="Events per second (0: as fast as possible).")] = 0.0,
    brand: Annotated[
        list[str] | None, typer.Option("--brand", help="Brands to use (default: every brand of the mapping).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for reproducible events.")] = None,
    stream: StreamOption = None,
) -> None:
    """Publish COUNT generated ReviewEvents to `notifier.reviews` with publisher confirms."""
    # The broker client, protobuf and the progress bar load only here: the Redis commands above need none.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from workers.common.contract.names import Topology
    from workers.common.runtime.amqp import declare_topology
    from workers.common.runtime.connections import connect_amqp
    from workers.pusher.publisher import generated_event, publish_events

    settings = BrokerSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)
    bad = [b for b in brand or [] if not is_valid_id(b)]
    if bad:
        raise fail(f"--brand {bad[0]!r} must match {ID_PATTERN}", code=2)

    async def go() -> None:
        brands = list(brand or [])
        if not brands:
            async with redis_session(settings) as redis:
                brands = sorted((await read_mapping(redis, keys=keys)).brand_users)
        if not brands:
            raise fail(f"stream {keys.stream} has no mapping and no --brand was given")
        connection = await connect_amqp(settings.amqp_url, timeout_s=settings.connect_timeout_s)
        try:
            channel = await connection.channel(publisher_confirms=True)
            topology = Topology(settings.amqp_namespace)
            declared = await declare_topology(channel, topology)
            rng = random.Random(seed)
            columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, transient=False) as bar:
                task = bar.add_task("publish", total=count)
                started = time.monotonic()
                done = await publish_events(
                    declared.reviews,
                    topology=topology,
                    events=lambda _: generated_event(brands, rng=rng),
                    count=count,
                    rate=rate,
                    progress=lambda n: bar.advance(task, n),
                )
            elapsed = time.monotonic() - started
            out.print(f"published {done} review events in {elapsed:.1f}s ({done / max(elapsed, 1e-9):,.0f}/s)")
        finally:
            await connection.close()

    run(go())


def register(app: typer.Typer) -> None:
    app.command("push-valid-data")(push_valid_data)
    app.command("push-invalid-data")(push_invalid_data)
    app.command("publish-reviews")(publish_reviews)
