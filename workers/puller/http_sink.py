"""The digest sink towards core: the digests of a pass go in batches, `POST /api/v1/notifications/undelivered/batch`
of up to `BATCH_DIGESTS` digests (and about `BATCH_BYTES`), each answered on its own.

The digest id, tagged with its user (`{u1}<digest id>`, so core registers it in the user's own shard and
stores the create with one script), is the `producer_notification_id`, so a repeated digest (a retried batch,
a crashed puller's batch taken over) is stored once: core answers 409, which counts as delivered. A 5xx answer, a
connection error or a timeout makes the call raise ServiceUnavailable (dependency `core`), and the puller
retries the batch with the kernel's backoff while it stays in flight. Any other 4xx is permanent for that
digest: logged, counted, not retried. A batch refused whole with a 4xx (it did not validate) is sent again one
digest at a time (`POST /api/v1/notifications/undelivered`), so only the digests core refuses are lost to it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Sequence
from typing import Literal

import httpx
from prometheus_client import Counter

from workers.common.contract import paths
from workers.common.contract.errors import ServiceUnavailable, TemporaryError
from workers.common.contract.keys import tagged
from workers.common.contract.wire import DIGEST_CONTENT_TYPE
from workers.common.runtime.auth import mint_token
from workers.common.runtime.faults import CORE, temporary
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest

log = logging.getLogger(__name__)

TOKEN_TTL_S = 3600.0
BATCH_DIGESTS = 200
"""Digests in one batch request: a pass of a few hundred due users is one or two requests."""
BATCH_BYTES = 1024 * 1024
"""About the most base64 content in one batch request, well under core's batch body limit (4 MiB)."""

Outcome = Literal["created", "duplicate", "rejected", "failed"]
CORE_REQUESTS = Counter(
    "notifier_puller_core_digests_total",
    "Digests handed to core, by outcome (created, duplicate, rejected, failed).",
    ["outcome"],
)


class HttpSink:
    def __init__(
        self,
        *,
        base_url: str,
        secret: str,
        service_id: str,
        role: str,
        roles_claim: str,
        timeout_s: float = 10.0,
        concurrency: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.secret = secret
        self.service_id = service_id
        self.role = role
        self.roles_claim = roles_claim
        self.counts: dict[Outcome, int] = {"created": 0, "duplicate": 0, "rejected": 0, "failed": 0}
        self._slots = asyncio.Semaphore(concurrency)
        self._token = ""
        self._token_renew_at = 0.0
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: PullerSettings) -> HttpSink:
        return cls(
            base_url=settings.core_url,
            secret=settings.jwt_secret,
            service_id=settings.service_id,
            role=settings.role_produce,
            roles_claim=settings.jwt_roles_claim,
            timeout_s=settings.sink_timeout_s,
        )

    async def deliver(self, digests: Sequence[Digest]) -> None:
        """Create every digest in core, each once; ServiceUnavailable when any could not be handed over now."""
        results = await asyncio.gather(*(self._deliver_batch(b) for b in _batches(digests)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, TemporaryError):
                raise failure
        if failures:
            message = f"{len(failures)} of {len(digests)} digests not handed to core: {failures[0]}"
            raise ServiceUnavailable(message, dependency=CORE)

    async def close(self) -> None:
        await self._client.aclose()

    def _bearer(self) -> str:
        now = time.time()
        if now >= self._token_renew_at:
            self._token = mint_token(
                secret=self.secret,
                sub=self.service_id,
                roles=[self.role],
                ttl_s=TOKEN_TTL_S,
                roles_claim=self.roles_claim,
            )
            self._token_renew_at = now + TOKEN_TTL_S / 2
        return self._token

    async def _deliver_batch(self, digests: Sequence[Digest]) -> None:
        """One batch request; each digest's outcome as core answered it. Raises ServiceUnavailable when some
        digests could not be handed over now (the others are counted)."""
        try:
            async with self._slots:
                response = await self._post(
                    paths.UNDELIVERED_BATCH, {"notifications": [_request(digest) for digest in digests]}
                )
        except Exception as exc:
            error = temporary(exc, dependency=CORE)
            if error is None:
                raise
            self._count("failed", len(digests))
            raise error from exc
        if 400 <= response.status_code < 500:
            log.warning(
                "core refused a batch of %d digests whole (HTTP %d): sending them one by one",
                len(digests),
                response.status_code,
            )
            await self._deliver_each(digests)
            return
        if response.status_code != 200:
            self._count("failed", len(digests))
            raise ServiceUnavailable(f"a batch of digests: core answered {response.status_code}", dependency=CORE)
        unavailable = 0
        for digest, result in zip(digests, response.json()["results"], strict=True):
            status = int(result["status"])
            if status >= 500:
                unavailable += 1
                self._count("failed")
            else:
                self._settled(digest, status, result.get("detail"))
        if unavailable:
            raise ServiceUnavailable(f"core could not store {unavailable} of {len(digests)} digests", dependency=CORE)

    async def _deliver_each(self, digests: Sequence[Digest]) -> None:
        results = await asyncio.gather(*(self._deliver_one(d) for d in digests), return_exceptions=True)
        for failure in results:
            if isinstance(failure, BaseException):
                raise failure

    async def _deliver_one(self, digest: Digest) -> None:
        try:
            async with self._slots:
                response = await self._post(paths.UNDELIVERED, _request(digest))
        except Exception as exc:
            error = temporary(exc, dependency=CORE)
            if error is None:
                raise
            self._count("failed")
            raise error from exc
        if response.status_code >= 500:
            self._count("failed")
            raise ServiceUnavailable(
                f"digest {digest.digest_id}: core answered {response.status_code}", dependency=CORE
            )
        self._settled(digest, response.status_code, response.text[:200])

    def _settled(self, digest: Digest, status: int, detail: object) -> None:
        """Count a digest core answered with a final `status`: created, a duplicate (delivered before), or
        refused for good."""
        outcome: Outcome = "created" if status == 200 else "duplicate" if status == 409 else "rejected"
        self._count(outcome)
        if outcome == "rejected":
            log.error("core rejected digest %s for user %s: HTTP %d %s", digest.digest_id, digest.user, status, detail)
        else:
            log.info("digest %s for user %s handed to core (%s)", digest.digest_id, digest.user, outcome)

    async def _post(self, path: str, body: object) -> httpx.Response:
        return await self._client.post(path, json=body, headers={"Authorization": f"Bearer {self._bearer()}"})

    def _count(self, outcome: Outcome, digests: int = 1) -> None:
        self.counts[outcome] += digests
        CORE_REQUESTS.labels(outcome).inc(digests)


def _request(digest: Digest) -> paths.CreateRequest:
    return paths.CreateRequest(
        invalidate_at=None,
        user_ids=[digest.user],
        producer_notification_id=tagged(digest.user, digest.digest_id, limit=paths.MAX_PRODUCER_ID),
        content_type=DIGEST_CONTENT_TYPE,
        content=base64.b64encode(digest.content).decode("ascii"),
    )


def _batches(digests: Sequence[Digest]) -> list[Sequence[Digest]]:
    """The digests in batches of at most BATCH_DIGESTS and about BATCH_BYTES of base64 content each."""
    batches: list[Sequence[Digest]] = []
    start, size = 0, 0
    for at, digest in enumerate(digests):
        grown = size + len(digest.content) * 4 // 3
        if at > start and (at - start >= BATCH_DIGESTS or grown > BATCH_BYTES):
            batches.append(digests[start:at])
            start, grown = at, len(digest.content) * 4 // 3
        size = grown
    if start < len(digests):
        batches.append(digests[start:])
    return batches
