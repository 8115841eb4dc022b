"""The Helm chart: lint, render, validate offline against Kubernetes and CRD schemas, alert rules, generated files.

Needs helm and promtool in .tools/bin (`make tools`, which `make test` runs first); a missing binary fails.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tools import manifests as generate
from tools.chart import (
    ALL_ON,
    CHART,
    CONNECTIONS,
    CRD_DIR,
    HTTP_ROOMS,
    RELEASE,
    ROOMS,
    by_name,
    controller_part,
    crd_schemas,
    helm,
    of_kind,
    prometheus_rules,
    promtool,
    refusal,
    render,
    selectors,
    validate,
    validate_builtin,
)
from tools.k8s_tools import ROOT
from workers.common.contract.streamspec import parse_spec

VARIANTS = {"default": CONNECTIONS, "all-on": ("-f", str(ALL_ON))}
Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def default() -> Objects:
    return render("--include-crds")


@pytest.fixture(scope="module")
def all_on() -> Objects:
    return render("--include-crds", *VARIANTS["all-on"])


def deployments(objects: Objects) -> dict[str, dict[str, Any]]:
    return by_name(objects, "Deployment")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize("variant", VARIANTS)
def test_chart_lints_strictly(variant: str) -> None:
    result = helm("lint", "--strict", str(CHART), *VARIANTS[variant])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schema(variant: str) -> None:
    objects = render("--include-crds", *VARIANTS[variant])
    assert objects
    schemas = crd_schemas()
    for obj in objects:
        validate(obj, schemas)


def test_every_room_gets_a_restricted_deployment_from_the_same_template(default: Objects) -> None:
    found = deployments(default)
    assert set(found) == {f"{RELEASE}-{room}" for room in ROOMS}
    for room in ROOMS:
        deployment = found[f"{RELEASE}-{room}"]
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["command"] == ["notifier", room]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = main["securityContext"]
        assert security["runAsUser"] == 10001
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        startup_budget = main["startupProbe"]["periodSeconds"] * main["startupProbe"]["failureThreshold"]
        assert startup_budget >= 30
        assert "initialDelaySeconds" not in main["readinessProbe"]
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
        ports = {port["name"] for port in main["ports"]}
        assert ports == ({"http", "ops"} if room in HTTP_ROOMS else {"ops"})
        assert pod.get("automountServiceAccountToken", True) is (room == "controller")


SECRET_KEYS = {"REDIS_URL": "redis-url", "AMQP_URL": "amqp-url", "JWT_SECRET": "jwt-secret"}
NEEDS = {
    "pusher": {"REDIS_URL", "AMQP_URL"},
    "puller": {"REDIS_URL", "JWT_SECRET"},
    "monitor": {"REDIS_URL"},
    "cleaner": {"REDIS_URL"},
    "core": {"REDIS_URL", "AMQP_URL", "JWT_SECRET"},
    "ws-delivery": {"REDIS_URL", "AMQP_URL", "JWT_SECRET"},
    "controller": {"REDIS_URL"},
}
"""Secret keys per room: the JWT secret only where tokens are verified or minted, broker credentials only where
the room talks to RabbitMQ."""


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        e["name"].removeprefix("NOTIFIER_"): e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_each_room_reads_only_the_connections_it_uses_and_listens_on_all_interfaces(default: Objects) -> None:
    (secret,) = of_kind(default, "Secret")
    assert set(secret["data"]) == {"redis-url", "amqp-url", "jwt-secret"}
    for room in ROOMS:
        main = container(deployments(default)[f"{RELEASE}-{room}"])
        env = {item["name"]: item for item in main["env"]}
        assert all(name.startswith("NOTIFIER_") or name == "POD_ID" for name in env)
        refs = secret_refs(main)
        assert set(refs) == NEEDS[room], room
        for name, ref in refs.items():
            assert ref == {"name": secret["metadata"]["name"], "key": SECRET_KEYS[name]}
        assert env["NOTIFIER_HTTP_HOST"]["value"] == env["NOTIFIER_OPS_HOST"]["value"] == "0.0.0.0"
        assert env["NOTIFIER_STREAM"]["value"] == "reviews"
        assert ("NOTIFIER_CORE_URL" in env) is (room == "puller"), room
    puller_env = {e["name"]: e.get("value") for e in container(deployments(default)[f"{RELEASE}-puller"])["env"]}
    assert puller_env["NOTIFIER_CORE_URL"] == f"http://{RELEASE}-core:8000"
    (cronjob,) = of_kind(render("--set", "cleanerCronJob.enabled=true"), "CronJob")
    (job,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert set(secret_refs(job)) == {"REDIS_URL"}


def test_without_connection_settings_the_chart_refuses_to_render() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["secrets"] == {"existingSecret": "", "redisUrl": "", "amqpUrl": "", "jwtSecret": ""}
    message = refusal(connections=False)
    assert "no connection settings" in message
    assert "secrets.existingSecret" in message
    assert "secrets.amqpUrl" in refusal("--set", "secrets.redisUrl=redis://r:6379/0", connections=False)


def test_an_existing_secret_replaces_the_chart_secret() -> None:
    objects = render("--set", "secrets.existingSecret=vault-notifier")
    assert of_kind(objects, "Secret") == []
    for deployment in deployments(objects).values():
        refs = secret_refs(container(deployment))
        assert {ref["name"] for ref in refs.values()} == {"vault-notifier"}
    bare = helm("template", RELEASE, str(CHART), "--set", "secrets.existingSecret=vault-notifier")
    assert bare.returncode == 0, bare.stderr


def test_room_env_lists_are_appended_after_the_shared_settings(all_on: Objects) -> None:
    env = container(deployments(all_on)[f"{RELEASE}-ws-delivery"])["env"]
    assert env[-2:] == [
        {"name": "NOTIFIER_WS_RETRY_INTERVAL_S", "value": "10"},
        {"name": "NOTIFIER_WS_TICKET_TTL_S", "value": "30"},
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_selectors_never_carry_the_chart_version(variant: str) -> None:
    objects = render(*VARIANTS[variant])
    checked = 0
    for obj in objects:
        for selector in selectors(obj):
            checked += 1
            assert "helm.sh/chart" not in selector, obj["metadata"]["name"]
            assert "app.kubernetes.io/version" not in selector, obj["metadata"]["name"]
    assert checked >= len(ROOMS) * 2


def test_every_service_selects_exactly_one_room(all_on: Objects) -> None:
    pod_labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments(all_on).items()}
    services = by_name(all_on, "Service")
    expected = {f"{RELEASE}-{room}-metrics" for room in ROOMS} | {f"{RELEASE}-{room}" for room in HTTP_ROOMS}
    assert set(services) == expected
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matching = [d for d, labels in pod_labels.items() if selector.items() <= labels.items()]
        assert len(matching) == 1, name
        port_name = "ops" if name.endswith("-metrics") else "http"
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [port_name]


def test_autoscaled_rooms_leave_replicas_to_their_hpa(all_on: Objects) -> None:
    hpas = by_name(all_on, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"{RELEASE}-{room}" for room in ("pusher", "puller", "core", "ws-delivery")}
    for name, deployment in deployments(all_on).items():
        assert ("replicas" in deployment["spec"]) is (name not in hpas)
    assert hpas[f"{RELEASE}-core"]["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-core"
    pdbs = by_name(all_on, "PodDisruptionBudget")
    assert set(pdbs) == {f"{RELEASE}-{room}" for room in ROOMS}


def test_controller_rbac_is_least_privilege_for_its_scope(default: Objects, all_on: Objects) -> None:
    expected = [
        {
            "apiGroups": ["notifier.io"],
            "resources": ["notificationstreams"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": ["notifier.io"], "resources": ["notificationstreams/status"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    peering = {"apiGroups": ["kopf.dev"], "verbs": ["get", "list", "watch", "patch"]}
    (cluster_role,) = of_kind(default, "ClusterRole")
    assert cluster_role["rules"] == [*expected, {**peering, "resources": ["clusterkopfpeerings"]}]
    (binding,) = of_kind(default, "ClusterRoleBinding")
    account = container(deployments(default)[f"{RELEASE}-controller"])
    assert (
        binding["subjects"][0]["name"]
        == deployments(default)[f"{RELEASE}-controller"]["spec"]["template"]["spec"]["serviceAccountName"]
    )
    assert "NOTIFIER_CONTROLLER_NAMESPACES" not in {e["name"] for e in account["env"]}
    pod_id = next(e for e in account["env"] if e["name"] == "POD_ID")
    assert pod_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

    assert of_kind(all_on, "ClusterRole") == []
    (role,) = controller_part(all_on, "Role")
    assert role["rules"] == [*expected, {**peering, "resources": ["kopfpeerings"]}]
    assert role["metadata"]["namespace"] == "notifier"
    env = {e["name"]: e.get("value") for e in container(deployments(all_on)[f"{RELEASE}-controller"])["env"]}
    assert env["NOTIFIER_CONTROLLER_NAMESPACES"] == "notifier"


def test_controller_replicas_share_a_peering_object_unless_standalone(default: Objects, all_on: Objects) -> None:
    (cluster_peering,) = of_kind(default, "ClusterKopfPeering")
    assert cluster_peering["metadata"]["name"] == f"{RELEASE}-controller"
    env = {e["name"]: e.get("value") for e in container(deployments(default)[f"{RELEASE}-controller"])["env"]}
    assert env["NOTIFIER_CONTROLLER_PEERING"] == f"{RELEASE}-controller"
    (peering,) = of_kind(all_on, "KopfPeering")
    assert peering["metadata"]["namespace"] == "notifier"
    (second,) = of_kind(render(release="second"), "ClusterKopfPeering")
    assert second["metadata"]["name"] == "second-controller"

    named = render("--set-json", 'controller.env=[{"name": "NOTIFIER_CONTROLLER_PEERING", "value": "nf-east"}]')
    assert [p["metadata"]["name"] for p in of_kind(named, "ClusterKopfPeering")] == ["nf-east"]
    named_env = [e for e in container(deployments(named)[f"{RELEASE}-controller"])["env"] if "PEERING" in e["name"]]
    assert named_env == [{"name": "NOTIFIER_CONTROLLER_PEERING", "value": "nf-east"}]

    standalone = render("--set-json", 'controller.env=[{"name": "NOTIFIER_CONTROLLER_PEERING", "value": ""}]')
    assert of_kind(standalone, "ClusterKopfPeering") == []
    (role,) = of_kind(standalone, "ClusterRole")
    assert all("kopf.dev" not in rule["apiGroups"] for rule in role["rules"])


def test_cleaner_runs_long_lived_and_invalid_users_are_cleaned_on_a_schedule(all_on: Objects) -> None:
    cleaner = deployments(all_on)[f"{RELEASE}-cleaner"]
    assert container(cleaner)["command"] == ["notifier", "cleaner"]
    (cronjob,) = of_kind(all_on, "CronJob")
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (job,) = job_pod["spec"]["containers"]
    assert job["command"] == ["notifier", "clean", "--invalid"]
    assert job["image"] == container(cleaner)["image"]
    assert job["securityContext"]["readOnlyRootFilesystem"] is True
    cleaner_selector = cleaner["spec"]["selector"]["matchLabels"]
    assert not cleaner_selector.items() <= job_pod["metadata"]["labels"].items()


def test_helm_test_hook_asks_core_and_ws_delivery_through_their_services(default: Objects) -> None:
    (pod,) = of_kind(default, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (check,) = pod["spec"]["containers"]
    assert check["image"] == container(deployments(default)[f"{RELEASE}-core"])["image"]
    assert check["command"][-2:] == [f"http://{RELEASE}-{room}:8000/openapi.json" for room in HTTP_ROOMS]
    compile(check["command"][2], "helm-test", "exec")


@pytest.fixture
def openapi_server() -> Iterator[str]:
    """A local HTTP server answering /openapi.json like core and ws-delivery do."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"info": {"title": "Notifier core"}}).encode()
            self.send_response(200 if self.path == "/openapi.json" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_helm_test_hook_passes_only_when_every_service_answers(default: Objects, openapi_server: str) -> None:
    (pod,) = of_kind(default, "Pod")
    script = pod["spec"]["containers"][0]["command"][2]

    def hook(*urls: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, "1", *urls], capture_output=True, text=True, check=False)

    answered = hook(f"{openapi_server}/openapi.json")
    assert answered.returncode == 0, answered.stderr
    assert "Notifier core" in answered.stdout
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        silent = f"http://127.0.0.1:{unused.getsockname()[1]}/openapi.json"
    failed = hook(f"{openapi_server}/openapi.json", silent)
    assert failed.returncode != 0
    assert f"no answer from {silent}" in failed.stderr


def test_notificationstream_from_values_is_a_valid_stream(all_on: Objects) -> None:
    (stream,) = of_kind(all_on, "NotificationStream")
    assert stream["metadata"]["name"] == "reviews"
    assert stream["spec"]["brands"] == {"Brand1": ["1", "2"], "Brand2": ["4"]}
    parse_spec(stream["spec"])
    schema = crd_schemas().get(("notifier.io/v1alpha1", "NotificationStream"))
    if schema is None:
        pytest.skip(f"no NotificationStream CRD in {CRD_DIR.relative_to(ROOT)} yet")
    jsonschema.validate(stream, schema)


def test_stream_creation_without_brands_is_refused() -> None:
    assert "stream.brands" in refusal("--set", "stream.create=true")


@pytest.mark.parametrize(
    "bad",
    [
        "pusher.replicas=-1",
        "logFormat=xml",
        "core.image.pullPolicy=Sometimes",
        "stream.name=Not_A_Name",
        "wsDelivery.unknown=1",
        "secrets.redisUrl=http://redis",
    ],
)
def test_values_schema_rejects_bad_values(bad: str) -> None:
    result = helm("lint", "--strict", str(CHART), "--set", bad)
    assert result.returncode != 0, bad


def test_prometheus_rules_pass_promtool(all_on: Objects, tmp_path: Path) -> None:
    rules = prometheus_rules(all_on)
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts == {
        "NotifierStaleUsers",
        "NotifierInvalidUsers",
        "NotifierBacklogTooOld",
        "NotifierResendRateHigh",
        "NotifierBrokerDown",
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "alerts_test.yaml").write_text(Path(__file__).with_name("alerts_test.yaml").read_text())
    check = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_service_monitor_scrapes_every_metrics_service(all_on: Objects) -> None:
    (monitor,) = of_kind(all_on, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in of_kind(all_on, "Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in scraped} == {f"{RELEASE}-{room}-metrics" for room in ROOMS}
    assert monitor["spec"]["endpoints"][0]["port"] == "ops"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_every_value_is_documented_and_every_param_is_in_the_readme_table() -> None:
    documented = {key for _, key, _ in generate.params()}
    values = yaml.safe_load(generate.VALUES.read_text())
    undocumented = [key for key in _leaves(values) if not any(key == d or key.startswith(f"{d}.") for d in documented)]
    assert undocumented == []
    readme = (CHART / "README.md").read_text()
    assert [key for key in sorted(documented) if f"| `{key}` |" not in readme] == []


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def test_generated_manifests_and_readme_table_are_up_to_date() -> None:
    for path, text in generate.outputs().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is out of date: run `make manifests`"


def test_kubectl_install_leaves_the_secret_to_the_user() -> None:
    objects = [doc for doc in yaml.safe_load_all(generate.MANIFEST.read_text()) if doc]
    assert of_kind(objects, "Secret") == []
    assert of_kind(objects, "Pod") == []
    assert len(of_kind(objects, "Deployment")) == len(ROOMS)


@pytest.mark.parametrize("name", ["redis.yaml", "rabbitmq.yaml", "notifier.yaml"])
def test_local_manifests_are_valid(name: str) -> None:
    objects = [doc for doc in yaml.safe_load_all((ROOT / "manifests" / name).read_text()) if doc]
    assert objects
    for obj in objects:
        validate_builtin(obj)


def test_local_redis_keeps_an_append_only_file() -> None:
    objects = [doc for doc in yaml.safe_load_all((ROOT / "manifests" / "redis.yaml").read_text()) if doc]
    (redis,) = of_kind(objects, "StatefulSet")
    args = container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert by_name(objects, "Service")["redis"]["spec"]["ports"][0]["port"] == 6379


def _images(path: Path) -> subprocess.CompletedProcess[str]:
    """Run `make images`' script with only `path` on PATH (so no real docker or podman is found)."""
    return subprocess.run(
        ["/bin/bash", str(ROOT / ".ci" / "images")],
        env={"PATH": str(path)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_images_says_clearly_when_no_container_engine_exists(tmp_path: Path) -> None:
    result = _images(tmp_path)
    assert result.returncode != 0
    assert "neither docker nor podman is installed" in result.stderr


def test_images_says_clearly_when_the_docker_daemon_does_not_answer(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/bash\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = _images(tmp_path)
    assert result.returncode != 0
    assert "daemon does not answer" in result.stderr


def test_dockerfile_has_a_non_root_target_per_room_with_its_entrypoint() -> None:
    stages = _dockerfile_stages((ROOT / "Dockerfile").read_text())
    assert set(ROOMS) <= set(stages)
    for room in ROOMS:
        assert f'ENTRYPOINT ["notifier", "{room}"]' in stages[room]["lines"]
        inherited = [line for stage in _ancestry(stages, room) for line in stages[stage]["lines"]]
        assert any(line.startswith("USER 10001") for line in inherited), room
        assert any("HEALTHCHECK" in line and "/healthz" in line for line in inherited), room


def _ancestry(stages: dict[str, dict[str, Any]], name: str) -> list[str]:
    """The stage and the stages it is built FROM, up to an image that is not a stage of this Dockerfile."""
    chain = []
    while name in stages:
        chain.append(name)
        name = stages[name]["from"]
    return chain


def _dockerfile_stages(text: str) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.replace("\\\n", " ").splitlines():
        words = line.split()
        if words[:1] == ["FROM"] and len(words) == 4 and words[2].upper() == "AS":
            current = stages[words[3]] = {"from": words[1], "lines": []}
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            current["lines"].append(line.strip())
    return stages
