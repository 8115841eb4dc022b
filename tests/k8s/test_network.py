"""The chart's NetworkPolicies (one per room, on by default) and its optional Ingress for core and ws-delivery."""

from __future__ import annotations

from typing import Any

import pytest

from tools.chart import HTTP_ROOMS, RELEASE, ROOMS, by_name, of_kind, refusal, render

Objects = list[dict[str, Any]]
EGRESS = {
    "pusher": {53, 6379, 5672},
    "puller": {53, 6379, 8000},
    "monitor": {53, 6379},
    "cleaner": {53, 6379},
    "core": {53, 6379, 5672},
    "ws-delivery": {53, 6379, 5672},
    "controller": {53, 6379, 443, 6443},
}


@pytest.fixture(scope="module")
def objects() -> Objects:
    return render()


def pod_labels(objects: Objects) -> dict[str, dict[str, str]]:
    """Pod template labels by room (and `test` for the helm test Pod)."""
    labels = {
        name.removeprefix(f"{RELEASE}-"): d["spec"]["template"]["metadata"]["labels"]
        for name, d in by_name(objects, "Deployment").items()
    }
    (test_pod,) = of_kind(objects, "Pod")
    labels["test"] = test_pod["metadata"]["labels"]
    return labels


def selects(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a same-namespace podSelector peer selects a pod with `labels`."""
    if "namespaceSelector" in peer or "podSelector" not in peer:
        return False
    return dict(peer["podSelector"].get("matchLabels") or {}).items() <= labels.items()


def test_every_room_has_a_policy_that_selects_exactly_its_pods(objects: Objects) -> None:
    policies = by_name(objects, "NetworkPolicy")
    assert set(policies) == {f"{RELEASE}-{room}" for room in ROOMS}
    pods = pod_labels(objects)
    for room in ROOMS:
        spec = policies[f"{RELEASE}-{room}"]["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        chosen = [name for name, labels in pods.items() if spec["podSelector"]["matchLabels"].items() <= labels.items()]
        assert chosen == [room]


def test_ingress_reaches_the_ops_port_from_monitoring_and_http_only_from_allowed_peers(objects: Objects) -> None:
    policies = by_name(objects, "NetworkPolicy")
    pods = pod_labels(objects)
    for room in ROOMS:
        rules = policies[f"{RELEASE}-{room}"]["spec"]["ingress"]
        by_port = {rule["ports"][0]["port"]: rule for rule in rules}
        assert set(by_port) == ({"ops", "http"} if room in HTTP_ROOMS else {"ops"}), room
        assert by_port["ops"]["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]
        if room in HTTP_ROOMS:
            peers = by_port["http"]["from"]
            assert any(selects(peer, pods["test"]) for peer in peers)
            assert any(selects(peer, pods["puller"]) for peer in peers[:-1]) is (room == "core")
            assert peers[-1] == {"podSelector": {}}


def test_egress_goes_only_where_each_room_reaches(objects: Objects) -> None:
    policies = by_name(objects, "NetworkPolicy")
    pods = pod_labels(objects)
    for room in ROOMS:
        rules = policies[f"{RELEASE}-{room}"]["spec"]["egress"]
        ports = {port["port"] for rule in rules for port in rule["ports"]}
        assert ports == EGRESS[room], room
        (dns,) = [rule for rule in rules if rule["ports"][0]["port"] == 53]
        assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
        if room == "puller":
            (to_core,) = [rule for rule in rules if rule["ports"][0]["port"] == 8000]
            assert [name for name, labels in pods.items() if selects(to_core["to"][0], labels)] == ["core"]


def test_policies_follow_their_values_and_can_be_turned_off() -> None:
    assert of_kind(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy") == []
    narrowed = render(
        "--set", "networkPolicy.redis.port=6380",
        "--set-json", 'networkPolicy.redis.to=[{"ipBlock": {"cidr": "10.1.2.3/32"}}]',
        "--set-json", 'networkPolicy.http.from=[{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]',
    )  # fmt: skip
    policies = by_name(narrowed, "NetworkPolicy")
    (redis,) = [r for r in policies[f"{RELEASE}-monitor"]["spec"]["egress"] if r["ports"][0]["port"] == 6380]
    assert redis["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]
    http = next(r for r in policies[f"{RELEASE}-core"]["spec"]["ingress"] if r["ports"][0]["port"] == "http")
    assert {"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}} in http["from"]
    assert {"podSelector": {}} not in http["from"]


INGRESS = (
    "--set", "ingress.enabled=true,ingress.className=nginx",
    "--set", "ingress.core.host=api.example.com,ingress.wsDelivery.host=ws.example.com",
    "--set-json", 'ingress.tls=[{"secretName": "notifier-tls", "hosts": ["api.example.com", "ws.example.com"]}]',
)  # fmt: skip


def test_the_ingress_routes_core_and_ws_delivery_over_tls() -> None:
    objects = render(*INGRESS)
    (ingress,) = of_kind(objects, "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "notifier-tls", "hosts": ["api.example.com", "ws.example.com"]}]
    services = by_name(objects, "Service")
    routes = {rule["host"]: rule["http"]["paths"][0] for rule in spec["rules"]}
    assert set(routes) == {"api.example.com", "ws.example.com"}
    for host, room in (("api.example.com", "core"), ("ws.example.com", "ws-delivery")):
        backend = routes[host]["backend"]["service"]
        assert backend == {"name": f"{RELEASE}-{room}", "port": {"name": "http"}}
        assert "http" in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        assert routes[host]["pathType"] == "Prefix"


def test_no_ingress_by_default_and_none_without_hosts() -> None:
    assert of_kind(render(), "Ingress") == []
    assert "ingress.core.host is required" in refusal("--set", "ingress.enabled=true")
