"""What the local commands print: where each room listens, one line per digest a device shows, the summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from workers.local.devices import Receipt
from workers.local.ledger import Outcome
from workers.local.reviews import Published
from workers.local.rooms import Rooms

console = Console(highlight=False, soft_wrap=True)
"""soft_wrap: lines are never broken at the console width, so addresses, commands and log lines stay whole
(and copyable) in a narrow terminal, a pipe, a log file or CI, where rich would otherwise assume 80 columns."""


def where(rooms: Rooms, *, on: Console = console) -> RenderableType:
    """Where each process listens: a table when it fits the terminal, else (and when not a terminal) a plain
    list, one process per line, so no address or path is ever cut or wrapped."""
    rows = [
        (
            proc.name,
            str(proc.process.pid),
            proc.http_url if proc.room in ("core", "ws-delivery") else "",
            proc.ops_url,
            str(proc.log_path),
        )
        for group in rooms.groups()
        for proc in group
    ]
    table = Table(title="rooms (every port on 127.0.0.1)", title_justify="left")
    for column in ("process", "pid", "HTTP", "ops (/metrics /healthz /readyz)", "log"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if on.is_terminal and on.measure(table, options=on.options.update_width(10_000)).maximum <= on.width:
        return table
    lines = ["rooms (every port on 127.0.0.1; ops serves /metrics /healthz /readyz):"]
    for name, pid, http, ops, log in rows:
        lines.append(f"  {name} pid {pid}" + (f" http {http}" if http else "") + f" ops {ops} log {log}")
    return Text("\n".join(lines))


def receipt_line(receipt: Receipt, *, published: dict[str, Published]) -> str:
    """One line per notification a device printed: whose, which digest, how many reviews, how fast."""
    head = f"user {receipt.user:>3} · device {receipt.device:<3}"
    digest = receipt.digest
    if digest is None:
        return f"{head} · {receipt.status.lower()} {receipt.notification_id[:12]} · {receipt.via}"
    brands = ", ".join(f"{brand} {c.added + c.updated + c.deleted}" for brand, c in digest.brands.items())
    times = [published[r].at_s for r in digest.review_ids if r in published]
    newest = f" · +{receipt.at_s - max(times):.2f}s" if times else ""
    return f"{head} · digest {digest.digest_id[:8]} · {digest.total:>3} reviews ({brands}) · {receipt.via}{newest}"


@dataclass
class Story:
    stream: str = ""
    window_s: float = 0.0
    rate: float = 0.0
    outcome: Outcome = field(default_factory=Outcome)
    digests_created: int = 0
    acks: int = 0
    delivered_pairs: int = 0
    delivered_in_core: int = 0
    invalid_alerted: bool = False
    invalid_cleaned: bool = False
    quiet_again: bool = False
    interrupted: bool = False
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        o = self.outcome
        return (
            not self.interrupted
            and o.reviews_in > 0
            and o.lost == 0
            and o.duplicates == 0
            and o.truncated == 0
            and o.devices_reached == o.devices
            and self.delivered_in_core == self.delivered_pairs
            and self.invalid_alerted
            and self.invalid_cleaned
            and self.quiet_again
            and all(code == 0 for code in self.exit_codes.values())
        )


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def summary(story: Story) -> Group:
    """The demo's summary table, then one row per device (every review must reach each device once)."""
    return Group(_totals(story), per_device(story.outcome))


def per_device(outcome: Outcome) -> Table:
    table = Table(title="per device: each review of its user's brands exactly once", title_justify="left")
    for column in ("device", "user", "digests", "reviews expected", "listed", "lost", "duplicates"):
        table.add_column(column, justify="left" if column in ("device", "user") else "right")
    for t in outcome.devices_tally.values():
        table.add_row(
            t.device, t.user, f"{t.digests:,}", f"{t.expected:,}", f"{t.listed:,}", f"{t.lost:,}", f"{t.duplicates:,}"
        )
    return table


def _totals(story: Story) -> Table:
    o = story.outcome
    table = Table(title=f"Notifier demo — stream {story.stream}" + (" (interrupted)" if story.interrupted else ""))
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: Sequence[tuple[str, str]] = (
        ("review events in", f"{o.reviews_in:,} ({story.rate:g}/s)"),
        ("digests created in core", f"{story.digests_created:,}"),
        ("devices reached", f"{o.devices_reached} of {o.devices}"),
        ("digests shown on devices", f"{o.receipts:,}"),
        ("acks (ws_delivery)", f"{story.acks:,}"),
        ("marked delivered in core (user, digest)", f"{story.delivered_in_core:,} of {story.delivered_pairs:,}"),
        (
            "(device, review) events not shown yet (interrupted)"
            if story.interrupted
            else "(device, review) events lost",
            f"{o.lost:,}",
        ),
        ("per-device duplicates", f"{o.duplicates:,}"),
        (f"review-to-device latency p50 (window {story.window_s:g}s)", _ms(o.percentile(0.50))),
        (f"review-to-device latency p99 (window {story.window_s:g}s)", _ms(o.percentile(0.99))),
        (
            "invalid user alerted / cleaned / quiet again",
            f"{_yes(story.invalid_alerted)} / {_yes(story.invalid_cleaned)} / {_yes(story.quiet_again)}",
        ),
        (
            "processes stopped cleanly",
            f"{sum(code == 0 for code in story.exit_codes.values())} of {len(story.exit_codes)}",
        ),
    )
    for name, value in rows:
        table.add_row(name, value)
    return table


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
