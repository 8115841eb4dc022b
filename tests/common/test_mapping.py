"""The mapping in Redis: swapped atomically, idempotent, removable; `notifier mapping load` on bad files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.processes import notifier
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import (
    MappingCache,
    delete_mapping,
    read_mapping,
    read_settings,
    write_mapping,
)


async def test_written_mapping_reads_back_with_settings(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    spec = parse_spec({"brands": {"B1": ["1", "2"], "B2": ["2"]}, "digest": {"windowSeconds": 3, "maxItems": 7}})
    result = await write_mapping(redis, keys=keys, spec=spec)
    assert (result.brands, result.users, result.changed) == (2, 2, True)
    mapping = await read_mapping(redis, keys=keys)
    assert mapping.brand_users == {"B1": ("1", "2"), "B2": ("2",)}
    assert mapping.user_brands == {"1": ("B1",), "2": ("B1", "B2")}
    settings = await read_settings(redis, keys=keys)
    assert (settings.window_s, settings.max_items) == (3.0, 7)


async def test_a_reader_sees_a_new_mapping_and_settings_within_its_refresh_and_reads_neither_sooner(
    redis: aioredis.Redis, stream: str
) -> None:
    keys = BusKeys(stream)
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B1": ["1"]}, "digest": {"windowSeconds": 3}}))
    cache = MappingCache(redis, keys=keys, refresh_s=0.5)
    first = await cache.get()
    assert (await cache.stream_settings()).window_s == 3.0
    spec = parse_spec({"brands": {"B1": ["1", "2"]}, "digest": {"windowSeconds": 0, "maxItems": 5}})
    await write_mapping(redis, keys=keys, spec=spec)
    assert (await cache.get()).version == first.version, "within the refresh: the copy in hand"
    assert (await cache.stream_settings()).window_s == 3.0
    await asyncio.sleep(0.6)
    settings = await cache.stream_settings()
    assert (settings.window_s, settings.max_items) == (0.0, 5)
    assert (await cache.get()).user_brands == {"1": ("B1",), "2": ("B1",)}


async def test_loading_the_same_content_again_writes_no_new_version(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    spec = parse_spec({"brands": {"B1": ["1"]}})
    first = await write_mapping(redis, keys=keys, spec=spec)
    again = await write_mapping(redis, keys=keys, spec=spec)
    assert again.changed is False
    assert again.version == first.version


async def test_readers_never_see_a_half_written_mapping(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    small = parse_spec({"brands": {f"A{i}": [f"a{i}"] for i in range(300)}})
    large = parse_spec({"brands": {f"B{i}": [f"b{i}", f"c{i}"] for i in range(300)}})
    await write_mapping(redis, keys=keys, spec=small)
    expected = ({f"A{i}": (f"a{i}",) for i in range(300)}, {f"B{i}": (f"b{i}", f"c{i}") for i in range(300)})
    stop = asyncio.Event()
    seen: list[int] = []

    async def reader() -> None:
        while not stop.is_set():
            mapping = await read_mapping(redis, keys=keys)
            assert mapping.brand_users in expected
            seen.append(len(mapping.brand_users))

    task = asyncio.create_task(reader())
    for i in range(20):
        await write_mapping(redis, keys=keys, spec=large if i % 2 == 0 else small)
    stop.set()
    await task
    assert len(seen) > 5


async def test_delete_removes_every_mapping_key(redis: aioredis.Redis, stream: str) -> None:
    keys = BusKeys(stream)
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": ["1"]}}))
    await write_mapping(redis, keys=keys, spec=parse_spec({"brands": {"B": ["2"]}}))
    assert await delete_mapping(redis, keys=keys) >= 3
    assert [k async for k in redis.scan_iter(match=f"nf:{stream}:map:*")] == []
    assert not (await read_mapping(redis, keys=keys)).version


async def test_cli_loads_a_file_and_refuses_a_bad_one_writing_nothing(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Brand1": ["1", "1"], "Brand2": []}')
    refused = notifier("mapping", "load", str(bad), "--stream", stream, env=env)
    assert refused.returncode == 1
    assert "appears twice" in refused.stderr
    assert "has no users" in refused.stderr
    assert [k async for k in redis.scan_iter(match=f"nf:{stream}:*")] == []

    good = tmp_path / "users.json"
    good.write_text('{"Brand1": [1, 2], "Brand2": [4]}')
    loaded = notifier("mapping", "load", str(good), "--stream", stream, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "2 brands, 3 users" in loaded.stdout
    assert (await read_mapping(redis, keys=BusKeys(stream))).brand_users == {"Brand1": ("1", "2"), "Brand2": ("4",)}


def test_cli_usage_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    assert notifier("mapping", "load", env=env).returncode == 2
    assert notifier("mapping", "load", str(tmp_path / "x.json"), "--stream", "Not A Name", env=env).returncode in (1, 2)
    missing = notifier("mapping", "load", str(tmp_path / "missing.json"), env=env)
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
    assert notifier("no-such-command", env=env).returncode == 2
