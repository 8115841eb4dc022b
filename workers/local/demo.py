"""`notifier demo`: the whole story on local Redis and RabbitMQ, every room a process, devices listening.

Loads the sample NotificationStream (a short window, so the story fits in a minute), starts two replicas
each of pusher, puller, core and ws_delivery and one monitor, connects devices with `notifier listen`
(users 1 and 2 with two devices each, on different ws_delivery replicas), publishes review events at a
steady rate and shows every digest as a device prints it. Then the prototype's invalid-user story:
invalid data pushed, the monitor alerts, `notifier clean --invalid`, the monitor quiet again. Everything
is stopped cleanly at the end (or on Ctrl-C) and a summary table says what arrived where.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from workers.common.contract.streamspec import parse_spec
from workers.common.runtime.aio import first_of
from workers.local.ledger import all_arrived, outcome
from workers.local.rooms import Rooms
from workers.local.session import Session
from workers.local.show import Story, console, receipt_line, where
from workers.local.stack import Proc

SAMPLE_BRANDS = {"Brand1": ["1", "2"], "Brand2": ["4"], "Brand3": ["2", "5", "6"]}
DEMO_SPEC = {
    "brands": SAMPLE_BRANDS,
    "digest": {"windowSeconds": 2, "maxItems": 100},
    "monitor": {"staleAfterSeconds": 6, "intervalSeconds": 2},
}
DEVICES = (("1a", "1"), ("1b", "1"), ("2a", "2"), ("2b", "2"), ("4a", "4"), ("5a", "5"), ("6a", "6"))
"""(device, user); device i connects to ws_delivery replica i mod 2, so 1a/1b and 2a/2b sit on different ones."""
INVALID_USER = "7777"
DRAIN_S = 30.0
MONITOR_WAIT_S = 15.0


@contextmanager
def stop_on_signals(stopping: asyncio.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM ends the current phase early; the demo still stops every process and sums up."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_demo(*, stream: str, duration_s: float, rate: float, log_dir: Path) -> Story:
    stopping = asyncio.Event()
    story = Story(stream=stream, window_s=float(DEMO_SPEC["digest"]["windowSeconds"]), rate=rate)  # type: ignore[index]
    with stop_on_signals(stopping):
        session = await Session.open(stream=stream, namespace=f"{stream}.", log_dir=log_dir)
        try:
            await play(session, story, stopping=stopping, duration_s=duration_s, rate=rate)
        finally:
            story.interrupted = stopping.is_set()
            console.print("stopping every process ...")
            story.exit_codes = await session.close()
    return story


async def play(session: Session, story: Story, *, stopping: asyncio.Event, duration_s: float, rate: float) -> None:
    console.rule(f"[bold]Notifier demo[/] — stream {session.stream}, AMQP namespace {session.namespace}")
    removed = await session.reset()
    spec = parse_spec(DEMO_SPEC)
    loaded = await session.load(spec)
    console.print(
        f"removed {removed} keys of an earlier run; loaded the sample NotificationStream: "
        f"{loaded.brands} brands, {loaded.users} users, window {story.window_s:g}s"
    )
    rooms = await session.start_rooms()
    console.print(where(rooms))
    for index, (name, user) in enumerate(DEVICES):
        await session.add_device(user=user, name=name, index=index)
    connected = await session.wait_connected(len(DEVICES))
    console.print(
        f"{len(DEVICES)} devices ({'connected' if connected else '[red]not all connected[/]'}): "
        + ", ".join(
            f"{d.name} (user {d.user}) on {rooms.ws[i % len(rooms.ws)].name}"
            for i, d in enumerate(session.devices.items)
        )
    )
    if stopping.is_set():
        return

    console.rule("review events")
    source = session.source(sorted(spec.brands))
    devices = session.devices.items
    user_brands = spec.user_brands
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        session.devices.on_receipt = lambda r: bar.console.print(receipt_line(r, published=source.published))
        publishing = bar.add_task(f"publishing {rate:g}/s", total=max(1, round(rate * duration_s)))
        status = bar.add_task("", total=None)
        watcher = asyncio.create_task(watch(rooms, bar, status))
        try:
            await source.publish(
                rate=rate, duration_s=duration_s, stopping=stopping, progress=lambda n: bar.advance(publishing, n)
            )
            arrived = session.devices.wait_until(
                lambda: all_arrived(published=source.published, user_brands=user_brands, devices=devices),
                timeout_s=DRAIN_S + story.window_s,
            )
            await first_of(stopping.wait(), arrived)
        finally:
            watcher.cancel()
            session.devices.on_receipt = None
        await refresh(rooms, bar, status)
    story.outcome = outcome(published=source.published, user_brands=user_brands, devices=devices)
    story.digests_created = int(await rooms.metric(rooms.cores, "notifier_core_notifications_created_total"))
    story.acks = int(await rooms.metric(rooms.ws, "notifier_ws_messages_acked_total"))
    await check_core(session, story)
    if not stopping.is_set():
        await invalid_story(session, story, rooms.monitors[0], stopping=stopping)


async def watch(rooms: Rooms, bar: Progress, task: TaskID) -> None:
    """Refresh the status line from the rooms' metrics once a second."""
    while True:
        await refresh(rooms, bar, task)
        await asyncio.sleep(1.0)


async def refresh(rooms: Rooms, bar: Progress, task: TaskID) -> None:
    created = await rooms.metric(rooms.cores, "notifier_core_notifications_created_total")
    acks = await rooms.metric(rooms.ws, "notifier_ws_messages_acked_total")
    delivered = await rooms.metric(rooms.cores, "notifier_core_notifications_delivered_total")
    bar.update(
        task, description=f"digests created {created:,.0f} · acks {acks:,.0f} · delivered in core {delivered:,.0f}"
    )


async def check_core(session: Session, story: Story) -> None:
    """Every digest a device showed must be listed as delivered to that user by core."""
    by_user: dict[str, set[str]] = {}
    for device in session.devices.items:
        by_user.setdefault(device.user, set()).update(r.notification_id for r in device.receipts)
    for user, seen in by_user.items():
        listed = await session.wait_delivered_in_core(user, seen)
        story.delivered_pairs += len(seen)
        story.delivered_in_core += len(seen & listed)
    console.print(
        f"core lists {story.delivered_in_core} of the {story.delivered_pairs} (user, digest) pairs the devices "
        "showed as delivered"
    )


async def notifier(*args: str, session: Session) -> tuple[int, str]:
    """Run one `notifier` command against the demo's stream; returns its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli",
        *args,
        env=session.stack.command_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace").strip()


async def wait_log(proc: Proc, text: str, *, after: int, timeout_s: float, stopping: asyncio.Event) -> str:
    """The first log line of `proc` after offset `after` that holds `text`; empty when it did not come in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stopping.is_set():
        for line in proc.log_path.read_text(errors="replace")[after:].splitlines():
            if text in line:
                return line
        await asyncio.sleep(0.2)
    return ""


async def invalid_story(session: Session, story: Story, monitor: Proc, *, stopping: asyncio.Event) -> None:
    console.rule("invalid data")
    mark = len(monitor.log_path.read_text(errors="replace"))
    code, output = await notifier("push-invalid-data", "--user", INVALID_USER, session=session)
    console.print(output)
    alert = await wait_log(monitor, "invalid users hold data", after=mark, timeout_s=MONITOR_WAIT_S, stopping=stopping)
    story.invalid_alerted = code == 0 and bool(alert)
    console.print(f"monitor: {alert.strip()}" if alert else "[red]the monitor did not alert[/]")
    mark = len(monitor.log_path.read_text(errors="replace"))  # before cleaning: quiet may come at once
    code, output = await notifier("clean", "--invalid", session=session)
    console.print(output)
    story.invalid_cleaned = code == 0
    quiet = await wait_log(monitor, "quiet again", after=mark, timeout_s=MONITOR_WAIT_S, stopping=stopping)
    story.quiet_again = bool(quiet)
    console.print(f"monitor: {quiet.strip()}" if quiet else "[red]the monitor did not become quiet[/]")
