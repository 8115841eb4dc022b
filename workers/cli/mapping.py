"""`notifier mapping load|show|delete`: the brand -> users mapping of a stream, without Kubernetes.

`load` runs the same code as the controller: validate, then swap the mapping atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.common.clikit import StreamOption, fail, out, run, stream_name
from workers.common.contract.errors import InvalidMapping
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import MAX_DOCUMENT_BYTES, parse_document
from workers.common.runtime.connections import redis_session
from workers.common.runtime.mapping_store import delete_mapping, read_mapping, read_settings, write_mapping
from workers.common.runtime.settings import CommonSettings

mapping_app = typer.Typer(help="The brand -> users mapping of a stream.", no_args_is_help=True)


@mapping_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="A NotificationStream YAML/JSON, or a {brand: [users]} JSON file.")],
    stream: StreamOption = None,
) -> None:
    """Validate FILE and swap it in as the stream's mapping and settings (nothing written when invalid)."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)  # never more: a huge file is refused, not parsed for minutes
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise fail(f"{file}: over {MAX_DOCUMENT_BYTES} bytes, the largest NotificationStream the API server takes")
    try:
        name, spec = parse_document(text)
    except InvalidMapping as exc:
        raise fail(f"{file}: {exc}") from None
    settings = CommonSettings()
    target = stream_name(stream if stream is not None else name, settings)

    async def go() -> None:
        async with redis_session(settings) as redis:
            result = await write_mapping(redis, keys=BusKeys(target, shard_count=settings.shards), spec=spec)
        state = "loaded" if result.changed else "unchanged"
        out.print(f"stream {result.stream}: mapping {state} ({result.brands} brands, {result.users} users)")

    run(go())


@mapping_app.command("show")
def show(stream: StreamOption = None) -> None:
    """Print the stream's mapping and settings."""
    settings = CommonSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> None:
        async with redis_session(settings) as redis:
            mapping = await read_mapping(redis, keys=keys)
            stream_settings = await read_settings(redis, keys=keys)
        if not mapping.version:
            raise fail(f"stream {keys.stream} has no mapping loaded")
        out.print(f"stream {keys.stream} (version {mapping.version})")
        for brand, users in sorted(mapping.brand_users.items()):
            out.print(f"  {brand}: {', '.join(users)}")
        out.print(
            f"  digest window {stream_settings.window_s:g}s, max items {stream_settings.max_items}, "
            f"stale after {stream_settings.stale_after_s:g}s, monitor every {stream_settings.monitor_interval_s:g}s"
        )

    run(go())


@mapping_app.command("delete")
def delete(stream: StreamOption = None) -> None:
    """Remove the stream's mapping and settings from Redis."""
    settings = CommonSettings()
    keys = BusKeys(stream_name(stream, settings), shard_count=settings.shards)

    async def go() -> None:
        async with redis_session(settings) as redis:
            removed = await delete_mapping(redis, keys=keys)
        out.print(f"stream {keys.stream}: removed {removed} mapping keys")

    run(go())


def register(app: typer.Typer) -> None:
    app.add_typer(mapping_app, name="mapping")
