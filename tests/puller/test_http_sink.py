"""The puller's HTTP sink: digests created in core with their digest id as idempotency key."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.core.conftest import running_core, settings_for
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import SECRET, bearer
from workers.common.contract import paths
from workers.common.contract.errors import ServiceUnavailable, TemporaryError
from workers.common.contract.wire import DIGEST_CONTENT_TYPE
from workers.common.runtime.aio import Backoff
from workers.common.runtime.retry import retrying
from workers.puller.http_sink import HttpSink
from workers.puller.settings import PullerSettings
from workers.puller.sink import Digest


def digest(user: str, digest_id: str) -> Digest:
    content = json.dumps({"digest_id": digest_id, "user": user}).encode()
    return Digest(digest_id=digest_id, stream="s", user=user, content=content, entries=1, reviews=1)


def mocked(handler: Callable[[httpx.Request], httpx.Response], **options: object) -> HttpSink:
    return HttpSink(
        base_url="http://core.test",
        secret=SECRET,
        service_id="puller-7",
        role="notifier_produce",
        roles_claim="realm_access.roles",
        transport=httpx.MockTransport(handler),
        **options,  # type: ignore[arg-type]
    )


async def test_each_digest_is_created_with_its_id_as_idempotency_key() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"id": "n1"})

    sink = mocked(handler)
    await sink.deliver([digest("alice", "d-1"), digest("bob", "d-2")])
    await sink.close()
    assert sink.counts["created"] == 2
    by_user = {json.loads(r.content)["user_ids"][0]: r for r in requests}
    request = by_user["alice"]
    assert request.method == "POST"
    assert request.url.path == paths.UNDELIVERED
    sent = json.loads(request.content)
    assert sent["producer_notification_id"] == "d-1"
    assert sent["user_ids"] == ["alice"]
    assert sent["content_type"] == DIGEST_CONTENT_TYPE
    assert base64.b64decode(sent["content"]) == digest("alice", "d-1").content
    token = request.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "puller-7"
    assert claims["realm_access"]["roles"] == ["notifier_produce"]


async def test_409_counts_as_delivered() -> None:
    sink = mocked(lambda _: httpx.Response(409, json={"detail": "repeated"}))
    await sink.deliver([digest("alice", "d-1")])
    assert sink.counts["duplicate"] == 1


async def test_5xx_is_retried_by_the_kernel_backoff_until_it_succeeds() -> None:
    answers = iter([503, 500, 200])
    sink = mocked(lambda _: httpx.Response(next(answers), json={}))
    await retrying(lambda: sink.deliver([digest("alice", "d-1")]), what="deliver", backoff=Backoff(first_s=0.001))
    assert sink.counts["created"] == 1
    assert sink.counts["failed"] == 2


async def test_5xx_and_connection_errors_raise_service_unavailable_of_core() -> None:
    calls = 0

    def unavailable(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={})

    sink = mocked(unavailable)
    with pytest.raises(ServiceUnavailable) as raised:
        await sink.deliver([digest("alice", "d-1")])
    assert raised.value.dependency == "core"
    assert calls == 1, "one attempt per call: the puller's loop retries, with the kernel's backoff"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServiceUnavailable):
        await mocked(refused).deliver([digest("alice", "d-1")])

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ServiceUnavailable):
        await mocked(slow).deliver([digest("alice", "d-1")])


async def test_other_4xx_is_permanent_for_that_digest_only() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        user = json.loads(request.content)["user_ids"][0]
        calls.append(user)
        return httpx.Response(422 if user == "bad" else 200, json={"detail": "no"})

    sink = mocked(handler)
    await sink.deliver([digest("bad", "d-1"), digest("alice", "d-2")])
    assert sink.counts["rejected"] == 1
    assert sink.counts["created"] == 1
    assert calls.count("bad") == 1, "a permanent failure is not retried"


async def test_from_settings_uses_the_core_url_secret_and_service_id() -> None:
    settings = PullerSettings.model_validate(
        {"core_url": "http://127.0.0.1:1/", "jwt_secret": SECRET, "service_id": "puller-x"}
    )
    sink = HttpSink.from_settings(settings)
    assert sink.service_id == "puller-x"
    assert str(sink._client.base_url) == "http://127.0.0.1:1"
    await sink.close()


@pytest.fixture
async def core_url(
    stream: str, amqp_namespace: str, redis: object, amqp: AbstractRobustConnection
) -> AsyncIterator[str]:
    async with running_core(settings_for(stream, amqp_namespace)) as room:
        yield f"http://127.0.0.1:{room.http_port}"


async def test_a_batch_retried_after_core_was_unreachable_is_stored_once(core_url: str) -> None:
    target = urlsplit(core_url)
    batch = [digest("alice", "w1-alice"), digest("bob", "w1-bob")]
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        sink = HttpSink(
            base_url=f"http://127.0.0.1:{proxy.port}",
            secret=SECRET,
            service_id="puller",
            role="notifier_produce",
            roles_claim="realm_access.roles",
        )
        await proxy.cut()
        with pytest.raises(TemporaryError):
            await sink.deliver(batch)
        proxy.restore()
        await sink.deliver(batch)
        await sink.deliver(batch)  # the puller retries the same batch: same digest ids
        await sink.close()
    assert sink.counts["created"] == 2
    assert sink.counts["duplicate"] == 2
    async with httpx.AsyncClient(base_url=core_url) as http:
        for user in ("alice", "bob"):
            taken = (await http.get(paths.UNDELIVERED, headers=bearer(user))).json()
            assert len(taken) == 1
            assert taken[0]["content_type"] == DIGEST_CONTENT_TYPE
            assert taken[0]["created_by"] == "puller"
            assert json.loads(base64.b64decode(taken[0]["content"]))["digest_id"] == f"w1-{user}"


async def test_the_service_token_carries_the_role_and_claim_core_is_configured_with() -> None:
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers["authorization"].removeprefix("Bearer "))
        return httpx.Response(200, json={"id": "n1"})

    settings = PullerSettings(
        core_url="http://core.test",
        jwt_secret=SECRET,
        role_produce="producer",
        jwt_roles_claim="app.permissions",
        service_id="digests",
    )
    sink = HttpSink.from_settings(settings)
    sink._client._transport = httpx.MockTransport(handler)  # the configured sink, answered locally
    await sink.deliver([digest("alice", "d-1")])
    await sink.close()
    claims = jwt.decode(tokens[0], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "digests"
    assert claims["app"] == {"permissions": ["producer"]}
