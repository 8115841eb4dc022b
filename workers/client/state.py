"""What one device remembers between runs: its feed cursor and the changes it showed beyond the cursor.

The cursor is opaque (DESIGN section 6): the device never compares positions. It moves only through feed
reads, past entries the device has shown or had shown already. Every change shown is remembered as a
`(notification id, position)` pair (the oldest forgotten beyond `SHOWN_LIMIT`), so one arriving both as a
frame and from the feed is shown once. The pairs shown from WebSocket frames that no feed read has passed
yet are also saved, so a restart does not show them again.

The state file (`notifier listen --device NAME`) is JSON `{"cursor": string|null, "shown": [[id, position],
...]}`, replaced atomically (written beside and renamed) on every change.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

SHOWN_LIMIT = 10_000
SAVED_SHOWN = 1_000
"""The newest shown pairs written to the state file (frames beyond it are long passed by feed reads)."""

Key = tuple[str, str]
"""`(notification id, position)`: one change of one notification; for a frame without a position (an
earlier core), the position part is `~<status>:<timestamp ns>`."""


def state_home() -> Path:
    """`$XDG_STATE_HOME/notifier`, else `~/.local/state/notifier`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "notifier"


def device_file(*, user: str, device: str) -> Path:
    return state_home() / "devices" / user / f"{device}.json"


class DeviceState:
    def __init__(self, *, cursor: str | None = None, path: Path | None = None) -> None:
        self.cursor = cursor
        self.path = path
        self._shown: OrderedDict[Key, None] = OrderedDict()
        self._ahead: OrderedDict[Key, None] = OrderedDict()
        """Shown, beyond the cursor: from frames, not yet passed by a feed read (what the file keeps)."""

    @classmethod
    def load(cls, path: Path) -> DeviceState:
        """The state saved at `path`, or a new device's (no cursor) when there is none or it is unreadable."""
        state = cls(path=path)
        try:
            doc = json.loads(path.read_text())
            cursor = doc.get("cursor")
            state.cursor = None if cursor is None else str(cursor)
            for notification_id, position in doc.get("shown", []):
                key = (str(notification_id), str(position))
                state._shown[key] = None
                state._ahead[key] = None
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("device state %s unreadable (%s): starting as a new device", path, exc)
        return state

    def shown(self, key: Key) -> bool:
        return key in self._shown

    def record(self, key: Key, *, ahead: bool) -> None:
        """Remember a change as shown; `ahead` when the cursor has not passed it (it came as a frame)."""
        for kept in (self._shown, self._ahead) if ahead else (self._shown,):
            kept[key] = None
            kept.move_to_end(key)
            while len(kept) > SHOWN_LIMIT:
                kept.popitem(last=False)

    def passed(self, key: Key) -> None:
        """A feed read moved the cursor past this change: it cannot come from the feed again."""
        self._ahead.pop(key, None)

    @property
    def ahead(self) -> int:
        """How many changes were shown from frames since feed reads last passed them."""
        return len(self._ahead)

    def save(self) -> None:
        if self.path is None:
            return
        shown = list(self._ahead)[-SAVED_SHOWN:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"cursor": self.cursor, "shown": [list(key) for key in shown]}))
        partial.replace(self.path)
