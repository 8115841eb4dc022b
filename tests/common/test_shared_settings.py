"""Values several rooms must agree on are one setting, read by every room that needs it."""

from __future__ import annotations

import pytest

from workers.core.settings import CoreSettings
from workers.puller.settings import PullerSettings
from workers.ws_delivery.settings import WsSettings


@pytest.mark.parametrize(
    "name",
    [
        "NOTIFIER_CONTENT_LIMIT_BYTES",
        "NOTIFIER_CORE_CONTENT_LIMIT_BYTES",
        "NOTIFIER_PULLER_MAX_CONTENT_BYTES",
        "NOTIFIER_WS_CONTENT_LIMIT_BYTES",
    ],
)
def test_one_content_limit_for_core_the_puller_and_ws_delivery(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("NOTIFIER_JWT_SECRET", "s" * 40)
    monkeypatch.setenv(name, "9000")
    limits = {cls.__name__: cls().content_limit_bytes for cls in (CoreSettings, PullerSettings, WsSettings)}
    assert limits == {"CoreSettings": 9000, "PullerSettings": 9000, "WsSettings": 9000}
