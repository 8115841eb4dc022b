"""`notifier clean USER | --invalid [--dry-run]`: remove bad data from the review bus.

The module imports only typer and the contract: `notifier clean --help` and a usage error need no Redis client,
settings or metrics, so the purger, the connection and the settings are imported by the command once its
arguments are checked (tests/cli/test_cli_imports.py holds what each may load).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from workers.common.clikit import StreamOption, fail, print_lines, run, stream_name
from workers.common.contract.errors import NotFound
from workers.common.contract.keys import ID_PATTERN, BusKeys, is_valid_id

if TYPE_CHECKING:
    from workers.cleaner.purge import Removal


def clean(
    user: Annotated[str | None, typer.Argument(help="The user whose bus data to remove.", show_default=False)] = None,
    invalid: Annotated[bool, typer.Option("--invalid", help="Remove every user who belongs to no brand.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")] = False,
    stream: StreamOption = None,
) -> None:
    """Remove a user's pending entries, in-flight batch, last_pulled_at and index entries (or every invalid
    user's with --invalid)."""
    if (user is None) == (not invalid):
        raise fail("give either a USER or --invalid", code=2)
    if user is not None and not is_valid_id(user):
        raise fail(f"USER must match {ID_PATTERN}", code=2)
    from workers.cleaner.purge import Purger
    from workers.common.runtime.connections import redis_session
    from workers.common.runtime.layout import claim_layout
    from workers.common.runtime.settings import CommonSettings

    settings = CommonSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> list[Removal]:
        async with redis_session(settings) as redis:
            await claim_layout(redis, keys.stream, keys.shard_count)
            purger = Purger(redis, keys=keys)
            if user is not None:
                return [await purger.remove(user, dry_run=dry_run)]
            users = await purger.invalid_users()
            if users is None:
                raise fail(f"stream {keys.stream} has no mapping: every user would count as invalid, nothing removed")
            return await purger.remove_many(users, dry_run=dry_run)

    removals = run(go())
    if user is not None and not removals[0].found:
        raise NotFound(f"user {user} has no data in stream {keys.stream}")
    lines = [removal.describe() for removal in removals]
    if invalid:
        verb = "would remove" if dry_run else "removed"
        lines.append(f"stream {keys.stream}: {verb} {len(removals)} invalid users")
    print_lines(lines)


def register(app: typer.Typer) -> None:
    app.command("clean")(clean)
