"""Every ordinary fault in one run: nothing lost, nothing shown twice, per device; no room gives up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenario import Chaos

pytestmark = pytest.mark.timeout(600)


async def test_every_review_reaches_every_device_once_through_kills_broker_cuts_and_redis_restarts(
    tmp_path: Path,
) -> None:
    report = await Chaos(tmp_path, rate=20.0, settle_s=3.0).run()

    assert report.events_in > 0
    assert [fault.name for fault in report.faults if fault.recovered_s is None] == [], report.faults
    for name, device in report.devices.items():
        assert device.expected > 0, name
        assert (device.lost, device.duplicates) == (0, 0), device
    assert len(report.devices) == 4
    assert report.exited_on_their_own == [], "a room exited on its own"
    assert report.unready_during_redis_outage, "readiness was watched during the Redis outage"
    unready = {name for name, seen in report.unready_during_redis_outage.items() if seen}
    assert {"pusher-1", "pusher-2", "puller-1", "puller-2", "core-1", "core-2", "monitor-1"} <= unready, (
        report.unready_during_redis_outage
    )
    assert all(report.ready_after_redis_outage.values()), report.ready_after_redis_outage
    assert all(code == 0 for code in report.exit_codes.values()), report.exit_codes
