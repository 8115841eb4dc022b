"""The prototype's nine-step workflow, end to end with real processes and commands."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from tests.conftest import free_port
from tests.support.metrics import sample
from tests.support.processes import notifier, start_room
from workers.common.contract.keys import BusKeys

STREAM_FILE = """
apiVersion: notifier.io/v1alpha1
kind: NotificationStream
metadata: {{name: {stream}}}
spec:
  brands:
    Brand1: ["1", "2"]
    Brand2: ["4"]
  digest: {{windowSeconds: 30, maxItems: 100}}
  monitor: {{staleAfterSeconds: 5, intervalSeconds: 1}}
"""


async def test_monitor_quiet_push_pull_invalid_alert_clean_quiet(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    keys = BusKeys(stream)
    stream_file = tmp_path / "stream.yaml"
    stream_file.write_text(STREAM_FILE.format(stream=stream))
    assert notifier("mapping", "load", str(stream_file), env=env).returncode == 0

    monitor = start_room("monitor", env=env, log_dir=tmp_path, ops_port=free_port())
    try:
        await monitor.wait_ready()
        await monitor.wait_log(f"stream {stream} quiet")  # 1. the monitor starts quiet

        pushed = notifier("push-valid-data", env=env)  # 2. valid data
        assert pushed.returncode == 0, pushed.stderr
        pulled = notifier("pull", env=env)  # 3. pulled
        assert pulled.returncode == 0, pulled.stderr
        for user in ("1", "2", "4"):
            assert f"user {user}: 1 entries, reviews r-" in pulled.stdout
        mark = len(monitor.log)
        await monitor.wait_log("backlog 0 entries", after=mark)  # 4. serenity

        invalid = notifier("push-invalid-data", "--user", "7777", env=env)  # 5. invalid data
        assert invalid.returncode == 0, invalid.stderr
        assert "to invalid user 7777" in invalid.stdout
        pulled = notifier("pull", env=env)  # 6. pull leaves it
        assert "7777" not in pulled.stdout
        assert await redis.llen(keys.pending("7777")) == 1

        log = await monitor.wait_log(
            "invalid users hold data but belong to no brand: 7777 (1 entries)", timeout_s=3 + 1 + 5
        )
        assert "ALERT" in log  # 7. alerted within staleAfter plus one interval
        assert sample("notifier_monitor_invalid_users", {"stream": stream}, text=await monitor.metrics()) == 1

        mark = len(monitor.log)
        cleaned = notifier("clean", "7777", env=env)  # 8. clean
        assert cleaned.returncode == 0, cleaned.stderr
        assert "user 7777: removed 1 pending entries" in cleaned.stdout
        await monitor.wait_log(f"stream {stream} quiet again", after=mark)  # 9. serenity
        assert sample("notifier_monitor_invalid_users", {"stream": stream}, text=await monitor.metrics()) == 0
        assert await redis.hget(keys.findings, "invalid_users") == "0"
    finally:
        assert monitor.terminate() == 0, monitor.log
    assert "monitor stopped after" in monitor.log
