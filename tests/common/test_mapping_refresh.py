"""The pusher and the puller declare the mapping refresh once and each read it under its own name."""

from __future__ import annotations

import pytest

from workers.puller.settings import PullerSettings
from workers.pusher.settings import PusherSettings


def test_each_mapping_reader_reads_its_own_refresh_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_PUSHER_MAPPING_REFRESH_S", "2.5")
    monkeypatch.setenv("NOTIFIER_PULLER_MAPPING_REFRESH_S", "0.5")
    assert PusherSettings().mapping_refresh_s == 2.5
    assert PullerSettings().mapping_refresh_s == 0.5


def test_the_mapping_refresh_defaults_to_one_second() -> None:
    assert PusherSettings().mapping_refresh_s == PullerSettings().mapping_refresh_s == 1.0
