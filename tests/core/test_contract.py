"""core answers exactly what its contract says: strict `seen`, 422 for a non-UTF-8 body, one error shape,
lenient tokens refused, and every status an endpoint answers listed in the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from tests.common.hostile_tokens import lenient_tokens
from tests.core.conftest import producer
from tests.core.helpers import create, take
from tests.support.tokens import SECRET, bearer
from workers.common.contract import paths
from workers.core.model import CreateBody

pytestmark = pytest.mark.usefixtures("core")

VALIDATION_ITEM = {"loc", "msg", "type"}


def assert_validation_error(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    assert detail
    assert all(set(item) >= VALIDATION_ITEM for item in detail), detail


async def delivered_id(http: httpx.AsyncClient) -> str:
    await create(http, ["alice"], "contract-1")
    [item] = await take(http, "alice")
    return str(item["id"])


@pytest.mark.parametrize("seen", [0, 1, "yes", "true", None, [], {}])
async def test_seen_is_a_strict_bool(http: httpx.AsyncClient, seen: object) -> None:
    nid = await delivered_id(http)
    response = await http.put(paths.DELIVERED_SEEN.replace("{id}", nid), json={"seen": seen}, headers=bearer("alice"))
    assert_validation_error(response)
    ok = await http.put(paths.DELIVERED_SEEN.replace("{id}", nid), json={"seen": True}, headers=bearer("alice"))
    assert ok.status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", paths.UNDELIVERED, producer()),
        ("PUT", paths.DELIVERED_SEEN.replace("{id}", "x"), bearer("alice")),
        ("PUT", paths.UNDELIVERED_INVALIDATE_AT.replace("{id}", "x"), producer()),
    ],
)
async def test_a_body_that_is_not_utf8_is_422(
    http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    body = b'{"seen": true, "x": "\xff\xfe"}'
    response = await http.request(method, path, content=body, headers={**headers, "Content-Type": "application/json"})
    assert_validation_error(response)


async def test_refusals_by_an_endpoint_rule_have_the_shape_of_every_other_422(http: httpx.AsyncClient) -> None:
    past = {
        "user_ids": ["a"],
        "producer_notification_id": "p",
        "content_type": "t",
        "content": "aGk=",
        "invalidate_at": "2000-01-01T00:00:00Z",
    }
    assert_validation_error(await http.post(paths.UNDELIVERED, json=past, headers=producer()))
    bad_base64 = {**past, "invalidate_at": None, "content": "***"}
    assert_validation_error(await http.post(paths.UNDELIVERED, json=bad_base64, headers=producer()))
    nid = await create(http, ["a"], "p-2")
    moved = await http.put(
        paths.UNDELIVERED_INVALIDATE_AT.replace("{id}", nid),
        json={"invalidate_at": "2000-01-01T00:00:00Z"},
        headers=producer(),
    )
    assert_validation_error(moved)


@pytest.mark.parametrize("name", sorted(lenient_tokens(SECRET)))
async def test_each_lenient_token_is_401(http: httpx.AsyncClient, name: str) -> None:
    headers = {"Authorization": f"Bearer {lenient_tokens(SECRET)[name]}"}
    polled = await http.get(paths.UNDELIVERED, headers=headers)
    assert polled.status_code == 401
    assert isinstance(polled.json()["detail"], str)
    body = {"user_ids": ["a"], "producer_notification_id": f"lenient-{name}", "content_type": "t", "content": "aGk="}
    created = await http.post(paths.UNDELIVERED, json=body, headers=headers)
    assert created.status_code == 401


async def test_the_openapi_document_lists_every_status_of_each_endpoint(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()

    def statuses(method: str, path: str) -> set[str]:
        return set(document["paths"][path][method]["responses"])

    common = {"401", "413", "422", "503"}
    assert common | {"200", "403", "409"} <= statuses("post", paths.UNDELIVERED)
    assert common | {"200"} <= statuses("get", paths.UNDELIVERED)
    assert common | {"204", "403", "404"} <= statuses("put", paths.UNDELIVERED_INVALIDATE_AT)
    assert common | {"200", "404"} <= statuses("get", paths.DELIVERED_ONE)
    assert {"204", "401", "404", "503"} <= statuses("delete", paths.DELIVERED_ONE)
    assert common | {"204", "404"} <= statuses("put", paths.DELIVERED_SEEN)
    assert common | {"200", "410"} <= statuses("get", paths.FEED)


def test_core_validates_the_create_body_producers_and_the_puller_send() -> None:
    assert set(CreateBody.model_fields) == set(paths.CreateRequest.__annotations__)
