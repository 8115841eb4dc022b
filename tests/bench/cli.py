"""`notifier` start-up: the commands a user types, timed from start to exit, median of several runs.

Timed as an installed `notifier` runs: with bytecode caches for its dependencies and its own modules (what
`make setup`, the images and a shell's second run have), so the bench compiles both first; a
`PYTHONDONTWRITEBYTECODE` environment would otherwise compile every module from source at every start.
`python -c pass` is the baseline, measured in the same run, and so is the floor (`tests/bench/floor.py`): the
least a command that reads its settings and talks to Redis costs with typer, pydantic-settings and redis-py,
before any work of its own.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import sysconfig
import time
import uuid

import redis.asyncio as aioredis

from tests.bench.bus import cleanup
from tests.bench.harness import Bench, Row
from tests.conftest import REDIS_URL
from tests.support.processes import ROOT

GROUP = "notifier start-up"
RUNS = 10


def compile_bytecode() -> None:
    for path in (sysconfig.get_paths()["purelib"], str(ROOT / "workers")):
        compileall.compile_dir(path, quiet=2, workers=0)


def timed(*args: str, stream: str, runs: int) -> float:
    """Median wall-clock seconds of `python *args` (start-up included); the command must succeed."""
    env = {**os.environ, "NOTIFIER_REDIS_URL": REDIS_URL, "NOTIFIER_STREAM": stream}
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def notifier(*args: str, stream: str, runs: int = RUNS) -> float:
    return timed("-m", "workers.cli", *args, stream=stream, runs=runs)


def floor(*, stream: str, runs: int = RUNS) -> float:
    """Median seconds of the floor command (`tests/bench/floor.py`)."""
    return timed("-m", "tests.bench.floor", "bench-floor", "--dry-run", stream=stream, runs=runs)


async def run(bench: Bench) -> None:
    compile_bytecode()
    runs = 3 if bench.quick else RUNS
    stream = f"bench-cli-{uuid.uuid4().hex[:8]}"
    user = "bench-stray"
    baseline = timed("-c", "pass", stream=stream, runs=runs)
    bench.add(Row(GROUP, "python -c pass (baseline)", baseline, "s", f"median of {runs}"))
    bench.add(Row(GROUP, "notifier --help", notifier("--help", stream=stream, runs=runs), "s", "", target="< 0.3 s"))
    least = floor(stream=stream, runs=runs)
    note = "typer command, pydantic-settings, one redis-py PING: the least a Redis command costs"
    bench.add(Row(GROUP, "floor: the fixed dependencies", least, "s", note))
    notifier("push-invalid-data", "--user", user, stream=stream, runs=1)
    dry = notifier("clean", user, "--dry-run", stream=stream, runs=runs)
    note = "a user with a pending entry, shown and kept"
    over = {"the floor": dry / least}
    bench.add(Row(GROUP, "notifier clean USER --dry-run", dry, "s", note, over, target="< 0.3 s"))
    removed = []
    for _ in range(runs):
        notifier("push-invalid-data", "--user", user, stream=stream, runs=1)
        removed.append(notifier("clean", user, stream=stream, runs=1))
    note = f"a user with a pending entry, removed; median of {runs}"
    cleaned = statistics.median(removed)
    over = {"the floor": cleaned / least}
    bench.add(Row(GROUP, "notifier clean USER", cleaned, "s", note, over, target="< 0.3 s"))
    redis = aioredis.Redis.from_url(REDIS_URL)
    await cleanup(redis, stream)
    await redis.aclose()
