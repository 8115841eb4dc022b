"""Several devices of one user: each gets every change exactly once, whatever it missed (DESIGN section 9)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx

from tests.client.conftest import Core, listen_process
from tests.support.tokens import bearer, token
from tests.support.waiting import eventually
from tests.ws_delivery.conftest import Instance, StartInstance
from workers.client.state import DeviceState
from workers.client.ws import Listener, Received
from workers.common.contract import paths
from workers.common.contract.wire import Notification


class Device:
    """A Listener with a state file, started and stopped like a phone going on and offline."""

    def __init__(self, instance: Instance, core: Core, http: httpx.AsyncClient, *, user: str, path: Path) -> None:
        self.instance, self.core, self.http, self.user, self.path = instance, core, http, user, path
        self.shown: list[Received] = []
        self._stream: AsyncGenerator[Received, None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.listener: Listener | None = None

    async def start(self, *, page_limit: int = 100) -> None:
        self.listener = Listener(
            ws_url=self.instance.url,
            core_url=self.core.url,
            token=token(self.user),
            http=self.http,
            poll_wait_s=1.0,
            state=DeviceState.load(self.path),
            page_limit=page_limit,
        )
        self._stream = self.listener.notifications()
        self._task = asyncio.create_task(self._show(self._stream))
        listener = self.listener
        await eventually(lambda: listener.settled and listener.connected.is_set(), timeout_s=10)

    async def _show(self, stream: AsyncGenerator[Received, None]) -> None:
        async for received in stream:
            self.shown.append(received)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def ids(self, status: int = Notification.NEW) -> list[str]:
        return [r.notification.id for r in self.shown if r.notification.status == status]

    async def wait_shown(self, count: int, timeout_s: float = 10.0) -> None:
        await eventually(lambda: len(self.shown) >= count, timeout_s=timeout_s)


async def started(
    instance: Instance, core: Core, http: httpx.AsyncClient, folder: Path, *, user: str, names: tuple[str, ...]
) -> list[Device]:
    """Devices of `user` named `names`, each with its state file in `folder`, all connected and caught up."""
    devices = [Device(instance, core, http, user=user, path=folder / f"{name}.json") for name in names]
    for device in devices:
        await device.start()
    return devices


async def test_device_offline_while_another_acks_gets_it_on_reconnect(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()
    phone, laptop = await started(instance, core, http, tmp_path, user="alice", names=("phone", "laptop"))
    first = await core.create("alice", content=b"both online")
    await phone.wait_shown(1)
    await laptop.wait_shown(1)
    await laptop.stop()
    missed = await core.create("alice", content=b"laptop away")
    await phone.wait_shown(2)
    await core.wait_delivered("alice", missed)  # the phone's ack marked it delivered for alice
    assert await core.take_undelivered("alice") == []
    await laptop.start()
    await laptop.wait_shown(2)
    assert laptop.ids() == [first, missed], "the laptop shows what it missed, and nothing twice"
    assert [r.via for r in laptop.shown][1] == "feed"
    later = await core.create("alice", content=b"both again")
    await laptop.wait_shown(3)
    await phone.wait_shown(3)
    assert laptop.ids() == phone.ids() == [first, missed, later]
    assert {r.via for r in phone.shown} == {"websocket"}
    assert [r.notification.position for r in phone.shown] == [r.notification.position for r in laptop.shown], (
        "frames carry the same positions as the feed"
    )
    await phone.stop()
    await laptop.stop()


async def test_device_offline_for_more_than_a_page_gets_all_in_order_once(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()
    device = Device(instance, core, http, user="bob", path=tmp_path / "bob.json")
    await device.start(page_limit=5)
    before = await core.create("bob", content=b"before")
    await device.wait_shown(1)
    await device.stop()
    missed = [await core.create("bob", content=f"missed {n}".encode()) for n in range(17)]
    await device.start(page_limit=5)
    await device.wait_shown(18)
    assert device.ids() == [before, *missed]
    assert [r.via for r in device.shown[1:]] == ["feed"] * 17
    await device.stop()
    await device.start(page_limit=5)
    after = await core.create("bob", content=b"after")
    await device.wait_shown(19)
    assert device.ids() == [before, *missed, after], "a restart shows nothing again"
    await device.stop()


async def test_seen_on_one_device_is_an_update_on_the_others(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()
    phone, watch = await started(instance, core, http, tmp_path, user="carol", names=("phone", "watch"))
    created = await core.create("carol")
    await phone.wait_shown(1)
    await watch.wait_shown(1)
    await core.wait_delivered("carol", created)
    await watch.stop()
    response = await http.put(
        f"{core.url}{paths.DELIVERED_SEEN.replace('{id}', created)}", json={"seen": True}, headers=bearer("carol")
    )
    assert response.status_code == 204
    await phone.wait_shown(2)
    assert (phone.shown[1].notification.status, phone.shown[1].notification.seen) == (Notification.UPDATED, True)
    await watch.start()
    await watch.wait_shown(2)
    assert [(r.notification.id, r.notification.status) for r in watch.shown] == [
        (created, Notification.NEW),
        (created, Notification.UPDATED),
    ]
    assert watch.shown[1].notification.seen
    await phone.stop()
    await watch.stop()


async def test_a_new_device_starts_from_the_oldest_change_kept(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()
    inbox = [await core.create("dave", content=f"old {n}".encode()) for n in range(3)]
    assert sorted(await core.take_undelivered("dave")) == sorted(inbox), "an earlier client took them all"
    device = Device(instance, core, http, user="dave", path=tmp_path / "new.json")
    await device.start()
    await device.wait_shown(3)
    assert device.ids() == inbox
    await device.stop()


async def test_notifier_listen_keeps_its_cursor_per_device(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()

    async def listen(device: str, count: int) -> list[dict[str, object]]:
        args = ("--user", "erin", "--device", device, "--ws-url", instance.url, "--core-url", core.url)
        async with listen_process(*args, "--count", str(count), env={"XDG_STATE_HOME": str(tmp_path)}) as process:
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        return [json.loads(line) for line in stdout.decode().splitlines()]

    first = await core.create("erin", content=b"one")
    second = await core.create("erin", content=b"two")
    assert [line["id"] for line in await listen("phone", 1)] == [first]
    third = await core.create("erin", content=b"three")
    lines = await listen("phone", 2)
    assert [line["id"] for line in lines] == [second, third], "it goes on after what it showed"
    assert all(line["via"] == "feed" and line["position"] for line in lines)
    assert [line["id"] for line in await listen("tablet", 3)] == [first, second, third], "per device"
    saved = json.loads((tmp_path / "notifier" / "devices" / "erin" / "phone.json").read_text())
    assert saved["cursor"] == lines[-1]["position"]


async def test_a_cursor_core_refuses_makes_the_device_resync_from_the_oldest_kept(
    start_instance: StartInstance, core: Core, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    instance = await start_instance()
    kept = [await core.create("frank", content=f"kept {n}".encode()) for n in range(2)]
    path = tmp_path / "reset.json"
    path.write_text(json.dumps({"cursor": "999999999", "shown": []}))  # from a store that was reset since
    device = Device(instance, core, http, user="frank", path=path)
    await device.start()
    await device.wait_shown(2)
    assert device.ids() == kept
    await device.stop()
    assert json.loads(path.read_text())["cursor"] != "999999999"
