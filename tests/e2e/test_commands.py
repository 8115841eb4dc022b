"""`notifier demo` and `notifier up` as a user runs them: real processes, exit codes, what they print."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import AMQP_URL, REDIS_URL, delete_topology
from tests.support.processes import ROOT, clean_env, notifier
from tests.support.tokens import bearer
from workers.common.contract.names import Topology

URL = re.compile(r"http://127\.0\.0\.1:\d+")


def local_env(**extra: str) -> dict[str, str]:
    return {
        **clean_env(),
        "NOTIFIER_REDIS_URL": REDIS_URL,
        "NOTIFIER_AMQP_URL": AMQP_URL,
        "COLUMNS": "200",
        **extra,
    }


def summary_value(output: str, measure: str) -> str:
    match = re.search(rf"{re.escape(measure)}\s*│\s*([^│]+?)\s*│", output)
    assert match, f"no {measure!r} row in:\n{output}"
    return match.group(1)


async def test_demo_plays_the_whole_story_and_its_summary_shows_nothing_lost_or_twice(
    stream: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tmp_path: Path
) -> None:
    try:
        result = await asyncio.to_thread(
            notifier,
            *("demo", "--duration", "3", "--rate", "20", "--stream", stream, "--logs", str(tmp_path)),
            env=local_env(),
            timeout_s=110,
        )
    finally:
        await delete_topology(amqp, Topology(f"{stream}."))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert summary_value(output, "review events in") == "60 (20/s)"
    assert summary_value(output, "devices reached") == "7 of 7"
    assert summary_value(output, "events lost") == "0"
    assert summary_value(output, "duplicates") == "0"
    assert summary_value(output, "invalid user alerted / cleaned / quiet again") == "yes / yes / yes"
    assert summary_value(output, "processes stopped cleanly") == "16 of 16"
    delivered, shown = summary_value(output, "marked delivered in core (user, digest)").split(" of ")
    assert delivered == shown != "0"


async def test_up_serves_every_room_until_sigterm_and_then_stops_them_cleanly(
    stream: str, amqp_namespace: str, redis: aioredis.Redis, amqp: AbstractRobustConnection, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "workers.cli", "up", "--replicas", "1", "--stream", stream, "--logs", str(tmp_path)),
        cwd=ROOT,
        env=local_env(NOTIFIER_AMQP_NAMESPACE=amqp_namespace),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    printed = ""
    try:
        while "stops every process" not in printed:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"notifier up ended early:\n{printed}"
            printed += line.decode()
        hints = printed[printed.index("Try, in another shell") :]
        ws_url = re.search(r"--ws-url (\S+)", hints)
        core_url = re.search(r"--core-url (\S+)", hints)
        assert ws_url, printed
        assert core_url, printed
        # Not a terminal: one plain line per process, `NAME pid PID [http URL] ops URL log PATH`.
        ops_urls = [m.group(1) for line in printed.splitlines() if (m := re.search(r" ops (http://\S+) log ", line))]
        assert len(ops_urls) == 5, printed  # one each of core, ws_delivery, pusher, puller and monitor
        secret = re.search(r"NOTIFIER_JWT_SECRET=\$\(cat (\S+)\)", hints)
        assert secret, printed
        secret_text = await asyncio.to_thread(Path(secret.group(1)).read_text)
        async with httpx.AsyncClient(timeout=5) as http:
            for url in ops_urls:
                assert (await http.get(f"{url}/readyz")).status_code == 200, url
            headers = bearer("1", secret=secret_text.strip())
            assert (await http.get(f"{ws_url.group(1)}/api/v1/ticket", headers=headers)).status_code == 200
            polled = await http.get(f"{core_url.group(1)}/api/v1/notifications/undelivered", headers=headers)
            assert polled.status_code == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, printed + rest.decode()
        assert "5 of 5 processes stopped cleanly" in rest.decode()
    finally:
        if process.returncode is None:  # a failed assertion: `up` still stops the rooms it started
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
