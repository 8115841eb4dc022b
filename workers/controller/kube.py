"""The one Kubernetes API call the controller makes itself (kopf makes the rest): listing NotificationStreams.

It authenticates the way kopf's `login_via_client` does (in-cluster service account, else kubeconfig), so
the sweep sees the cluster with the same identity and RBAC as the handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import kubernetes
import urllib3

from workers.common.contract.errors import ServiceUnavailable
from workers.common.contract.streamspec import API_GROUP, API_VERSION
from workers.common.runtime.faults import KUBERNETES
from workers.controller.reconcile import Owner

PLURAL = "notificationstreams"


def load_client_config() -> None:
    """In-cluster service account, else kubeconfig (`$KUBECONFIG`)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


def _list_owners(namespaces: Sequence[str]) -> set[Owner]:
    load_client_config()
    items: list[dict[str, Any]] = []
    with kubernetes.client.ApiClient() as client:
        api = kubernetes.client.CustomObjectsApi(client)
        if not namespaces:
            items += _items(api.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL))
        for namespace in namespaces:
            items += _items(api.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL))
    return {Owner(item["metadata"].get("namespace") or "", item["metadata"]["name"]) for item in items}


def _items(listing: object) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = listing["items"] if isinstance(listing, dict) else []
    return items


async def list_owners(namespaces: Sequence[str]) -> set[Owner]:
    """The NotificationStream objects in `namespaces` (all namespaces when empty)."""
    try:
        return await asyncio.to_thread(_list_owners, list(namespaces))
    except (kubernetes.client.ApiException, kubernetes.config.ConfigException, urllib3.exceptions.HTTPError) as exc:
        raise ServiceUnavailable(f"cannot list NotificationStreams: {exc}", dependency=KUBERNETES) from exc
