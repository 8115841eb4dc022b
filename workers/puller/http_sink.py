"""The digest sink towards core: one `POST /api/v1/notifications/undelivered` per digest.

The digest id is the `producer_notification_id`, so a repeated digest (a retried batch, a crashed
puller's batch taken over) is stored once: core answers 409, which counts as delivered. A 5xx answer, a
connection error or a timeout makes the call raise ServiceUnavailable (dependency `core`), and the puller
retries the batch with the kernel's backoff while it stays in flight. Any other 4xx is permanent for that
digest: logged, counted, not retried.
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
from workers.common.contract.errors import PermanentError, ServiceUnavailable, TemporaryError
from workers.common.contract.wire import DIGEST_CONTENT_TYPE
from workers.common.runtime.auth import mint_token
from workers.common.runtime.faults import CORE, temporary
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest

log = logging.getLogger(__name__)

TOKEN_TTL_S = 3600.0

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
        results = await asyncio.gather(*(self._deliver_one(d) for d in digests), return_exceptions=True)
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

    async def _deliver_one(self, digest: Digest) -> None:
        try:
            outcome = await self._create(digest)
        except PermanentError as exc:
            outcome = "rejected"
            log.error("core rejected digest %s for user %s: %s", digest.digest_id, digest.user, exc)
        except Exception as exc:
            error = temporary(exc, dependency=CORE)
            if error is None:
                raise
            self._count("failed")
            raise error from exc
        self._count(outcome)
        if outcome != "rejected":
            log.info("digest %s for user %s handed to core (%s)", digest.digest_id, digest.user, outcome)

    async def _create(self, digest: Digest) -> Outcome:
        body = paths.CreateRequest(
            invalidate_at=None,
            user_ids=[digest.user],
            producer_notification_id=digest.digest_id,
            content_type=DIGEST_CONTENT_TYPE,
            content=base64.b64encode(digest.content).decode("ascii"),
        )
        async with self._slots:
            response = await self._client.post(
                paths.UNDELIVERED, json=body, headers={"Authorization": f"Bearer {self._bearer()}"}
            )
        if response.status_code == 200:
            return "created"
        if response.status_code == 409:
            return "duplicate"
        if response.status_code < 500:
            raise PermanentError(f"HTTP {response.status_code}: {response.text[:200]}")
        raise ServiceUnavailable(f"digest {digest.digest_id}: core answered {response.status_code}", dependency=CORE)

    def _count(self, outcome: Outcome) -> None:
        self.counts[outcome] += 1
        CORE_REQUESTS.labels(outcome).inc()
