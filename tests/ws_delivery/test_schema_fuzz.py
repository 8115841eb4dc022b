"""schemathesis against ws_delivery's OpenAPI document, every role: no 5xx, no status it does not list."""

from __future__ import annotations

import asyncio

import pytest

from tests.common.schema_fuzz import fuzz
from tests.support.processes import RoomProcess
from tests.support.tokens import bearer

CASES = 25
"""Generated cases per operation and role (valid and invalid mixed): about 225 requests in all."""


@pytest.fixture
def ws_url(ws_process: tuple[RoomProcess, str]) -> str:
    return ws_process[1]


async def test_generated_requests_as_every_role_get_no_5xx_and_only_documented_statuses(ws_url: str) -> None:
    roles = {
        "none": {},
        "user": bearer("alice"),
        "admin": bearer("admin-1", "notifier_admin"),
    }
    statuses = await asyncio.to_thread(fuzz, ws_url, roles=roles, cases=CASES)
    assert {200, 204, 400, 401, 403, 426} <= set(statuses), statuses
