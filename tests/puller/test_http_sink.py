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


def items(request: httpx.Request) -> list[dict[str, object]]:
    """The creates of a batch request (or the one create of a single request)."""
    sent = json.loads(request.content)
    return list(sent["notifications"]) if request.url.path == paths.UNDELIVERED_BATCH else [sent]


def user_of(item: dict[str, object]) -> str:
    return str(item["user_ids"][0])  # type: ignore[index]


def answering(status_of: Callable[[str], int]) -> Callable[[httpx.Request], httpx.Response]:
    """A core that answers each create of a batch with `status_of(user)`."""

    def handler(request: httpx.Request) -> httpx.Response:
        results = []
        for item in items(request):
            status = status_of(user_of(item))
            results.append({"status": status, "id": "n1"} if status == 200 else {"status": status, "detail": "no"})
        return httpx.Response(200, json={"results": results})

    return handler


async def test_each_digest_is_created_with_its_id_as_idempotency_key() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answering(lambda _: 200)(request)

    sink = mocked(handler)
    await sink.deliver([digest("alice", "d-1"), digest("bob", "d-2")])
    await sink.close()
    assert sink.counts["created"] == 2
    assert len(requests) == 1, "the digests of a pass go in one batch"
    (request,) = requests
    assert request.method == "POST"
    assert request.url.path == paths.UNDELIVERED_BATCH
    sent = {user_of(item): item for item in items(request)}
    assert sent["alice"]["producer_notification_id"] == "{alice}d-1", "tagged: core stores it in alice's shard"
    assert sent["alice"]["user_ids"] == ["alice"]
    assert sent["alice"]["content_type"] == DIGEST_CONTENT_TYPE
    assert base64.b64decode(str(sent["alice"]["content"])) == digest("alice", "d-1").content
    token = request.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "puller-7"
    assert claims["realm_access"]["roles"] == ["notifier_produce"]


async def test_batches_hold_at_most_200_digests_and_about_a_mebibyte() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(items(request)))
        return answering(lambda _: 200)(request)

    sink = mocked(handler)
    await sink.deliver([digest(f"u{n}", f"d-{n}") for n in range(450)])
    assert sorted(sizes) == [50, 200, 200]
    sizes.clear()
    large = [Digest(f"big-{n}", "s", f"u{n}", b"x" * 300_000, 1, 1) for n in range(5)]
    await sink.deliver(large)
    assert sorted(sizes) == [1, 2, 2], "400 KB of base64 each: two fit under a mebibyte"
    assert sink.counts["created"] == 455


async def test_409_counts_as_delivered() -> None:
    sink = mocked(answering(lambda _: 409))
    await sink.deliver([digest("alice", "d-1")])
    assert sink.counts["duplicate"] == 1


async def test_5xx_is_retried_by_the_kernel_backoff_until_it_succeeds() -> None:
    answers = iter([503, 500, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return answering(lambda _: 200)(request) if status == 200 else httpx.Response(status, json={})

    sink = mocked(handler)
    await retrying(lambda: sink.deliver([digest("alice", "d-1")]), what="deliver", backoff=Backoff(first_s=0.001))
    assert sink.counts["created"] == 1
    assert sink.counts["failed"] == 2


async def test_a_create_core_could_not_store_makes_the_batch_retried_and_the_rest_counts() -> None:
    sink = mocked(answering(lambda user: 503 if user == "bob" else 200))
    with pytest.raises(ServiceUnavailable) as raised:
        await sink.deliver([digest("alice", "d-1"), digest("bob", "d-2")])
    assert raised.value.dependency == "core"
    assert (sink.counts["created"], sink.counts["failed"]) == (1, 1)


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
        calls.extend(user_of(item) for item in items(request))
        return answering(lambda user: 422 if user == "bad" else 200)(request)

    sink = mocked(handler)
    await sink.deliver([digest("bad", "d-1"), digest("alice", "d-2")])
    assert sink.counts["rejected"] == 1
    assert sink.counts["created"] == 1
    assert calls.count("bad") == 1, "a permanent failure is not retried"


async def test_a_batch_refused_whole_is_sent_again_one_by_one() -> None:
    """A batch that does not validate as a whole (one digest core cannot take) costs only that digest."""
    paths_seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths_seen.append(request.url.path)
        if request.url.path == paths.UNDELIVERED_BATCH:
            return httpx.Response(422, json={"detail": [{"loc": ["body", "notifications", 0], "msg": "no"}]})
        user = user_of(items(request)[0])
        return httpx.Response(422, json={"detail": "no"}) if user == "bad" else httpx.Response(200, json={"id": "n"})

    sink = mocked(handler)
    await sink.deliver([digest("bad", "d-1"), digest("alice", "d-2"), digest("bob", "d-3")])
    assert paths_seen.count(paths.UNDELIVERED_BATCH) == 1
    assert paths_seen.count(paths.UNDELIVERED) == 3
    assert (sink.counts["rejected"], sink.counts["created"]) == (1, 2)


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
        return answering(lambda _: 200)(request)

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
