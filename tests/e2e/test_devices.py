"""Every device of a user gets every digest exactly once, whatever it missed: a device away while another
acknowledges, devices whose ws_delivery replica is killed (-9) long-polling the feed, a broadcast reaching a
user first seen after it was sent. Counted per device by the demo's ledger."""

from __future__ import annotations

import base64

import httpx

from tests.e2e.conftest import DEVICES, Run
from tests.support.tokens import bearer
from workers.common.contract import paths
from workers.local.devices import Device
from workers.local.ledger import outcome, shown_digests

BURST = 24


def device(run: Run, name: str) -> Device:
    return next(d for d in run.devices if d.name == name)


def assert_each_review_once_on_each_device(run: Run) -> None:
    counted = outcome(published=run.source.published, user_brands=run.spec.user_brands, devices=run.devices)
    for name, tally in counted.devices_tally.items():
        assert tally.expected > 0, f"{name} had nothing to get"
        assert (tally.lost, tally.duplicates) == (0, 0), f"{name}: {tally}"
    for d in run.devices:
        ids = [r.notification_id for r in d.receipts]
        assert len(ids) == len(set(ids)), f"{d.name} showed a digest twice"


async def test_a_device_away_while_another_acknowledges_gets_every_digest_on_reconnect(run: Run) -> None:
    await run.wait_every_device(await run.round(BURST))
    away = device(run, "a1-2")
    await away.stop()
    shown_before = len(away.receipts)
    while_away = [review for _ in range(2) for review in await run.round(BURST)]
    await run.wait_every_user(while_away, users={"a1"})  # a1-1 showed and acknowledged them
    await run.wait_drained()
    await away.restart()
    await run.wait_every_device(while_away)
    assert {r.via for r in away.receipts[shown_before:]} == {"feed"}
    shown = {r.notification_id for r in shown_digests(away)}
    assert shown <= await run.session.wait_delivered_in_core("a1", shown)
    await run.wait_every_device(await run.round(BURST))
    assert_each_review_once_on_each_device(run)


async def test_kill_9_of_a_ws_delivery_replica_every_device_shows_each_digest_exactly_once(run: Run) -> None:
    rooms = run.rooms
    await run.wait_every_device(await run.round(BURST))
    on_killed = [name for index, (name, _) in enumerate(DEVICES) if index % 2 == 0]  # a1-1, a2-1, b1-1
    run.session.stack.kill(rooms.ws[0])
    while_down = [review for _ in range(2) for review in await run.round(BURST)]
    await run.wait_every_device(while_down)  # the killed replica's devices long-poll the feed meanwhile
    for name in on_killed:
        polled = [
            r for r in shown_digests(device(run, name)) if r.digest and set(r.digest.review_ids) & set(while_down)
        ]
        assert polled, f"{name} showed none of the digests made while its replica was down"
        assert {r.via for r in polled} == {"feed"}, name
    await rooms.restart(rooms.ws[0])
    assert await run.session.wait_connected(len(DEVICES)), "devices of the killed replica did not come back"
    await run.wait_every_device(await run.round(BURST))
    await run.wait_drained()
    assert_each_review_once_on_each_device(run)


async def test_a_broadcast_reaches_every_device_and_a_user_first_seen_after_it(run: Run) -> None:
    producer = bearer("announcer", "notifier_produce", secret=run.session.settings.jwt_secret)
    body = {
        "user_ids": [],
        "producer_notification_id": "maintenance",
        "content_type": "text/plain",
        "content": base64.b64encode(b"maintenance tonight").decode(),
    }
    async with httpx.AsyncClient(base_url=run.rooms.core_url(0), timeout=10) as http:
        response = await http.post(paths.UNDELIVERED, json=body, headers=producer)
    assert response.status_code == 200, response.text
    broadcast = response.json()["id"]

    def everyone_shows_it() -> bool:
        return all(broadcast in {r.notification_id for r in d.receipts} for d in run.devices)

    assert await run.session.devices.wait_until(everyone_shows_it, timeout_s=30)
    await run.session.add_device(user="newcomer", name="newcomer-1", index=1)
    assert await run.session.devices.wait_until(everyone_shows_it, timeout_s=30)
    (late,) = [r for r in device(run, "newcomer-1").receipts if r.notification_id == broadcast]
    assert late.via == "feed"
    for d in run.devices:
        assert [r.notification_id for r in d.receipts].count(broadcast) == 1, d.name
