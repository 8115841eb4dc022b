"""kill -9 of one replica of every room in the middle of a run, then a restart: nothing lost, nothing twice."""

from __future__ import annotations

from tests.e2e.conftest import DEVICES, Run, assert_each_review_shown_once, digests
from workers.local.stack import Proc

BURST = 24


async def test_kill_9_of_one_replica_of_each_room_mid_run_counts_every_review_in_exactly_one_digest(run: Run) -> None:
    rooms = run.rooms
    await run.wait_every_device(await run.round(BURST))

    during = await run.round(BURST)
    run.session.stack.kill(rooms.pushers[0])  # its batch of this burst is likely written but not yet acked
    assert await run.session.devices.wait_until(lambda: shows_any(run, during), timeout_s=30)
    killed: list[Proc] = [rooms.pushers[0], rooms.pullers[0], rooms.cores[0], rooms.ws[0]]
    for proc in killed[1:]:  # while the burst's digests are being created, relayed and delivered
        run.session.stack.kill(proc)
    while_down = await run.round(BURST)  # only the surviving replicas are there to take it
    await run.wait_every_user(while_down, users={"a1", "a2"})  # each has a device on the surviving ws_delivery
    # Core first: a restarted puller that resumes a batch for its core is not ready until that core is back.
    for proc in sorted(killed, key=lambda proc: proc is not rooms.cores[0]):
        await rooms.restart(proc)
    await run.wait_every_user([*during, *while_down])
    assert await run.session.wait_connected(len(DEVICES)), "devices of the killed ws_delivery did not come back"

    after = [await run.round(BURST) for _ in range(2)]
    for reviews in after:
        await run.wait_every_device(reviews)
    await run.wait_drained()

    await assert_each_review_shown_once(run)


def shows_any(run: Run, reviews: list[str]) -> bool:
    wanted = set(reviews)
    return any(wanted & set(digest.review_ids) for device in run.devices for _, digest in digests(device))
