"""schemathesis against core's OpenAPI document, every role: no 5xx, no status the document does not list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.common.schema_fuzz import fuzz
from tests.conftest import free_port
from tests.core.conftest import PRODUCE
from tests.support.processes import RoomProcess, core_process
from tests.support.tokens import SECRET, bearer
from workers.common.contract import paths

CASES = 15
"""Generated cases per operation and role (valid and invalid mixed): about 420 requests in all."""


@pytest.fixture
async def core(env: dict[str, str], redis: object, amqp: AbstractRobustConnection) -> AsyncIterator[RoomProcess]:
    async with core_process(
        {**env, "NOTIFIER_JWT_SECRET": SECRET}, http_port=free_port(), ops_port=free_port()
    ) as process:
        yield process


def test_generated_requests_as_every_role_get_no_5xx_and_only_documented_statuses(core: RoomProcess) -> None:
    roles = {
        "none": {},
        "user": bearer("alice"),
        "producer": bearer("producer-1", PRODUCE),
        "admin": bearer("admin-1", PRODUCE, "notifier_admin"),
    }
    no_wait = {"wait": 0}
    statuses = fuzz(core.url, roles=roles, cases=CASES, query={paths.UNDELIVERED: no_wait, paths.FEED: no_wait})
    assert {200, 401, 403, 404, 422} <= set(statuses), statuses
