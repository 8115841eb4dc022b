"""`notifier up`: the demo's stack without the generated load, running until Ctrl-C or SIGTERM.

Uses the stream and AMQP namespace every other `notifier` command uses by default (`$NOTIFIER_STREAM`,
`$NOTIFIER_AMQP_NAMESPACE`), keeps whatever data the stream holds, and loads the demo's sample
NotificationStream only when the stream has no mapping yet.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.mapping_store import read_mapping
from workers.local.demo import DEMO_SPEC, stop_on_signals
from workers.local.session import Session
from workers.local.show import console, where


async def run_up(*, stream: str, namespace: str, replicas: int, log_dir: Path) -> dict[str, int]:
    stopping = asyncio.Event()
    with stop_on_signals(stopping):
        session = await Session.open(stream=stream, namespace=namespace, log_dir=log_dir)
        try:
            if not (await read_mapping(session.redis, keys=session.keys)).version:
                loaded = await session.load(parse_spec(DEMO_SPEC))
                console.print(f"stream {stream} had no mapping: loaded the sample ({loaded.brands} brands)")
            rooms = await session.start_rooms(replicas=replicas)
            console.print(where(rooms))
            console.print(
                f"stream {stream}, AMQP namespace {namespace or '(none)'}. Try, in another shell:\n"
                f"  export NOTIFIER_JWT_SECRET=$(cat {session.secret_file})  # made up for this run\n"
                "  notifier token --sub 1 --role notifier_produce  # a bearer token for the HTTP APIs\n"
                f"  notifier publish-reviews --stream {stream} --count 100 --rate 20\n"
                f"  notifier listen --user 1 --ws-url {rooms.ws_url(0)} --core-url {rooms.core_url(0)}\n"
                "Ctrl-C (or SIGTERM) stops every process."
            )
            await stopping.wait()
        finally:
            console.print("stopping every process ...")
            codes = await session.close()
    clean = sum(code == 0 for code in codes.values())
    console.print(f"{clean} of {len(codes)} processes stopped cleanly")
    return codes
