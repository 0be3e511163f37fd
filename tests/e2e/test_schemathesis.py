"""Requests generated from /openapi.json (schemathesis) never get a 5xx from the live server,
and every answer with a documented status has the documented shape (and error code).

Cases are drawn from every documented operation's strategy, positive (valid by the schema)
and negative (deliberately invalid), inside a plain Hypothesis test: schemathesis's own
pytest plugin does not run on this pytest version. The server runs with sign-in off (as on
loopback); one run also sends an admin API token, which is then checked on every request.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import LiveServer
from web.core.queries.base import App
from web.core.tokens import create_token

pytestmark = pytest.mark.e2e

# Cases per operation and run: enough to reach each operation's refusals, few enough that
# the three runs over ~130 operations stay near a minute and a half.
RUNS = {  # modes, whether with a token, cases per operation and mode
    "positive": ([GenerationMode.POSITIVE], False, 2),
    "negative": ([GenerationMode.NEGATIVE], False, 2),
    "both-with-token": ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE], True, 1),
}


@pytest.fixture
def document(live_server: LiveServer, test_app_row: App) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{live_server.base_url}/openapi.json").json()
    return found


@pytest.fixture
def operations(live_server: LiveServer, document: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(document)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 100, "the OpenAPI document lists too few operations"
    return found


@pytest.fixture
async def admin_token(pool: asyncpg.Pool, test_app_row: App) -> tuple[int, str]:
    async with pool.acquire() as conn:
        new = await create_token(conn, "schemathesis", "admin", None, created_by=None)
    return new.stored.id, new.token


def documented_answer(document: dict[str, Any], case: Any, status: int) -> dict[str, Any] | None:
    """The document's JSON schema for this operation's answer with `status`, if it has one."""
    operation = document["paths"][case.operation.path][case.method.lower()]
    answer = operation["responses"].get(str(status))
    if answer is None:
        return None
    if "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    media = answer.get("content", {}).get("application/json")
    return None if media is None else dict(media["schema"])


@pytest.mark.parametrize("run", list(RUNS))
def test_openapi_generated_requests_never_get_a_5xx(
    live_server: LiveServer,
    document: dict[str, Any],
    operations: list[Any],
    admin_token: tuple[int, str],
    run: str,
) -> None:
    modes, with_token, examples = RUNS[run]
    token_id, token = admin_token
    seen: list[int] = []
    token_refused: list[str] = []
    shapes_checked: list[str] = []
    reached: set[str] = set()

    each = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # No shrinking: each step is a real HTTP request, and the first failure says enough.
        phases=[Phase.explicit, Phase.generate],
    )

    def check(case: Any) -> None:
        parameters = case.path_parameters or {}
        if len(seen) % 2 and "app_id" in parameters:
            parameters["app_id"] = "test-app"  # get past the 404 half of the time
        if parameters.get("token_id") == token_id:
            parameters["token_id"] = token_id + 1_000_000  # the run keeps its own token
        query = case.query = case.query or {}
        for long_poll in ("timeout", "wait"):  # the query API's and a scenario run's
            if isinstance(query.get(long_poll), int | float):
                # A long poll may legally wait 60 s; a second proves the same and keeps the
                # request inside the client's read timeout.
                query[long_poll] = min(query[long_poll], 1)
        if case.operation.path.endswith("/wait") and "timeout" not in query:
            query["timeout"] = 1  # not the default 10 s: the run stays short
        request = case.as_transport_kwargs(base_url=live_server.base_url)
        request.pop("cookies", None)
        if isinstance(request.get("data"), bytes | str):  # requests' spelling; httpx says content
            request["content"] = request.pop("data")
        if with_token:
            request["headers"] = {
                **(request.get("headers") or {}),
                "Authorization": f"Bearer {token}",
            }
        response = httpx.request(**request, timeout=30)
        seen.append(response.status_code)
        reached.add(case.operation.label)
        said = (
            f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:300]!r}"
            f" -> {response.status_code}: {response.text[:300]}"
        )
        assert response.status_code < 500, said
        if 'Bearer error="invalid_token"' in response.headers.get("WWW-Authenticate", ""):
            token_refused.append(said)
        schema = documented_answer(document, case, response.status_code)
        if schema is not None and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            errors = list(
                jsonschema.Draft202012Validator({**document, **schema}).iter_errors(response.json())
            )
            assert not errors, f"{said}\nnot as documented: {errors[0].message}"
            shapes_checked.append(case.operation.label)

    for operation in operations:
        for mode in modes:
            try:
                each(given(case=operation.as_strategy(generation_mode=mode))(check))()
            except Unsatisfiable:
                # Nothing about it can be invalid (no parameters, no body): no negative case.
                assert mode == GenerationMode.NEGATIVE, operation.label
    if GenerationMode.POSITIVE in modes:
        assert len(reached) == len(operations), "every operation was asked"
    assert len(set(shapes_checked)) >= len(operations) // 3, "too few answers were checked"
    # The admin token was checked on each request that took it, and never refused.
    assert token_refused == []


def test_the_generated_cases_reach_the_management_api(operations: list[Any]) -> None:
    labels = {op.label for op in operations}

    for expected in (
        "PUT /api/apps/{app_id}/alerts",
        "POST /api/apps/{app_id}/revalidate",
        "DELETE /api/tokens/{token_id}",
        "GET /api/status",
    ):
        assert expected in labels
    assert not [label for label in labels if re.search(r"<\w+>", label)]
