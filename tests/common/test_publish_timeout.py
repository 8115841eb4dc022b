"""Core and ws_delivery wait the same publish timeout, read from one setting under either name."""

from __future__ import annotations

import pytest

from workers.core.settings import CoreSettings
from workers.ws_delivery.settings import WsSettings


@pytest.mark.parametrize("name", ["NOTIFIER_PUBLISH_TIMEOUT_S", "NOTIFIER_CORE_PUBLISH_TIMEOUT_S"])
def test_one_publish_timeout_for_core_and_ws_delivery(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("NOTIFIER_JWT_SECRET", "s" * 40)
    monkeypatch.setenv(name, "3.5")
    assert CoreSettings().publish_timeout_s == 3.5
    assert WsSettings().publish_timeout_s == 3.5


def test_the_publish_timeout_defaults_to_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_JWT_SECRET", "s" * 40)
    assert CoreSettings().publish_timeout_s == WsSettings().publish_timeout_s == 10.0
