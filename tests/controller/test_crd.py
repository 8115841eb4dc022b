"""The hand-written CRD and sample: one file in two places, a schema that matches the spec parser."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from workers.common.contract.keys import ID_PATTERN
from workers.common.contract.streamspec import MAX_BRANDS, MAX_USERS_PER_BRAND, DigestSpec, MonitorSpec, parse_document
from workers.common.runtime.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
CHART_CRD = ROOT / "helm/notifier/crds/notificationstreams.yaml"
MANIFEST_CRD = ROOT / "manifests/crd.yaml"
SAMPLE = ROOT / "manifests/samples/notificationstream.yaml"


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CHART_CRD.read_text())
    return loaded


def version() -> dict[str, Any]:
    [served] = crd()["spec"]["versions"]
    return dict(served)


def schema() -> dict[str, Any]:
    return dict(version()["schema"]["openAPIV3Schema"])


def sample() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    return loaded


def validate(document: dict[str, Any]) -> None:
    jsonschema.validate(document, schema(), cls=jsonschema.Draft4Validator)


def test_manifest_crd_is_the_chart_crd() -> None:
    assert MANIFEST_CRD.read_bytes() == CHART_CRD.read_bytes()


def test_crd_names_version_and_status_subresource() -> None:
    spec = crd()["spec"]

    assert crd()["metadata"]["name"] == "notificationstreams.notifier.io"
    assert spec["names"]["shortNames"] == ["nstream"]
    assert version()["name"] == "v1alpha1"
    assert version()["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c["jsonPath"] for c in version()["additionalPrinterColumns"]}

    assert list(columns) == ["Ready", "Brands", "Users", "Stale", "Invalid", "Age"]
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Stale"] == ".status.staleUsers"


def test_sample_is_the_prototypes_mapping_and_validates() -> None:
    document = sample()

    validate(document)
    name, spec = parse_document(SAMPLE.read_text())
    assert name == "reviews"
    assert spec.brands == {"Brand1": ["1", "2"], "Brand2": ["4"]}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "brands", "Brand1"), []),
        (("spec", "brands", "Brand1"), ["1", "bad id"]),
        (("spec", "brands", "Brand1"), [1, 2]),
        (("spec", "digest", "windowSeconds"), 86_401),
        (("spec", "digest", "maxItems"), 0),
        (("spec", "monitor", "staleAfterSeconds"), 0),
        (("spec", "monitor", "intervalSeconds"), 3_601),
        (("spec", "brands"), None),
    ],
)
def test_schema_rejects_what_the_spec_parser_rejects(path: tuple[str, ...], value: Any) -> None:
    document = copy.deepcopy(sample())
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_schema_bounds_and_defaults_match_the_spec_parser() -> None:
    spec = schema()["properties"]["spec"]["properties"]
    fields = {
        ("digest", "windowSeconds"): DigestSpec.model_fields["window_seconds"],
        ("digest", "maxItems"): DigestSpec.model_fields["max_items"],
        ("monitor", "staleAfterSeconds"): MonitorSpec.model_fields["stale_after_seconds"],
        ("monitor", "intervalSeconds"): MonitorSpec.model_fields["interval_seconds"],
    }
    for (group, name), field in fields.items():
        declared = spec[group]["properties"][name]
        bounds = {type(m).__name__: m for m in field.metadata}
        assert declared["minimum"] == bounds["Ge"].ge, name
        assert declared["maximum"] == bounds["Le"].le, name
        assert declared["default"] == field.default, name

    brands = spec["brands"]
    assert brands["maxProperties"] == MAX_BRANDS
    assert brands["additionalProperties"]["maxItems"] == MAX_USERS_PER_BRAND
    assert brands["additionalProperties"]["minItems"] == 1
    assert brands["additionalProperties"]["items"]["pattern"] == ID_PATTERN


def test_brand_id_rule_uses_the_id_pattern() -> None:
    [rule] = schema()["properties"]["spec"]["properties"]["brands"]["x-kubernetes-validations"]
    pattern = re.search(r"matches\('(.+)'\)", rule["rule"])

    assert pattern is not None
    assert pattern.group(1) == ID_PATTERN


def test_object_name_rule_uses_the_stream_name_pattern() -> None:
    [rule] = schema()["x-kubernetes-validations"]
    pattern = re.search(r"matches\('(.+)'\)", rule["rule"])
    [stream_pattern] = [m.pattern for m in CommonSettings.model_fields["stream"].metadata if hasattr(m, "pattern")]

    assert rule["rule"].startswith("self.metadata.name.")
    assert pattern is not None
    assert pattern.group(1) == stream_pattern
