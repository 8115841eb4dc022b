"""The status and conditions the controller writes (pure)."""

from __future__ import annotations

from workers.controller import status as st

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"


def test_first_ready_condition_records_its_transition_time() -> None:
    [condition] = st.ready_conditions(None, ready=True, reason=st.SYNCED, message="ok", generation=1, now=T0)

    assert condition == {
        "type": "Ready",
        "status": "True",
        "reason": "Synced",
        "message": "ok",
        "lastTransitionTime": T0,
        "observedGeneration": 1,
    }


def test_transition_time_stays_while_the_status_stays_and_moves_when_it_flips() -> None:
    first = st.ready_conditions(None, ready=False, reason=st.REDIS_UNAVAILABLE, message="down", generation=1, now=T0)
    still_down = st.ready_conditions(first, ready=False, reason=st.INVALID_SPEC, message="bad", generation=2, now=T1)
    up = st.ready_conditions(still_down, ready=True, reason=st.SYNCED, message="ok", generation=2, now=T1)

    assert still_down[0]["lastTransitionTime"] == T0
    assert still_down[0]["reason"] == "InvalidSpec"
    assert up[0]["lastTransitionTime"] == T1
    assert up[0]["status"] == "True"


def test_other_condition_types_are_kept() -> None:
    previous = [{"type": "Degraded", "status": "False"}]

    conditions = st.ready_conditions(previous, ready=True, reason=st.SYNCED, message="ok", generation=1, now=T0)

    assert [c["type"] for c in conditions] == ["Degraded", "Ready"]


def test_long_messages_are_cut() -> None:
    [condition] = st.ready_conditions(
        None, ready=False, reason=st.INVALID_SPEC, message="x" * 5000, generation=1, now=T0
    )

    assert len(condition["message"]) == st.MAX_MESSAGE
    assert condition["message"].endswith("...")


def test_failed_status_keeps_the_counts_of_what_redis_holds() -> None:
    status = {"brands": 2, "users": 3}

    patch = st.failed_status(status, generation=4, reason=st.INVALID_SPEC, message="bad", now=T0)

    assert "brands" not in patch
    assert "users" not in patch
    assert patch["observedGeneration"] == 4
    assert not st.is_ready(patch)


def test_synced_status_counts_and_says_whether_it_loaded() -> None:
    loaded = st.synced_status({}, generation=1, brands=2, users=3, changed=True, now=T0)
    in_place = st.synced_status(loaded, generation=1, brands=2, users=3, changed=False, now=T1)

    assert loaded["brands"] == 2
    assert loaded["users"] == 3
    assert loaded["conditions"][0]["message"] == "mapping loaded: 2 brands, 3 users"
    assert in_place["conditions"][0]["message"] == "mapping in place: 2 brands, 3 users"
    assert st.is_ready(in_place)


def test_findings_patch_holds_only_what_changed() -> None:
    status = {"staleUsers": 1, "invalidUsers": 0}

    assert st.findings_patch(status, {"stale_users": "1", "invalid_users": "2"}) == {"invalidUsers": 2}
    assert st.findings_patch(status, {"stale_users": "1", "invalid_users": "0"}) == {}


def test_findings_patch_ignores_missing_and_malformed_fields() -> None:
    assert st.findings_patch({}, {}) == {}
    assert st.findings_patch({}, {"stale_users": "many", "invalid_users": "3.0"}) == {"invalidUsers": 3}
