"""Render the Helm chart and check what it renders: the helpers behind tests/k8s and `make manifests`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tools.k8s_tools import ROOT, tool
from workers.common.contract import rooms

CHART = ROOT / "helm" / "notifier"
ALL_ON = Path(__file__).with_name("values-all-on.yaml")
CONNECTIONS = ("-f", str(Path(__file__).with_name("values-connections.yaml")))
"""Given first to every render: the chart refuses to render without connection settings."""
CRD_DIR = CHART / "crds"
KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "notifier"
RELEASE = "notifier"
ROOMS = tuple(room.command for room in rooms.ROOMS)
HTTP_ROOMS = tuple(room.command for room in rooms.ROOMS if room.http)
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "NotificationStream", "KopfPeering", "ClusterKopfPeering"}
"""Kinds without a built-in schema; those whose CRD is in crds/ are checked against it instead."""


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("helm")), *args], capture_output=True, text=True, check=False)


def render_text(*options: str, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
    result = helm("template", release, str(CHART), "--namespace", namespace, *CONNECTIONS, *options)
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr}")
    return result.stdout


def render(*options: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_text(*options, release=release, namespace=namespace)) if doc]


def refusal(*options: str, release: str = RELEASE, namespace: str = NAMESPACE, connections: bool = True) -> str:
    """The error of a `helm template` that must fail (an AssertionError when it renders)."""
    given = CONNECTIONS if connections else ()
    result = helm("template", release, str(CHART), "--namespace", namespace, *given, *options)
    assert result.returncode != 0, f"rendered although it should have failed: {options}"
    return result.stderr


def controller_part(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of `kind` that belong to the controller room (not to the uninstall hook)."""
    return [
        obj
        for obj in of_kind(objects, kind)
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "controller"
    ]


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def by_name(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in of_kind(objects, kind)}


def validate_builtin(obj: dict[str, Any]) -> None:
    """Validate against the strict Kubernetes schema; raises for an unknown kind unless it is a known CR."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        if obj["kind"] not in CUSTOM_KINDS:
            raise


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of every CRD in the chart's crds/."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate(obj: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Built-in kinds against the strict Kubernetes schema, custom resources against their CRD when it is known."""
    schema = schemas.get((obj["apiVersion"], obj["kind"]))
    if schema is not None:
        jsonschema.validate(obj, schema)
    else:
        validate_builtin(obj)


def selectors(obj: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every label selector an object carries (Deployment, PDB, Service, ServiceMonitor, anti-affinity terms)."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Service":
        yield spec.get("selector") or {}
    elif isinstance(spec.get("selector"), dict):
        yield spec["selector"].get("matchLabels") or {}
    yield from _nested_match_labels(spec.get("template", {}))


def _nested_match_labels(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "matchLabels" and isinstance(value, dict):
                yield value
            else:
                yield from _nested_match_labels(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nested_match_labels(item)


def prometheus_rules(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The PrometheusRule's groups as a plain Prometheus rules file."""
    (rule,) = of_kind(objects, "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("promtool")), *args], capture_output=True, text=True, cwd=cwd, check=False)
