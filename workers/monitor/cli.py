"""`notifier check`: one monitor cycle, printed; exits 1 when something needs attention."""

from __future__ import annotations

import typer

from workers.common.clikit import StreamOption, out, run, stream_name
from workers.common.contract.keys import BusKeys
from workers.common.runtime.connections import redis_session
from workers.common.runtime.layout import claim_layout
from workers.common.runtime.mapping_store import read_settings
from workers.monitor.settings import MonitorSettings
from workers.monitor.watch import Monitor


def check(stream: StreamOption = None) -> None:
    """Print stale users, invalid users and the backlog once; exit 1 when there are alerts."""
    settings = MonitorSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> bool:
        async with redis_session(settings) as redis:
            await claim_layout(redis, keys.stream, keys.shard_count)
            stale_after = settings.stale_after_s or (await read_settings(redis, keys=keys)).stale_after_s
            findings = await Monitor(redis, keys=keys, settings=settings).inspect(stale_after_s=stale_after)
        out.print(
            f"stream {keys.stream}: backlog {findings.backlog_entries} entries, oldest {findings.oldest_pending_s:.1f}s"
        )
        for user, age in findings.stale:
            out.print(f"  stale user {user}: oldest entry {age:.0f}s old (stale after {stale_after:g}s)")
        for user, entries in findings.invalid:
            out.print(f"  invalid user {user}: {entries} entries, belongs to no brand")
        if findings.quiet:
            out.print("  quiet")
        return findings.quiet

    if not run(go()):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
