"""Review events in, digests out on every device: exact counts, one digest per window, core agrees."""

from __future__ import annotations

from collections import Counter

import httpx

from tests.e2e.conftest import Run, digests, kind_counts
from tests.support.tokens import token
from workers.client.http import poll_undelivered
from workers.local.devices import decode_digest

ROUNDS = 3
BURST = 24


async def test_every_device_of_every_user_gets_exactly_one_digest_per_window_with_exact_counts(run: Run) -> None:
    for _ in range(ROUNDS):
        await run.wait_every_device(await run.round(BURST))
    await run.wait_drained()

    for device in run.devices:
        shown = digests(device)
        assert len({notification_id for notification_id, _ in shown}) == len(shown), f"{device.name} repeats one"
        for number, reviews in enumerate(run.rounds):
            expected = run.expected(device.user, reviews)
            of_round = [d for _, d in shown if set(d.review_ids) & set(reviews)]
            assert len(of_round) == 1, f"{device.name}: {len(of_round)} digests for round {number}"
            digest = of_round[0]
            assert sorted(digest.review_ids) == sorted(expected)
            assert digest.total == len(expected)
            assert not digest.truncated
            counts = kind_counts(run, expected)
            assert set(digest.brands) == set(counts)
            for brand, by_kind in counts.items():
                shown_counts = digest.brands[brand]
                assert (shown_counts.added, shown_counts.updated, shown_counts.deleted) == (
                    by_kind["added"],
                    by_kind["updated"],
                    by_kind["deleted"],
                ), f"{device.name} round {number} {brand}"
        assert len(shown) == ROUNDS

    for user in {d.user for d in run.devices}:
        seen = {nid for d in run.session.devices.of_user(user) for nid, _ in digests(d)}
        assert len(seen) == ROUNDS, f"user {user}: its devices showed different digests"
        listed = await run.session.wait_delivered_in_core(user, seen)
        assert seen <= listed, f"core does not list {user}'s digests delivered"


async def test_device_offline_during_the_run_fetches_everything_it_missed_with_one_long_poll(run: Run) -> None:
    for _ in range(ROUNDS):
        await run.wait_every_device(await run.round(BURST))
    await run.wait_drained()
    everything = [review for reviews in run.rounds for review in reviews]
    missed = run.expected("off", everything)
    assert missed, "the offline user's brands got no reviews"

    offline = token("off", secret=run.session.settings.jwt_secret)
    async with httpx.AsyncClient() as http:
        core = run.rooms.core_url(1)
        fetched = await poll_undelivered(http, core_url=core, token=offline, wait_s=5)
        again = await poll_undelivered(http, core_url=core, token=offline, wait_s=0)

    shown = [decode_digest(n.content_type, n.content) for n in fetched]
    assert len(shown) == ROUNDS, "one digest per window while the device was away"
    listed = Counter(review for digest in shown if digest is not None for review in digest.review_ids)
    assert set(listed) == missed
    assert set(listed.values()) == {1}
    assert again == [], "the long poll marked what it returned as delivered"
    assert {n.id for n in fetched} <= await run.session.delivered_in_core("off")
