"""`python -m workers.controller.uninstall`: the chart's pre-delete hook, run before `helm uninstall` removes anything.

Helm deletes a release's objects in one pass: the NotificationStream it created, the controller's Deployment
and the controller's RBAC together. The controller then removes the stream's Redis keys but can no longer
patch the object's finalizer away (Forbidden), so the object, and `kubectl delete namespace` after it, hang.
This hook deletes the release's NotificationStreams first and returns only once they are gone, i.e. once the
controller, still running with its RBAC, has released each mapping and removed its finalizer. Only then does
Helm go on to delete the controller.

The streams of a release are those in its namespace labelled `app.kubernetes.io/instance=<release>` and
`app.kubernetes.io/managed-by=Helm` (the labels the chart puts on them); the labels are checked here as well
as in the list's selector. Exit status: 0 when every such stream is gone, 1 when one is still there at the
deadline (the controller is not running or cannot reach Redis): Helm then stops the uninstall and leaves the
release in place, so it can be fixed and uninstalled again (docs/kubernetes.md, "Uninstalling").
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import kubernetes

from workers.common.contract.streamspec import API_GROUP, API_VERSION
from workers.controller.kube import PLURAL, load_client_config

log = logging.getLogger("notifier.uninstall")

INSTANCE = "app.kubernetes.io/instance"
MANAGED_BY = "app.kubernetes.io/managed-by"


class StreamsRemain(Exception):
    """Some of the release's NotificationStreams were still there at the deadline."""


def release_streams(api: kubernetes.client.CustomObjectsApi, *, namespace: str, release: str) -> list[str]:
    """Names of the NotificationStreams the release created in `namespace`."""
    selector = f"{INSTANCE}={release},{MANAGED_BY}=Helm"
    listing = api.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, label_selector=selector)
    items: list[dict[str, Any]] = (listing.get("items") or []) if isinstance(listing, dict) else []
    names = []
    for item in items:
        labels = item.get("metadata", {}).get("labels") or {}
        if labels.get(INSTANCE) == release and labels.get(MANAGED_BY) == "Helm":
            names.append(item["metadata"]["name"])
    return sorted(names)


def _exists(api: kubernetes.client.CustomObjectsApi, namespace: str, name: str) -> bool:
    try:
        api.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def delete_and_wait(
    api: kubernetes.client.CustomObjectsApi,
    *,
    namespace: str,
    release: str,
    timeout_s: float,
    poll_s: float = 1.0,
) -> list[str]:
    """Delete the release's NotificationStreams and wait until every one is gone; returns their names."""
    names = release_streams(api, namespace=namespace, release=release)
    for name in names:
        try:
            api.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
            log.info("deleted NotificationStream %s/%s; waiting for the controller to release it", namespace, name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
    deadline = time.monotonic() + timeout_s
    remaining = names
    while remaining:
        remaining = [name for name in remaining if _exists(api, namespace, name)]
        if not remaining:
            break
        if time.monotonic() >= deadline:
            raise StreamsRemain(
                f"NotificationStreams {', '.join(remaining)} in namespace {namespace} are still there after "
                f"{timeout_s:g}s: the controller did not release them (is it running, does it reach Redis?). "
                "Fix the controller and run `helm uninstall` again; to give up on the Redis cleanup instead, "
                f'`kubectl -n {namespace} patch nstream NAME --type=merge -p \'{{"metadata":{{"finalizers":null}}}}\'`'
            )
        time.sleep(poll_s)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.controller.uninstall", description=__doc__)
    parser.add_argument("--namespace", required=True, help="The release's namespace.")
    parser.add_argument("--release", required=True, help="The Helm release name (app.kubernetes.io/instance).")
    parser.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait for the controller.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    load_client_config()
    with kubernetes.client.ApiClient() as client:
        api = kubernetes.client.CustomObjectsApi(client)
        try:
            names = delete_and_wait(api, namespace=args.namespace, release=args.release, timeout_s=args.timeout)
        except StreamsRemain as exc:
            log.error("%s", exc)
            return 1
    log.info("release %s: %d NotificationStreams deleted and released: %s", args.release, len(names), names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
