"""Demo devices: `notifier listen` processes whose JSON lines are read back as receipts.

Each device is one `notifier listen --user U --device NAME` process on one ws_delivery replica, reading and
long-polling the feed of one core replica when it must (the device protocol of DESIGN section 9). Its
cursor lives in a state file under `<log dir>/device-state/`: the first start of a device removes it (a
new device), `restart()` keeps it, so a device that was away catches up on what it missed. Every line it
prints becomes a `Receipt` stamped with the time it was read; a review digest's content is decoded so the
demo can tell which reviews reached which device.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from workers.common.contract.wire import DIGEST_CONTENT_TYPE

STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class BrandCounts:
    added: int
    updated: int
    deleted: int
    review_ids: tuple[str, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class DigestView:
    """The parts of a review digest (DESIGN section 13) a device shows."""

    digest_id: str
    user: str
    total: int
    brands: dict[str, BrandCounts]

    @property
    def review_ids(self) -> list[str]:
        return [review for counts in self.brands.values() for review in counts.review_ids]

    @property
    def truncated(self) -> bool:
        return any(counts.truncated for counts in self.brands.values())


@dataclass(frozen=True, slots=True)
class Receipt:
    device: str
    user: str
    notification_id: str
    status: str
    via: str
    at_s: float
    digest: DigestView | None
    position: str = ""
    """The change's feed position (empty from an earlier core): one change shown twice is a duplicate."""


def parse_digest(line: Mapping[str, Any]) -> DigestView | None:
    """The digest a `notifier listen` line carries, or None for any other notification or bad content."""
    try:
        content = base64.b64decode(line.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decode_digest(str(line.get("content_type", "")), content)


def decode_digest(content_type: str, content: bytes) -> DigestView | None:
    """A notification's content as a review digest, or None when it is not one."""
    if content_type != DIGEST_CONTENT_TYPE:
        return None
    try:
        doc = json.loads(content)
        brands = {
            brand: BrandCounts(
                int(c["added"]), int(c["updated"]), int(c["deleted"]), tuple(c["review_ids"]), bool(c["truncated"])
            )
            for brand, c in doc["brands"].items()
        }
        return DigestView(str(doc["digest_id"]), str(doc["user"]), int(doc["total"]), brands)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


@dataclass
class Device:
    name: str
    user: str
    ws_url: str
    core_url: str
    receipts: list[Receipt] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    on_receipt: Callable[[Receipt], None] | None = None
    _reader: asyncio.Task[None] | None = None
    _started_with: tuple[Mapping[str, str], Path] | None = None

    def state_home(self, log_dir: Path) -> Path:
        """The device's `XDG_STATE_HOME`: its cursor is `<this>/notifier/devices/<user>/<name>.json`."""
        return log_dir / "device-state" / self.name

    async def start(self, *, env: Mapping[str, str], log_dir: Path) -> None:
        """Start `notifier listen` for this device as a new device (any state of an earlier run removed), in
        its own session, so Ctrl-C reaches only the demo."""
        shutil.rmtree(self.state_home(log_dir), ignore_errors=True)
        await self._spawn(env=env, log_dir=log_dir)

    async def restart(self) -> None:
        """Stop the device (as Ctrl-C does) and start it again with its cursor: it catches up on what it missed."""
        assert self._started_with is not None, "restart() needs a started device"
        await self.stop()
        env, log_dir = self._started_with
        await self._spawn(env=env, log_dir=log_dir)

    async def _spawn(self, *, env: Mapping[str, str], log_dir: Path) -> None:
        self._started_with = (env, log_dir)
        with open_log(log_dir / f"device-{self.name}.log") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.cli",
                "listen",
                "--user",
                self.user,
                "--device",
                self.name,
                "--ws-url",
                self.ws_url,
                "--core-url",
                self.core_url,
                env={**env, "PYTHONUNBUFFERED": "1", "XDG_STATE_HOME": str(self.state_home(log_dir))},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._reader = asyncio.create_task(self._read(self.process), name=f"device-{self.name}")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            receipt = Receipt(
                device=self.name,
                user=self.user,
                notification_id=str(line.get("id", "")),
                status=str(line.get("status", "")),
                via=str(line.get("via", "")),
                at_s=time.time(),
                digest=parse_digest(line),
                position=str(line.get("position", "")),
            )
            self.receipts.append(receipt)
            if self.on_receipt is not None:
                self.on_receipt(receipt)

    async def stop(self) -> int:
        """Stop like Ctrl-C does (the listener exits 0); killed if it does not stop in time."""
        process = self.process
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return process.returncode if process.returncode is not None else 0

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


@dataclass
class Devices:
    """Every demo device, and a condition that wakes waiters on each receipt."""

    items: list[Device] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    on_receipt: Callable[[Receipt], None] | None = None

    def add(self, *, name: str, user: str, ws_url: str, core_url: str) -> Device:
        device = Device(name=name, user=user, ws_url=ws_url, core_url=core_url, on_receipt=self._received)
        self.items.append(device)
        return device

    def _received(self, receipt: Receipt) -> None:
        if self.on_receipt is not None:
            self.on_receipt(receipt)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.arrived:
            self.arrived.notify_all()

    async def wait_until(self, done: Callable[[], bool], *, timeout_s: float) -> bool:
        """Wait until `done()` holds (checked after every receipt); False when `timeout_s` passed first."""
        async with self.arrived:
            try:
                await asyncio.wait_for(self.arrived.wait_for(done), timeout_s)
            except TimeoutError:
                return done()
        return True

    def of_user(self, user: str) -> list[Device]:
        return [d for d in self.items if d.user == user]

    async def stop(self) -> list[int]:
        return list(await asyncio.gather(*(d.stop() for d in self.items)))
