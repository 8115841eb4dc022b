"""The prototype's two jobs, as a user runs them: Notifier's commands against naive reference loops.

The references are the earlier prototype's workflow written as plainly as it was: per user one `RPUSH`
of the review (push), and per user `LRANGE` + `LTRIM` of the list (pull), each a round trip. Notifier's
side is the whole command, started and timed as a user would: `notifier push-valid-data` (a review for
every brand, fanned out to every user of the brand) and `notifier pull` (every user drained into one
digest, printed). Three mappings of 100,000 users in all: 1000 brands x 100 users, 100 x 1000, 10000 x 10.
The puller room's pace is measured on its own: users/s with one entry per user and with 40.

Each job runs three times (once with `--quick`), the reference loop and the command side by side in each
round, so a round's ratio compares runs a few seconds apart: a row shows the median round's time and the
median, slowest and fastest ratio, as the first comparison of the two systems did. The CPU time Redis spent
during each command (`INFO cpu`) shows how much of it was Redis's work.

Each command row also shows the bound on its speed-up: the reference loop's time over the floor command's
(`tests/bench/floor.py`, the start-up and one round trip every Redis command pays with the fixed
dependencies), the ratio a command doing no work at all would reach. A target above that bound cannot be
met on the machine that ran it, whatever the command does. Push has a second, tighter bound: the floor plus
the CPU time Redis needs for the least a per-user digest window must write, whatever the layout (`least_write`:
per user one member of a due index and one stored entry, both written with variadic commands, a few thousand
per call, in 16 shards). Each user's window closes at its own time, so some per-user write is the price of
the window; fanning out on read would drop it with the window itself.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid

import redis.asyncio as aioredis

from tests.bench.bus import cleanup, puller_drain
from tests.bench.cli import compile_bytecode, floor
from tests.bench.harness import Bench, Row
from tests.conftest import REDIS_URL
from tests.support.processes import ROOT
from workers.common.contract.keys import DEFAULT_SHARDS, BusKeys, shard_of
from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import write_mapping

GROUP = "prototype jobs"
ENTRY = "Brand0|r-0123456789ab|A|1764770000000|1764770000000"
"""A pending entry of the length the pusher writes (`brand|review|kind|pushed_ms|occurred_ms`)."""
SHAPES = ((1000, 100), (100, 1000), (10000, 10))


def brands_of(brands: int, per_brand: int) -> dict[str, list[str]]:
    return {f"Brand{b}": [f"u{b * per_brand + i}" for i in range(per_brand)] for b in range(brands)}


async def naive_push(redis: aioredis.Redis, prefix: str, mapping: dict[str, list[str]]) -> float:
    started = time.perf_counter()
    for brand, users in mapping.items():
        review = f"{brand}|r-{uuid.uuid4().hex[:12]}|A"
        for user in users:
            await redis.rpush(f"{prefix}{user}", review)
    return time.perf_counter() - started


async def naive_pull(redis: aioredis.Redis, prefix: str, mapping: dict[str, list[str]]) -> float:
    started = time.perf_counter()
    for users in mapping.values():
        for user in users:
            await redis.lrange(f"{prefix}{user}", 0, -1)
            await redis.ltrim(f"{prefix}{user}", 1, 0)
    return time.perf_counter() - started


LEAST_CHUNK = 2000
"""Users per variadic command in `least_write`, as the pusher's scripts take them."""


async def least_write(redis: aioredis.Redis, users: list[str], *, entry: str) -> float:
    """CPU seconds Redis spends on the least a per-user window needs for `users`: each one a member of its
    shard's due index (`ZADD NX`, one sorted set per shard) and its entry as a field of its shard's hash
    (`HSET`, cheaper than a list of its own), variadic and pipelined. The keys are removed after."""
    shards: dict[int, list[str]] = {}
    for user in users:
        shards.setdefault(shard_of(user, DEFAULT_SHARDS), []).append(user)
    stream = f"bench-least-{uuid.uuid4().hex[:8]}"
    keys = {shard: (f"{{{stream}.{shard}}}:due", f"{{{stream}.{shard}}}:held") for shard in shards}
    pipe = redis.pipeline(transaction=False)
    for shard, members in shards.items():
        due, held = keys[shard]
        for start in range(0, len(members), LEAST_CHUNK):
            chunk = members[start : start + LEAST_CHUNK]
            pipe.zadd(due, dict.fromkeys(chunk, 1.0), nx=True)
            pipe.hset(held, mapping=dict.fromkeys(chunk, entry))
    before = await redis_cpu_s(redis)
    await pipe.execute()
    spent = await redis_cpu_s(redis) - before
    await redis.delete(*(key for pair in keys.values() for key in pair))
    return spent


async def stamps_bytes(redis: aioredis.Redis, keys: BusKeys) -> int:
    """Bytes Redis holds in the stream's `last_pulled_at` hashes, all the bus keeps of a user once pulled."""
    sizes = [await redis.memory_usage(keys.last_pulled_at(shard), samples=0) for shard in keys.shards]
    return sum(size or 0 for size in sizes)


async def redis_cpu_s(redis: aioredis.Redis) -> float:
    """CPU seconds the Redis server has used (`INFO cpu`, user and system)."""
    cpu = await redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def timed(redis: aioredis.Redis, *args: str, stream: str) -> tuple[float, float]:
    """One `notifier` command: its wall-clock seconds and the CPU seconds Redis spent meanwhile."""
    before = await redis_cpu_s(redis)
    took = command(*args, stream=stream)
    return took, await redis_cpu_s(redis) - before


def command(*args: str, stream: str) -> float:
    """Wall-clock seconds of one `notifier` command, start-up included."""
    env = {**os.environ, "NOTIFIER_REDIS_URL": REDIS_URL, "NOTIFIER_STREAM": stream}
    env.pop("NOTIFIER_CORE_URL", None)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


ROUNDS = 3


def speed_ups(
    reference: list[float], measured: list[float], *, label: str, least: float, work: float | None = None
) -> dict[str, float]:
    """The ratios of a row: per round the reference loop's time over the command's, as median, min and max, and
    the bound (the median reference loop over the floor); with `work`, the CPU seconds Redis needs at least for
    the job, also the bound over the floor plus that work."""
    per_round = [ref / took for ref, took in zip(reference, measured, strict=True)]
    ratios = {
        f"{label} (median)": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
        "bound (loop over the floor)": statistics.median(reference) / least,
    }
    if work is not None:
        ratios["bound (loop over the floor + least Redis work)"] = statistics.median(reference) / (least + work)
    return ratios


async def run(bench: Bench) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    scale, rounds = (10, 1) if bench.quick else (1, ROUNDS)
    compile_bytecode()
    least = floor(stream=f"bench-proto-{uuid.uuid4().hex[:8]}", runs=3 if bench.quick else 5)
    for brands, per_brand in SHAPES:
        shape = f"{brands // scale} x {per_brand}"
        mapping = brands_of(brands // scale, per_brand)
        stream = f"bench-proto-{uuid.uuid4().hex[:8]}"
        await write_mapping(redis, keys=BusKeys(stream), spec=parse_spec({"brands": mapping}))
        naive_in, pushed, naive_out, pulled, least_in = [], [], [], [], []
        in_redis: dict[str, list[float]] = {"push-valid-data": [], "pull": []}
        for _ in range(rounds):
            prefix = f"bench-naive-{uuid.uuid4().hex[:8]}:"
            naive_in.append(await naive_push(redis, prefix, mapping))
            least_in.append(await least_write(redis, [u for us in mapping.values() for u in us], entry=ENTRY))
            took, cpu = await timed(redis, "push-valid-data", stream=stream)
            pushed.append(took)
            in_redis["push-valid-data"].append(cpu)
            naive_out.append(await naive_pull(redis, prefix, mapping))
            took, cpu = await timed(redis, "pull", "--summary", stream=stream)
            pulled.append(took)
            in_redis["pull"].append(cpu)
        users = sum(len(u) for u in mapping.values())
        kept = await stamps_bytes(redis, BusKeys(stream))
        await cleanup(redis, stream)
        note = f"{users} entries; median of {rounds}"
        work = statistics.median(least_in)
        speed_up = speed_ups(naive_in, pushed, label="naive RPUSH loop", least=least, work=work)
        bench.add(Row(GROUP, f"push-valid-data, {shape}", statistics.median(pushed), "s", note, speed_up, "≥ 40x"))
        note = f"{users} users; median of {rounds}"
        speed_up = speed_ups(naive_out, pulled, label="naive LRANGE+LTRIM loop", least=least)
        bench.add(Row(GROUP, f"pull, {shape}", statistics.median(pulled), "s", note, speed_up, "≥ 10x"))
        note = f"INFO cpu over one ZADD NX + one HSET field per user, variadic; median of {rounds}"
        bench.add(Row(GROUP, f"least Redis work of a per-user window, {shape}", work, "s", note))
        for job, took in (("push-valid-data", pushed), ("pull", pulled)):
            cpu = statistics.median(in_redis[job])
            note = f"INFO cpu over the command, median of {rounds}: {cpu / statistics.median(took):.0%} of its time"
            bench.add(Row(GROUP, f"Redis CPU in {job}, {shape}", cpu, "s", note))
        note = "what the bus keeps of a pulled user: its last_pulled_at field (MEMORY USAGE)"
        bench.add(Row(GROUP, f"bus memory after the pull, {shape}", kept / users, "bytes/user", note))
    users = 100_000 // scale
    for per_user in (1, 40):
        rates = []
        for _ in range(rounds):
            stream = f"bench-pull-{uuid.uuid4().hex[:8]}"
            _, rate = await puller_drain(stream, users=users // (4 if per_user > 1 else 1), per_user=per_user)
            await cleanup(redis, stream)
            rates.append(rate)
        name = f"puller room, {per_user} entries/user"
        target = "≥ 30,000 users/s" if per_user == 1 else ""
        note = f"one process, counting sink; median of {rounds} ({min(rates):,.0f}-{max(rates):,.0f})"
        bench.add(Row(GROUP, name, statistics.median(rates), "users/s", note, target=target))
    await redis.aclose()
