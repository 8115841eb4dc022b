"""The NotificationStream status the controller writes, built without I/O.

    status:
      observedGeneration: 3          # the generation the controller last evaluated
      brands: 2                      # what is loaded in Redis (unchanged while the spec is invalid)
      users: 3
      staleUsers: 0                  # from the monitor's findings, refreshed by a timer
      invalidUsers: 0
      conditions: [{type: Ready, status: "True", reason: Synced, message, observedGeneration,
                    lastTransitionTime}]

`lastTransitionTime` moves only when the Ready condition's status flips, as Kubernetes conventions ask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
SYNCED = "Synced"
INVALID_SPEC = "InvalidSpec"
STREAM_CONFLICT = "StreamConflict"
REDIS_UNAVAILABLE = "RedisUnavailable"

MAX_MESSAGE = 1024
"""Longer condition messages (thousands of spec problems) are cut, keeping the status small."""

FINDINGS_FIELDS = {"stale_users": "staleUsers", "invalid_users": "invalidUsers"}
"""Field of the monitor's findings hash -> status field."""

OWNED_FIGURES = ("brands", "users", *FINDINGS_FIELDS.values())
"""Status fields that describe the stream's data, shown only by the object that owns the stream."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_conditions(
    previous: Iterable[Mapping[str, Any]] | None,
    *,
    ready: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """The conditions with Ready replaced; other condition types are kept as they are."""
    kept = [dict(c) for c in previous or () if c.get("type") != READY]
    old = next((c for c in previous or () if c.get("type") == READY), None)
    state = "True" if ready else "False"
    changed = old is None or old.get("status") != state or not old.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": READY,
        "status": state,
        "reason": reason,
        "message": message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "...",
        "lastTransitionTime": now if changed or old is None else old["lastTransitionTime"],
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [*kept, condition]


def synced_status(
    status: Mapping[str, Any], *, generation: int | None, brands: int, users: int, changed: bool, now: str
) -> dict[str, Any]:
    """The status patch after the mapping was written (or found already in place)."""
    state = "loaded" if changed else "in place"
    message = f"mapping {state}: {brands} brands, {users} users"
    return {
        "observedGeneration": generation,
        "brands": brands,
        "users": users,
        "conditions": ready_conditions(
            status.get("conditions"), ready=True, reason=SYNCED, message=message, generation=generation, now=now
        ),
    }


def failed_status(
    status: Mapping[str, Any], *, generation: int | None, reason: str, message: str, now: str
) -> dict[str, Any]:
    """The status patch after a failed reconcile: Ready=False; brands/users still describe what Redis holds."""
    return {
        "observedGeneration": generation,
        "conditions": ready_conditions(
            status.get("conditions"), ready=False, reason=reason, message=message, generation=generation, now=now
        ),
    }


def not_owned_status(status: Mapping[str, Any]) -> dict[str, None]:
    """The patch that removes every figure of a stream the object does not own (merge-patch null deletes)."""
    return {field: None for field in OWNED_FIGURES if status.get(field) is not None}


def is_ready(status: Mapping[str, Any]) -> bool:
    return any(c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions") or ())


def findings_patch(status: Mapping[str, Any], findings: Mapping[str, str]) -> dict[str, int]:
    """The status fields that differ from the monitor's latest findings (nothing when it has reported nothing)."""
    patch: dict[str, int] = {}
    for field, status_field in FINDINGS_FIELDS.items():
        raw = findings.get(field)
        if raw is None:
            continue
        try:
            value = int(float(raw))
        except ValueError:
            continue
        if status.get(status_field) != value:
            patch[status_field] = value
    return patch
