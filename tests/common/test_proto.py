"""The generated protobuf modules match proto/ and the numbering DESIGN section 13 fixes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workers.common.contract import wire

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto").rglob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "proto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
    )
    generated = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".py", ".pyi"))
    assert generated, "protoc produced nothing"
    for fresh in generated:
        committed = ROOT / "workers/common/contract/pb" / fresh.relative_to(tmp_path)
        assert committed.exists(), f"{committed} missing: run `make proto`"
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run `make proto`"


def test_field_numbers_follow_the_design() -> None:
    def numbers(message: type) -> list[tuple[str, int]]:
        return [(f.name, f.number) for f in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]

    assert numbers(wire.ReviewEvent) == [("brand_id", 1), ("review_id", 2), ("kind", 3), ("occurred_at", 4)]
    assert numbers(wire.Notification) == [
        ("id", 1),
        ("status", 2),
        ("timestamp", 3),
        ("created_by", 4),
        ("seen", 5),
        ("content_type", 6),
        ("content", 7),
        ("position", 8),
    ]
    assert numbers(wire.BrokerNotification) == [
        ("user_ids", 1),
        ("notification", 2),
        ("audience_shard", 3),
        ("audience_shards", 4),
    ]
    assert numbers(wire.BrokerConfirmation) == [("user_id", 1), ("id", 2)]
    assert numbers(wire.WebSocketMessage) == [
        ("message_id", 1),
        ("message_timestamp", 2),
        ("network_status", 3),
        ("notification", 4),
    ]
    assert numbers(wire.WebSocketConfirmation) == [("message_id", 1)]
    assert [wire.Notification.NEW, wire.Notification.UPDATED, wire.Notification.DELETED] == [0, 1, 2]
    assert [wire.WebSocketMessage.OK, wire.WebSocketMessage.ERROR] == [0, 1]
    assert [wire.ReviewEvent.ADDED, wire.ReviewEvent.UPDATED, wire.ReviewEvent.DELETED] == [0, 1, 2]


def test_optional_fields_track_presence() -> None:
    deleted = wire.Notification(id="n1", status=wire.Notification.DELETED)
    assert not deleted.HasField("seen")
    updated = wire.Notification(id="n1", status=wire.Notification.UPDATED, seen=False)
    assert updated.HasField("seen")
    assert wire.Notification.FromString(updated.SerializeToString()).HasField("seen")
