"""The chart beside other releases and through its life: image names, the uninstall hook, clashing controllers.

Checks that need a cluster (`lookup`) render with `helm template --dry-run=server` against the controller
tests' KMock API server, holding the objects another release would have installed (KMock serves no OpenAPI
document, hence `--disable-openapi-validation`; the objects are validated offline in test_chart).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.controller.conftest import start_api, stop_api, write_kubeconfig
from tests.controller.emulator import BackgroundServers
from tools.chart import CHART, CONNECTIONS, RELEASE, ROOMS, by_name, controller_part, helm, of_kind, refusal, render

STREAM = ("--set", "stream.create=true", "--set-json", 'stream.brands={"Brand1": ["1"]}')
Objects = list[dict[str, Any]]


def images(objects: Objects) -> dict[str, tuple[str, str]]:
    """Every container's image and pull policy, by `<kind>/<name>`."""
    found = {}
    for obj in objects:
        spec = obj.get("spec") or {}
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template", {}
        ).get("spec")
        pod = pod or (spec if obj["kind"] == "Pod" else None)
        for container in (pod or {}).get("containers", ()):
            found[f"{obj['kind']}/{obj['metadata']['name']}"] = (container["image"], container["imagePullPolicy"])
    return found


def test_images_are_fully_qualified_as_make_images_names_them() -> None:
    found = images(render(*STREAM, "--set", "cleanerCronJob.enabled=true"))
    assert len(found) == len(ROOMS) + 3  # the rooms, the CronJob, the helm test Pod, the uninstall Job
    for name, (image, policy) in found.items():
        assert image.startswith("docker.io/notifier/"), name
        assert image.endswith(":0.1.0"), name
        assert policy == "IfNotPresent", name
    assert found[f"Deployment/{RELEASE}-ws-delivery"][0] == "docker.io/notifier/ws-delivery:0.1.0"


def test_one_registry_tag_and_pull_policy_for_every_image_with_room_overrides() -> None:
    options = ("--set", "image.registry=localhost,image.tag=dev,image.pullPolicy=Never")
    found = images(render(*STREAM, *options, "--set", "core.image.registry=ghcr.io/acme,core.image.tag=1.2"))
    assert found.pop(f"Deployment/{RELEASE}-core") == ("ghcr.io/acme/notifier/core:1.2", "Never")
    assert found.pop(f"Pod/{RELEASE}-test-services") == ("ghcr.io/acme/notifier/core:1.2", "Never")
    assert found[f"Deployment/{RELEASE}-pusher"] == ("localhost/notifier/pusher:dev", "Never")
    for name, (image, policy) in found.items():
        assert image.startswith("localhost/notifier/"), name
        assert image.endswith(":dev"), name
        assert policy == "Never", name
    bare = images(render("--set", "image.registry="))
    assert bare[f"Deployment/{RELEASE}-puller"][0] == "notifier/puller:0.1.0"


def test_the_uninstall_hook_deletes_the_release_streams_before_the_controller_goes() -> None:
    objects = render(*STREAM)
    hooks = [obj for obj in objects if "helm.sh/hook" in obj["metadata"].get("annotations", {})]
    uninstall = {obj["kind"]: obj for obj in hooks if obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"}
    assert set(uninstall) == {"ServiceAccount", "Role", "RoleBinding", "Job"}
    weight = {kind: int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) for kind, obj in uninstall.items()}
    assert max(weight[kind] for kind in ("ServiceAccount", "Role", "RoleBinding")) < weight["Job"]
    for obj in uninstall.values():
        policy = obj["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(",")
        assert {"before-hook-creation", "hook-succeeded"} <= set(policy)
        assert "hook-failed" not in policy
    assert uninstall["Role"]["rules"] == [
        {"apiGroups": ["notifier.io"], "resources": ["notificationstreams"], "verbs": ["get", "list", "delete"]}
    ]
    assert uninstall["RoleBinding"]["roleRef"]["name"] == uninstall["Role"]["metadata"]["name"]
    assert uninstall["RoleBinding"]["subjects"][0]["name"] == uninstall["ServiceAccount"]["metadata"]["name"]
    job = uninstall["Job"]["spec"]
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == uninstall["ServiceAccount"]["metadata"]["name"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "workers.controller.uninstall"]
    assert command[command.index("--release") + 1] == RELEASE
    assert command[command.index("--namespace") + 1] == "notifier"
    timeout = float(command[command.index("--timeout") + 1])
    assert job["activeDeadlineSeconds"] > timeout
    assert job["backoffLimit"] == 0
    (stream,) = of_kind(objects, "NotificationStream")
    assert stream["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert stream["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert "helm.sh/hook" not in stream["metadata"].get("annotations", {})


@pytest.mark.parametrize(
    "options", [(), (*STREAM, "--set", "uninstallHook.enabled=false"), (*STREAM, "--set", "controller.enabled=false")]
)
def test_no_uninstall_hook_without_a_stream_and_a_controller(options: tuple[str, ...]) -> None:
    assert of_kind(render(*options), "Job") == []


def test_a_standalone_controller_refuses_a_second_replica() -> None:
    standalone = ("--set-json", 'controller.env=[{"name": "NOTIFIER_CONTROLLER_PEERING", "value": ""}]')
    assert "only one replica may run" in refusal(*standalone, "--set", "controller.replicas=2")
    assert "only one replica may run" in refusal(*standalone, "--set", "controller.autoscaling.enabled=true")
    assert render(*standalone)


def test_a_namespaced_release_refuses_other_namespaces() -> None:
    other = ("--set-json", 'controller.env=[{"name": "NOTIFIER_CONTROLLER_NAMESPACES", "value": "a,b"}]')
    assert "serves namespace notifier only" in refusal("--set", "rbac.clusterScoped=false", *other)
    served = by_name(render(*other), "Deployment")[f"{RELEASE}-controller"]
    env = [e for e in served["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"].endswith("NAMESPACES")]
    assert env == [{"name": "NOTIFIER_CONTROLLER_NAMESPACES", "value": "a,b"}]


# Two releases in one cluster: the first one's controller Deployment is in KMock, the second renders against it.

CLUSTER_WIDE: tuple[str, ...] = ()
NAMESPACED = ("--set", "rbac.clusterScoped=false")
SOME_NAMESPACES = ("--set-json", 'controller.env=[{"name": "NOTIFIER_CONTROLLER_NAMESPACES", "value": "b,c"}]')


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A kubeconfig for a fresh KMock API server, and the server's URL."""
    servers = BackgroundServers()
    api, server = servers.run(start_api())
    yield write_kubeconfig(tmp_path / "kubeconfig", server), str(server.url).rstrip("/")
    servers.run(stop_api(api, server))
    servers.close()


def install_first(url: str, *options: str, release: str, namespace: str) -> None:
    """Put the first release's controller Deployment, as the chart renders it, into the API server."""
    (deployment,) = controller_part(render(*options, release=release, namespace=namespace), "Deployment")
    deployment["metadata"]["annotations"] = {  # what Helm records on the objects it installs
        "meta.helm.sh/release-name": release,
        "meta.helm.sh/release-namespace": namespace,
    }
    response = httpx.post(f"{url}/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment, timeout=10)
    response.raise_for_status()


def second(kubeconfig: Path, *options: str, release: str, namespace: str) -> subprocess.CompletedProcess[str]:
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--dry-run=server",
        "--disable-openapi-validation",
        *CONNECTIONS,
        "--kubeconfig",
        str(kubeconfig),
        *options,
    )


@pytest.mark.parametrize(
    ("first", "first_namespace", "then", "then_namespace", "fights"),
    [
        (CLUSTER_WIDE, "a", CLUSTER_WIDE, "b", True),
        (CLUSTER_WIDE, "a", NAMESPACED, "b", True),
        (NAMESPACED, "b", CLUSTER_WIDE, "a", True),
        (NAMESPACED, "a", NAMESPACED, "a", True),
        (NAMESPACED, "a", NAMESPACED, "b", False),
        (SOME_NAMESPACES, "a", NAMESPACED, "c", True),
        (SOME_NAMESPACES, "a", NAMESPACED, "d", False),
    ],
)
def test_a_second_release_whose_controller_would_serve_the_same_namespace_is_refused(
    kubeconfig: tuple[Path, str],
    first: tuple[str, ...],
    first_namespace: str,
    then: tuple[str, ...],
    then_namespace: str,
    fights: bool,
) -> None:
    path, url = kubeconfig
    install_first(url, *first, release="first", namespace=first_namespace)
    result = second(path, *then, release="second", namespace=then_namespace)
    if fights:
        assert result.returncode != 0
        assert f"release first in namespace {first_namespace} already runs a Notifier controller" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_an_upgrade_of_the_same_release_or_a_release_without_a_controller_passes(kubeconfig: tuple[Path, str]) -> None:
    path, url = kubeconfig
    install_first(url, release="first", namespace="a")
    assert second(path, release="first", namespace="a").returncode == 0
    assert second(path, "--set", "controller.enabled=false", release="second", namespace="b").returncode == 0
    assert second(path, "--set", "controller.checkOtherReleases=false", release="second", namespace="b").returncode == 0


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_make_images_gives_docker_and_podman_builds_the_names_the_chart_uses(engine: str, tmp_path: Path) -> None:
    fake = tmp_path / engine
    log = tmp_path / "builds"
    fake.write_text(
        "#!/bin/bash\n"
        f'if [ "$1" = build ]; then while [ $# -gt 0 ]; do [ "$1" = -t ] && echo "$2" >>{log}; shift; done; fi\n'
        'if [ "$1" = image ] && [ "$2" = inspect ]; then echo sha256:fake; fi\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CONTAINER_ENGINE": str(fake), "XDG_CACHE_HOME": str(tmp_path)}
    result = subprocess.run(
        ["/bin/bash", str(CHART.parents[1] / ".ci" / "images")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    built = log.read_text().split()
    deployed = [image for name, (image, _) in images(render()).items() if name.startswith("Deployment/")]
    assert sorted(built) == sorted(deployed)
