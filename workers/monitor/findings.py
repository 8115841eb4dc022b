"""Judging the bus without I/O: which users are stale, which are invalid, how big the backlog is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Findings:
    stale: list[tuple[str, float]] = field(default_factory=list)
    """(user, age of the oldest pending entry in seconds), oldest first."""
    invalid: list[tuple[str, int]] = field(default_factory=list)
    """(user, pending entries) of users who belong to no brand."""
    backlog_entries: int = 0
    oldest_pending_s: float = 0.0

    @property
    def quiet(self) -> bool:
        return not self.stale and not self.invalid


def judge(
    *,
    pending_since: Sequence[tuple[str, float]],
    lengths: Mapping[str, int],
    valid_users: set[str],
    stale_after_s: float,
    now_s: float,
) -> Findings:
    stale: list[tuple[str, float]] = []
    invalid: list[tuple[str, int]] = []
    oldest = 0.0
    for user, since in pending_since:
        age = max(0.0, now_s - since)
        oldest = max(oldest, age)
        if user not in valid_users:
            invalid.append((user, lengths.get(user, 0)))
        elif age > stale_after_s:
            stale.append((user, age))
    stale.sort(key=lambda item: -item[1])
    return Findings(
        stale=stale,
        invalid=invalid,
        backlog_entries=sum(lengths.values()),
        oldest_pending_s=oldest,
    )
