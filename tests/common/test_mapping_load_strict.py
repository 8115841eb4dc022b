"""`notifier mapping load` judges a file as the CRD judges an object, and a refused file changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.common.test_streamspec import STREAM_YAML
from tests.support.processes import notifier
from workers.common.contract.errors import InvalidMapping
from workers.common.contract.keys import BusKeys
from workers.common.contract.streamspec import MAX_DOCUMENT_BYTES, parse_document
from workers.common.runtime.mapping_store import read_mapping, read_settings

REFUSED = {
    "duplicate brand in JSON": ('{"Brand1": [1, 2], "Brand2": [4], "Brand1": [3]}', "duplicate key 'Brand1'"),
    "duplicate brand in YAML": (
        STREAM_YAML.replace('Brand2: ["4"]', 'Brand2: ["4"]\n    Brand1: ["9"]'),
        "duplicate key 'Brand1'",
    ),
    "duplicate field": (STREAM_YAML.replace("maxItems: 50", "maxItems: 50, maxItems: 60"), "duplicate key 'maxItems'"),
    "maxItems true": (STREAM_YAML.replace("maxItems: 50", "maxItems: true"), "digest.maxItems"),
    "maxItems 5.0": (STREAM_YAML.replace("maxItems: 50", "maxItems: 5.0"), "digest.maxItems"),
    "windowSeconds string": (STREAM_YAML.replace("windowSeconds: 5", 'windowSeconds: "30"'), "digest.windowSeconds"),
    "staleAfter boolean": (
        STREAM_YAML.replace("staleAfterSeconds: 20", "staleAfterSeconds: true"),
        "monitor.staleAfterSeconds",
    ),
    "integer user in a NotificationStream": (STREAM_YAML.replace('Brand2: ["4"]', "Brand2: [4]"), "brands.Brand2.0"),
    "YAML alias": ('a: &users ["1"]\nb: *users\n', "aliases are not accepted"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_the_crd_refuses_is_refused(name: str) -> None:
    text, message = REFUSED[name]
    with pytest.raises(InvalidMapping, match=message):
        parse_document(text)


def test_the_prototype_json_keeps_its_integer_user_ids() -> None:
    _, spec = parse_document('{"Brand1": [1, 2], "Brand2": [4]}')
    assert spec.brands == {"Brand1": ["1", "2"], "Brand2": ["4"]}


def test_a_document_over_the_size_limit_is_refused_unparsed() -> None:
    with pytest.raises(InvalidMapping, match="over the limit"):
        parse_document("{" + " " * MAX_DOCUMENT_BYTES + "}")


async def test_a_refused_file_leaves_the_loaded_mapping_untouched(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(STREAM_YAML)
    assert notifier("mapping", "load", str(good), "--stream", stream, env=env).returncode == 0
    before = await read_mapping(redis, keys=BusKeys(stream))
    settings_before = await read_settings(redis, keys=BusKeys(stream))
    for name, (text, message) in REFUSED.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        refused = notifier("mapping", "load", str(bad), "--stream", stream, env=env)
        assert refused.returncode == 1, name
        assert message.split(" '")[0] in refused.stderr, (name, refused.stderr)
        assert "Traceback" not in refused.stderr, name
    after = await read_mapping(redis, keys=BusKeys(stream))
    assert (after.version, after.brand_users) == (before.version, before.brand_users)
    assert await read_settings(redis, keys=BusKeys(stream)) == settings_before


async def test_a_huge_file_is_refused_with_a_clear_error_and_nothing_written(
    redis: aioredis.Redis, stream: str, env: dict[str, str], tmp_path: Path
) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("w") as out:
        out.write("{")
        out.write(", ".join(f'"B{i}": [{i}]' for i in range(1_000_000)))
        out.write("}")
    assert huge.stat().st_size > MAX_DOCUMENT_BYTES
    refused = notifier("mapping", "load", str(huge), "--stream", stream, env=env)
    assert refused.returncode == 1
    assert f"over {MAX_DOCUMENT_BYTES} bytes" in refused.stderr
    assert [key async for key in redis.scan_iter(match=f"nf:{stream}:*")] == []
