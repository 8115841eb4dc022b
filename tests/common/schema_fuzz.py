"""Schema-driven requests against a running service: schemathesis generates them from its OpenAPI document.

Every operation is called as every role (no token, a user, a producer, an admin) with a bounded number
of generated cases, valid and invalid, and each answer must be no 5xx and a status the document lists
for that operation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance
from schemathesis.core.result import Ok

CHECKS = [not_a_server_error, status_code_conformance]


def fuzz(
    base_url: str,
    *,
    roles: Mapping[str, Mapping[str, str]],
    cases: int,
    query: Mapping[str, Mapping[str, object]] | None = None,
) -> Counter[int]:
    """Call every operation as every role, `cases` generated cases each; returns the statuses answered.

    `query` fixes query parameters per path (a long poll's `wait`), so no case waits for a minute."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an operation schemathesis cannot read: {result!r}"
        operation = result.ok()
        fixed = dict((query or {}).get(operation.path, {}))
        strategy = st.one_of(
            [operation.as_strategy(generation_mode=mode, query=fixed or None) for mode in GenerationMode]
        )
        for headers in roles.values():
            _runner(strategy, base_url=base_url, headers=dict(headers), cases=cases, statuses=statuses)()
    return statuses


def _runner(
    strategy: st.SearchStrategy[Any],
    *,
    base_url: str,
    headers: dict[str, str],
    cases: int,
    statuses: Counter[int],
) -> Callable[[], None]:
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    return call
