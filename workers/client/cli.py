"""`notifier listen`: print a user's notifications as JSON lines, acknowledging each one: the reference device.

With `--device NAME` the device keeps its feed cursor (and the changes it showed beyond it) in
`$XDG_STATE_HOME/notifier/devices/<user>/<NAME>.json`, so a restart goes on where it stopped, showing
nothing twice; `--cursor` starts from a given cursor instead. A device with no cursor starts from the
oldest change the feed keeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from typing import Annotated, Any

import httpx
import jwt
import typer

from workers.client.state import DeviceState, device_file
from workers.client.ws import ClosedByAdmin, Listener, Received
from workers.common.clikit import StreamOption, fail, out, stream_name
from workers.common.contract.keys import ID_PATTERN, is_valid_id
from workers.common.contract.wire import Notification
from workers.common.runtime.auth import mint_token
from workers.common.runtime.settings import AuthSettings


def as_json(received: Received) -> dict[str, Any]:
    n = received.notification
    line: dict[str, Any] = {
        "id": n.id,
        "status": Notification.Status.Name(n.status),
        "timestamp": n.timestamp.ToJsonString(),
        "via": received.via,
    }
    for name in ("position", "created_by", "seen", "content_type"):
        if n.HasField(name):
            line[name] = getattr(n, name)
    if n.HasField("content"):
        line["content"] = base64.b64encode(n.content).decode("ascii")
    return line


async def _listen(listener: Listener, count: int) -> int:
    printed = 0
    async with contextlib.aclosing(listener.notifications()) as received_ones:
        async for received in received_ones:
            out.print(json.dumps(as_json(received)), markup=False)
            printed += 1
            if count and printed >= count:
                break  # closing the iteration moves the device's cursor past what was printed
    return printed


def listen(
    user: Annotated[str | None, typer.Option("--user", help="The user to listen as (a token is minted).")] = None,
    token: Annotated[str | None, typer.Option("--token", help="A bearer token to use instead of minting one.")] = None,
    core_url: Annotated[
        str | None, typer.Option("--core-url", help="core's base URL for long polling (default $NOTIFIER_CORE_URL).")
    ] = None,
    ws_url: Annotated[
        str, typer.Option("--ws-url", envvar="NOTIFIER_WS_URL", help="ws_delivery's base URL (ws:// or http://).")
    ] = "http://127.0.0.1:8000",
    count: Annotated[int, typer.Option("--count", min=0, help="Exit after this many notifications (0: never).")] = 0,
    poll_wait: Annotated[float, typer.Option("--poll-wait", min=1, max=60, help="Long poll wait in seconds.")] = 30.0,
    device: Annotated[
        str | None, typer.Option("--device", help="Device name: keep this device's feed cursor in a state file.")
    ] = None,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Read the feed after this cursor (default: the device's own).")
    ] = None,
    stream: StreamOption = None,
) -> None:
    """Print USER's notifications as they arrive (JSON lines) and acknowledge each one."""
    settings = AuthSettings()
    stream_name(stream, settings)  # validated for uniformity; delivery is per user, not per stream
    if token is None:
        if user is None or not is_valid_id(user):
            raise fail(f"--user matching {ID_PATTERN} (or --token) is required", code=2)
        token = mint_token(secret=settings.jwt_secret, sub=user, roles_claim=settings.jwt_roles_claim)
    if device is not None and not is_valid_id(device):
        raise fail(f"--device must match {ID_PATTERN}", code=2)
    state = DeviceState() if device is None else DeviceState.load(device_file(user=_subject(token), device=device))
    if cursor is not None:
        state.cursor = cursor

    async def main() -> int:
        stop_on_signals()
        async with httpx.AsyncClient(timeout=10) as http:
            listener = Listener(
                ws_url=ws_url,
                token=token,
                http=http,
                core_url=settings.core_url if core_url is None else core_url,
                poll_wait_s=poll_wait,
                state=state,
            )
            return await _listen(listener, count)

    try:
        asyncio.run(main())
    except asyncio.CancelledError:  # stopped by a signal
        raise typer.Exit(0) from None
    except ClosedByAdmin as exc:
        raise fail(f"connection closed by an admin: {exc}") from None
    except httpx.HTTPStatusError as exc:
        raise fail(f"ws_delivery refused the token: HTTP {exc.response.status_code}") from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the listener cleanly (exit 0) whatever dispositions the process inherited: a
    process started in the background by a shell ignores SIGINT, and Python then never raises KeyboardInterrupt."""
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)


def _subject(token: str) -> str:
    """The user a token speaks for (its `sub`, read without verifying: core and ws_delivery verify it)."""
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        sub = None
    if not isinstance(sub, str) or not is_valid_id(sub):
        raise fail("the token names no valid user (sub)", code=2)
    return sub


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)
