"""`notifier demo`: the review bus story on local Redis and RabbitMQ, with real room processes.

Loads the sample NotificationStream (shorter windows, so the story fits in a minute), starts two pushers,
two pullers and a monitor, publishes review events at a steady rate, waits until every entry is in a
digest, then plays the prototype's invalid-user story: invalid data pushed, the monitor alerts, the
cleaner removes it, the monitor is quiet again. Ends with a summary table.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from workers.common.connections import connect_redis
from workers.common.keys import BusKeys
from workers.common.mapping import write_mapping
from workers.common.settings import BrokerSettings
from workers.common.streamspec import parse_spec
from workers.local.stack import LocalStack, Proc

console = Console(highlight=False)

SAMPLE_BRANDS = {"Brand1": ["1", "2"], "Brand2": ["4"], "Brand3": ["2", "5", "6"]}
DEMO_SPEC = {
    "brands": SAMPLE_BRANDS,
    "digest": {"windowSeconds": 3, "maxItems": 100},
    "monitor": {"staleAfterSeconds": 6, "intervalSeconds": 2},
}


@dataclass
class Story:
    published: int = 0
    entries: int = 0
    digests: int = 0
    invalid_alerted: bool = False
    invalid_cleaned: bool = False
    quiet_again: bool = False
    exit_codes: dict[str, int] = field(default_factory=dict)


def notifier(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], env=env, capture_output=True, text=True, check=False
    )


async def metric_sum(procs: list[Proc], name: str) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=5.0) as client:
        for proc in procs:
            for line in (await client.get(f"{proc.ops_url}/metrics")).text.splitlines():
                if line.startswith(name) and not line.startswith("#"):
                    total += float(line.split()[-1])
    return total


async def wait_log(proc: Proc, text: str, *, after: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in proc.log_path.read_text(errors="replace")[after:]:
            return True
        await asyncio.sleep(0.2)
    return False


async def wait_drained(redis: aioredis.Redis, keys: BusKeys, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not await redis.zcard(keys.pending_since) and not await redis.zcard(keys.due):
            return True
        await asyncio.sleep(0.25)
    return False


async def run_demo(*, stream: str, duration_s: float, rate: float, log_dir: Path) -> Story:
    settings = BrokerSettings()
    env = {**os.environ, "NOTIFIER_STREAM": stream, "NOTIFIER_AMQP_NAMESPACE": settings.amqp_namespace}
    story = Story()
    keys = BusKeys(stream)
    redis = await connect_redis(settings.redis_url, timeout_s=settings.connect_timeout_s)
    stack = LocalStack(env=env, log_dir=log_dir)
    try:
        console.rule(f"[bold]Notifier demo[/] — stream {stream}")
        result = await write_mapping(redis, keys=keys, spec=parse_spec(DEMO_SPEC))
        console.print(f"loaded the sample NotificationStream: {result.brands} brands, {result.users} users")
        pushers = [stack.start("pusher") for _ in range(2)]
        pullers = [stack.start("puller") for _ in range(2)]
        monitor = stack.start("monitor")
        await stack.wait_ready()
        console.print(f"started {len(stack.procs)} processes (logs in {log_dir})")

        count = max(1, int(duration_s * rate))
        published = notifier("publish-reviews", "--count", str(count), "--rate", str(rate), env=env)
        console.print(published.stdout.strip().splitlines()[-1] if published.stdout else published.stderr)
        story.published = count if published.returncode == 0 else 0
        console.print("waiting for every digest window to close ...")
        drained = await wait_drained(redis, keys, timeout_s=DEMO_SPEC["digest"]["windowSeconds"] + 30)  # type: ignore[index]
        story.entries = int(await metric_sum(pushers, "notifier_pusher_entries_total"))
        story.digests = int(await metric_sum(pullers, "notifier_puller_digests_total"))
        console.print(
            f"{story.entries} entries fanned out, {story.digests} digests created"
            + ("" if drained else " [red](backlog not drained)[/]")
        )

        console.rule("invalid data")
        mark = len(monitor.log_path.read_text(errors="replace"))
        pushed = notifier("push-invalid-data", "--user", "7777", env=env)
        console.print(pushed.stdout.strip() or pushed.stderr.strip())
        story.invalid_alerted = await wait_log(monitor, "invalid users hold data", after=mark, timeout_s=15)
        console.print("monitor alerted: " + ("yes" if story.invalid_alerted else "[red]no[/]"))
        cleaned = notifier("clean", "--invalid", env=env)
        console.print(cleaned.stdout.strip() or cleaned.stderr.strip())
        story.invalid_cleaned = cleaned.returncode == 0
        mark = len(monitor.log_path.read_text(errors="replace"))
        story.quiet_again = await wait_log(monitor, "quiet again", after=mark, timeout_s=15)
        console.print("monitor quiet again: " + ("yes" if story.quiet_again else "[red]no[/]"))
    finally:
        story.exit_codes = stack.stop()
        await redis.aclose()
    return story


def summary(story: Story) -> Table:
    table = Table(title="Notifier demo summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("review events published", f"{story.published:,}")
    table.add_row("entries fanned out to users", f"{story.entries:,}")
    table.add_row("digests created", f"{story.digests:,}")
    table.add_row(
        "invalid user alerted / cleaned / quiet again",
        f"{story.invalid_alerted} / {story.invalid_cleaned} / {story.quiet_again}",
    )
    clean = sum(1 for code in story.exit_codes.values() if code == 0)
    table.add_row("processes stopped cleanly", f"{clean} of {len(story.exit_codes)}")
    return table


def succeeded(story: Story) -> bool:
    return (
        story.published > 0
        and story.digests > 0
        and story.invalid_alerted
        and story.invalid_cleaned
        and story.quiet_again
        and all(code == 0 for code in story.exit_codes.values())
    )
