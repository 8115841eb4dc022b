"""kopf handlers of the controller: thin and typed; the work is in reconcile.py, the status in status.py.

- create / update / resume: validate the spec and swap the mapping in (`Reconciler.apply`), then
  Ready=True/Synced. An invalid spec or a stream owned by another object is Ready=False with an event and
  a kopf.PermanentError (no retries until the spec changes); Redis unreachable is Ready=False
  RedisUnavailable and a kopf.TemporaryError retried with exponential backoff.
- delete: kopf's finalizer holds the object until the mapping is removed from Redis.
- timer: status.staleUsers / status.invalidUsers follow the monitor's findings hash, for the object that owns
  the stream only; an object refused with StreamConflict shows no figures of the stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

from workers.common.contract.errors import InvalidInput, InvalidMapping, ServiceUnavailable
from workers.common.contract.streamspec import API_GROUP, API_VERSION
from workers.controller import status as st
from workers.controller.kube import PLURAL
from workers.controller.metrics import RECONCILES, RELEASES, STATUS_REFRESHES
from workers.controller.reconcile import Owner, Reconciler, StreamConflict
from workers.controller.settings import ControllerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Context:
    """What every handler needs, passed through kopf's memo."""

    reconciler: Reconciler
    settings: ControllerSettings

    def backoff_s(self, retry: int) -> float:
        delay: float = self.settings.retry_delay_s * 2 ** min(retry, 30)
        return min(delay, self.settings.max_retry_delay_s)


def _context(memo: kopf.Memo) -> Context:
    context: Context = memo["controller"]
    return context


def _owner(namespace: str | None, name: str | None) -> Owner:
    return Owner(namespace or "", name or "")


async def reconcile(
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    retry: int,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    context = _context(memo)
    owner = _owner(meta.namespace, meta.name)
    generation = meta.get("generation")
    try:
        result = await context.reconciler.apply(owner, spec)
    except InvalidInput as exc:
        reason = st.STREAM_CONFLICT if isinstance(exc, StreamConflict) else st.INVALID_SPEC
        patch.status.update(
            st.failed_status(status, generation=generation, reason=reason, message=str(exc), now=st.now_rfc3339())
        )
        if reason == st.STREAM_CONFLICT:
            patch.status.update(st.not_owned_status(status))
        kopf.warn(body, reason=reason, message=str(exc))
        RECONCILES.labels(outcome="conflict" if reason == st.STREAM_CONFLICT else "invalid").inc()
        log.warning("NotificationStream %s: %s: %s", owner, reason, exc)
        raise kopf.PermanentError(f"{reason}: {exc}") from None
    except ServiceUnavailable as exc:
        patch.status.update(
            st.failed_status(
                status, generation=generation, reason=st.REDIS_UNAVAILABLE, message=str(exc), now=st.now_rfc3339()
            )
        )
        if retry == 0:
            kopf.warn(body, reason=st.REDIS_UNAVAILABLE, message=str(exc))
        RECONCILES.labels(outcome="unavailable").inc()
        raise kopf.TemporaryError(str(exc), delay=context.backoff_s(retry)) from None
    synced = st.synced_status(
        status,
        generation=generation,
        brands=result.brands,
        users=result.users,
        changed=result.changed,
        now=st.now_rfc3339(),
    )
    patch.status.update(synced)
    if result.changed or not st.is_ready(status):
        kopf.info(body, reason=st.SYNCED, message=synced["conditions"][-1]["message"])
    RECONCILES.labels(outcome="synced").inc()
    log.info(
        "NotificationStream %s: stream %s %s (%d brands, %d users, version %s)",
        owner,
        result.stream,
        "loaded" if result.changed else "unchanged",
        result.brands,
        result.users,
        result.version,
    )


async def release(*, meta: kopf.Meta, retry: int, memo: kopf.Memo, **_: Any) -> None:
    context = _context(memo)
    owner = _owner(meta.namespace, meta.name)
    try:
        removed = await context.reconciler.release(owner)
    except ServiceUnavailable as exc:
        RELEASES.labels(outcome="unavailable").inc()
        raise kopf.TemporaryError(str(exc), delay=context.backoff_s(retry)) from None
    RELEASES.labels(outcome="removed" if removed else "not_owned").inc()
    log.info("NotificationStream %s deleted: removed %d mapping keys", owner, removed)


async def refresh_findings(
    *, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    context = _context(memo)
    owner = _owner(meta.namespace, meta.name)
    try:
        findings = await context.reconciler.findings(owner)
    except InvalidMapping:
        return
    except ServiceUnavailable as exc:
        STATUS_REFRESHES.labels(outcome="unavailable").inc()
        log.warning("NotificationStream %s: findings not refreshed: %s", owner, exc)
        return
    if findings is None:
        cleared = st.not_owned_status(status)
        STATUS_REFRESHES.labels(outcome="not_owned").inc()
        if cleared:
            patch.status.update(cleared)
        return
    changes = st.findings_patch(status, findings)
    STATUS_REFRESHES.labels(outcome="patched" if changes else "same").inc()
    if changes:
        patch.status.update(changes)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account, else kubeconfig (`$KUBECONFIG`), through the kubernetes client."""
    info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
    return info


def build_registry(settings: ControllerSettings) -> kopf.OperatorRegistry:
    """The controller's handlers on a registry of their own (no import-time side effects)."""
    registry = kopf.OperatorRegistry()
    resource = (API_GROUP, API_VERSION, PLURAL)
    kopf.on.login(registry=registry)(login)
    kopf.on.resume(*resource, registry=registry)(reconcile)
    kopf.on.create(*resource, registry=registry)(reconcile)
    kopf.on.update(*resource, registry=registry)(reconcile)
    kopf.on.delete(*resource, registry=registry)(release)
    kopf.timer(*resource, registry=registry, interval=settings.status_refresh_s)(refresh_findings)
    return registry
