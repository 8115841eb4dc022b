"""`kill -9` of a puller in the middle of a batch: the batch arrives later, once, with the same digest id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

from tests.puller.collect import CollectingSink
from tests.support.bus import held, indexed
from tests.support.processes import ROOT
from tests.support.waiting import eventually
from workers.common.contract.entries import make_entry
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_settings, write_mapping
from workers.puller.settings import PullerSettings
from workers.puller.worker import Puller
from workers.pusher.writer import append_entries

LEASE_S = 1.0


async def test_batch_of_a_killed_puller_is_resumed_once_with_the_same_digest_id(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    keys = BusKeys(stream)
    await write_mapping(
        redis, keys=keys, spec=parse_spec({"brands": {"B": ["1", "2"]}, "digest": {"windowSeconds": 0}})
    )
    now_ms = int(time.time() * 1000)
    entries = [
        make_entry(brand="B", review=f"r{i}", kind="added", pushed_ms=now_ms, occurred_ms=now_ms) for i in range(30)
    ]
    await append_entries(
        redis,
        keys=keys,
        by_user={"1": [e.encode() for e in entries], "2": [e.encode() for e in entries[:10]]},
        settings=await read_settings(redis, keys=keys),
        now_s=now_ms / 1000,
    )
    record = tmp_path / "handed.txt"
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.puller.stuck_puller", stream, str(record)],
        cwd=ROOT,
        env={**env, "NOTIFIER_PULLER_LEASE_S": str(LEASE_S), "NOTIFIER_PULLER_POLL_INTERVAL_S": "0.05"},
    )

    def handed_on() -> bool:
        assert victim.poll() is None, "the puller died on its own"
        return record.exists() and len(record.read_text().splitlines()) == 2

    try:
        await eventually(handed_on, timeout_s=30, what="the puller handing its batch on")
    finally:
        victim.kill()
        victim.wait()
    handed = dict(line.split()[::-1] for line in record.read_text().splitlines())
    assert await held(redis, keys, "1", "2") == [True, True]
    assert await redis.llen(keys.pending("1")) == 0

    sink = CollectingSink()
    rescuer = Puller(redis, keys=keys, sink=sink, settings=PullerSettings(lease_s=LEASE_S, poll_interval_s=0.05))
    stopping = asyncio.Event()
    task = asyncio.create_task(rescuer.run(stopping))
    try:
        await eventually(lambda: len(sink.digests) >= 2, timeout_s=30)
        await asyncio.sleep(LEASE_S + 0.3)  # one more lease: nothing may arrive twice
    finally:
        stopping.set()
        await task

    assert {d.user: d.digest_id for d in sink.digests} == handed
    assert len(sink.digests) == 2
    by_user = {d.user: json.loads(d.content) for d in sink.digests}
    assert by_user["1"]["total"] == 30
    assert by_user["2"]["total"] == 10
    assert rescuer.totals["resumed"] == 2
    assert await held(redis, keys, "1", "2") == [False, False]
    assert await indexed(redis, keys, keys.due) == {}
    assert float(await redis.hget(keys.last_pulled_at(keys.shard_of("1")), "1")) >= now_ms / 1000
