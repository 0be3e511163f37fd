"""Requests generated from /openapi.json (schemathesis) never get a 5xx from the live server.

Cases are drawn from each documented operation's strategy, positive (valid by the schema)
and negative (deliberately invalid), inside a plain Hypothesis test: schemathesis's own
pytest plugin does not run on this pytest version.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import LiveServer
from web.core.queries.base import App

pytestmark = pytest.mark.e2e

EXAMPLES = 20


@pytest.fixture
def operations(live_server: LiveServer, test_app_row: App) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 10, "the OpenAPI document lists too few operations"
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_generated_requests_never_get_a_5xx(
    live_server: LiveServer, operations: list[Any], mode: GenerationMode
) -> None:
    strategies = st.one_of(
        [operation.as_strategy(generation_mode=mode) for operation in operations]
    )
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES * len(operations) // 4,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # No shrinking: each step is a real HTTP request, and the first failure says enough.
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=strategies, real_app=st.booleans())
    def check(case: Any, real_app: bool) -> None:
        if real_app and "app_id" in (case.path_parameters or {}):
            case.path_parameters["app_id"] = "test-app"  # get past the 404 half of the time
        query = case.query or {}
        if isinstance(query.get("timeout"), int | float):
            # The long poll may legally wait 60 s; a second proves the same and keeps the
            # request inside the client's read timeout.
            query["timeout"] = min(query["timeout"], 1)
        request = case.as_transport_kwargs(base_url=live_server.base_url)
        request.pop("cookies", None)
        if isinstance(request.get("data"), bytes | str):  # requests' spelling; httpx says content
            request["content"] = request.pop("data")
        response = httpx.request(**request, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )

    check()
    assert seen, "no request was generated"
