"""The tracking-plan JSON API, and ingest judging events by the app's current plan."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.sample_plans import STRING_PRICE_ISSUE, order_completed
from tests.web.conftest import MakeApp
from tests.web.support import queued_event, queued_message
from web.core.plans import save_plan
from web.core.queries.apps import select_app
from web.core.queries.base import App
from web.core.queries.events import select_log_entries
from web.core.settings import Settings
from workers.store import store_events

JSON = {"Content-Type": "application/json"}
VERSION_KEYS = {"app_id", "version", "created_at", "plan"}
ISSUE_KEYS = {"path", "rule", "message", "expected", "actual", "severity"}
QUICK_START = {"eventName": "user_login", "userId": 123, "timestamp": "2025-12-10T15:45:00Z"}

CURRENCIES = ("USD", "EUR", "GBP")
ORDERS_V1: dict[str, Any] = {
    "events": {
        "order_completed": order_completed(*CURRENCIES, price={"type": "number"}),
        "user_login": {"type": "object"},
    }
}
# Stricter on price, but no longer requires a currency.
ORDERS_V2: dict[str, Any] = {
    "events": {
        "order_completed": order_completed(
            *CURRENCIES, price={"type": "number", "minimum": 10}, required=("orderId",)
        ),
        "user_login": {"type": "object"},
    },
    "naming": "camelCase",
}


async def json_of(response: WerkzeugResponse) -> Any:
    assert response.mimetype == "application/json", await response.get_data(as_text=True)
    return orjson.loads(await response.get_data())


async def assert_error(response: WerkzeugResponse, status: int, code: str) -> dict[str, Any]:
    body = await json_of(response)
    assert response.status_code == status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def put_plan(client: Client, app_id: str, document: Any) -> dict[str, Any]:
    response = await client.put(f"/api/apps/{app_id}/plan", json=document)
    body: dict[str, Any] = await json_of(response)
    assert response.status_code == 200, body
    return body


async def post_event(client: Client, app_id: str, event: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/logs/{app_id}", json=event)
    body: dict[str, Any] = await json_of(response)
    assert response.status_code == 202, body
    return body


async def ingest_and_store(
    client: Client, pool: asyncpg.Pool, redis_url: str, app_id: str, event: dict[str, Any]
) -> dict[str, Any]:
    """POST one event, then store its queued message as a worker would."""
    result = await post_event(client, app_id, event)
    message = await queued_message(redis_url, result["task_id"])
    assert message is not None
    await store_events(pool, message["args"][0])
    return result


def missing_app() -> str:
    return f"nope-{uuid.uuid4().hex[:10]}"


def order(**fields: Any) -> dict[str, Any]:
    return {"eventName": "order_completed", "event_id": f"evt-{uuid.uuid4().hex[:12]}", **fields}


# --- PUT /api/apps/<id>/plan ------------------------------------------------------------------


async def test_put_plan_answers_200_with_each_new_version(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    first = await put_plan(client, app.id, ORDERS_V1)
    second = await put_plan(client, app.id, ORDERS_V2)

    assert set(first) == VERSION_KEYS
    assert (first["app_id"], first["version"], first["plan"]) == (app.id, 1, ORDERS_V1)
    datetime.fromisoformat(first["created_at"])
    assert (second["version"], second["plan"]) == (2, ORDERS_V2)
    async with pool.acquire() as conn:
        stored = await select_app(conn, app.id)
    assert stored is not None and stored.plan_version == 2


async def test_put_plan_invalid_answers_400_invalid_plan_with_problem_paths(
    client: Client, app: App
) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    bad = {
        "events": {"order_completed": {"properties": {"price": {"type": "numbr"}}}},
        "naming": "kebab",
        "extra": 1,
    }

    response = await client.put(f"/api/apps/{app.id}/plan", json=bad)

    error = await assert_error(response, 400, "invalid_plan")
    assert sorted(p["path"] for p in error["problems"]) == [
        "/events/order_completed/properties/price/type",
        "/extra",
        "/naming",
    ]
    assert all(set(p) == {"path", "message"} and p["message"] for p in error["problems"])
    versions = await json_of(await client.get(f"/api/apps/{app.id}/plan/versions"))
    assert (versions["current"], len(versions["versions"])) == (1, 1)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"events": {', "invalid_json", id="truncated"),
        pytest.param(b"not json", "invalid_json", id="text"),
        pytest.param(b"", "invalid_json", id="empty"),
        pytest.param(b"[]", "invalid_top_level", id="array"),
    ],
)
async def test_put_plan_malformed_body_answers_400(
    client: Client, app: App, body: bytes, code: str
) -> None:
    response = await client.put(f"/api/apps/{app.id}/plan", data=body, headers=JSON)

    await assert_error(response, 400, code)
    await assert_error(await client.get(f"/api/apps/{app.id}/plan"), 404, "unknown_plan_version")


async def test_put_plan_unknown_app_answers_404(client: Client) -> None:
    response = await client.put(f"/api/apps/{missing_app()}/plan", json=ORDERS_V1)

    await assert_error(response, 404, "unknown_app")


async def test_put_plan_from_foreign_origin_answers_403(client: Client, app: App) -> None:
    response = await client.put(
        f"/api/apps/{app.id}/plan", json=ORDERS_V1, headers={"Origin": "https://evil.example"}
    )

    await assert_error(response, 403, "cross_site_request")
    await assert_error(await client.get(f"/api/apps/{app.id}/plan"), 404, "unknown_plan_version")


# --- GET plan, versions, one version --------------------------------------------------------


async def test_get_plan_returns_current_version(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    saved = await put_plan(client, app.id, ORDERS_V2)

    response = await client.get(f"/api/apps/{app.id}/plan")

    assert response.status_code == 200
    assert await json_of(response) == saved


async def test_get_plan_before_any_plan_answers_404(client: Client, app: App) -> None:
    error = await assert_error(
        await client.get(f"/api/apps/{app.id}/plan"), 404, "unknown_plan_version"
    )

    assert error["message"] == f"app {app.id!r} has no plan yet"


async def test_get_plan_unknown_app_answers_404(client: Client) -> None:
    await assert_error(await client.get(f"/api/apps/{missing_app()}/plan"), 404, "unknown_app")


async def test_list_versions_newest_first_with_current(client: Client, app: App) -> None:
    documents: list[dict[str, Any]] = [ORDERS_V1, ORDERS_V2, {"events": {}}]
    for document in documents:
        await put_plan(client, app.id, document)

    response = await client.get(f"/api/apps/{app.id}/plan/versions")

    body = await json_of(response)
    assert response.status_code == 200
    assert body["current"] == 3
    assert [(v["version"], v["events"]) for v in body["versions"]] == [(3, 0), (2, 2), (1, 2)]
    assert all(set(v) == {"version", "created_at", "events"} for v in body["versions"])


async def test_list_versions_without_plan_is_empty(client: Client, app: App) -> None:
    body = await json_of(await client.get(f"/api/apps/{app.id}/plan/versions"))

    assert body == {"current": None, "versions": []}


async def test_list_versions_unknown_app_answers_404(client: Client) -> None:
    response = await client.get(f"/api/apps/{missing_app()}/plan/versions")

    await assert_error(response, 404, "unknown_app")


async def test_get_version_returns_that_version(client: Client, app: App) -> None:
    first = await put_plan(client, app.id, ORDERS_V1)
    await put_plan(client, app.id, ORDERS_V2)

    response = await client.get(f"/api/apps/{app.id}/plan/versions/1")

    assert response.status_code == 200
    assert await json_of(response) == first


async def test_get_version_missing_answers_404(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)

    missing = await client.get(f"/api/apps/{app.id}/plan/versions/2")
    unknown_app = await client.get(f"/api/apps/{missing_app()}/plan/versions/1")

    error = await assert_error(missing, 404, "unknown_plan_version")
    assert "version 2" in error["message"]
    await assert_error(unknown_app, 404, "unknown_app")


# --- diff ---------------------------------------------------------------------------------


async def test_diff_between_two_versions(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    await put_plan(client, app.id, ORDERS_V2)
    await put_plan(client, app.id, {"events": {"cart_viewed": {}}})

    response = await client.get(f"/api/apps/{app.id}/plan/diff?from=1&to=2")
    across = await json_of(await client.get(f"/api/apps/{app.id}/plan/diff?from=1&to=3"))

    body = await json_of(response)
    assert response.status_code == 200
    assert (body["from"], body["to"]) == (1, 2)
    assert body["events_added"] == body["events_removed"] == []
    assert body["events_changed"] == {
        "order_completed": [
            {"path": "/properties/price/minimum", "change": "added", "old": None, "new": 10},
            {
                "path": "/required",
                "change": "changed",
                "old": ["orderId", "currency"],
                "new": ["orderId"],
            },
        ]
    }
    assert body["settings_changed"] == [
        {"path": "/naming", "change": "added", "old": None, "new": "camelCase"}
    ]
    assert across["events_added"] == ["cart_viewed"]
    assert across["events_removed"] == ["order_completed", "user_login"]


async def test_diff_defaults_to_current_against_previous(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    await put_plan(client, app.id, {"events": {}})

    body = await json_of(await client.get(f"/api/apps/{app.id}/plan/diff"))

    assert (body["from"], body["to"]) == (1, 2)
    assert body["events_removed"] == ["order_completed", "user_login"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        pytest.param("?from=1&to=9", 404, "unknown_plan_version", id="missing-to"),
        pytest.param("?from=9&to=1", 404, "unknown_plan_version", id="missing-from"),
        pytest.param("?from=one", 400, "invalid_version", id="not-a-number"),
        pytest.param("?to=-1", 400, "invalid_version", id="negative"),
    ],
)
async def test_diff_bad_versions_are_refused(
    client: Client, app: App, query: str, status: int, code: str
) -> None:
    await put_plan(client, app.id, ORDERS_V1)

    await assert_error(await client.get(f"/api/apps/{app.id}/plan/diff{query}"), status, code)


async def test_diff_unknown_app_answers_404(client: Client) -> None:
    response = await client.get(f"/api/apps/{missing_app()}/plan/diff?from=1&to=2")

    await assert_error(response, 404, "unknown_app")


# --- check --------------------------------------------------------------------------------


async def test_check_valid_plan_says_ok_and_saves_nothing(client: Client, app: App) -> None:
    response = await client.post(f"/api/apps/{app.id}/plan/check", json=ORDERS_V2)

    assert response.status_code == 200
    assert await json_of(response) == {"ok": True, "problems": []}
    versions = await json_of(await client.get(f"/api/apps/{app.id}/plan/versions"))
    assert versions == {"current": None, "versions": []}


async def test_check_bad_plan_lists_problems_with_paths(client: Client, app: App) -> None:
    bad = {"events": {"e": {"type": "strin"}}, "allow_unplanned": "no"}

    response = await client.post(f"/api/apps/{app.id}/plan/check", json=bad)

    body = await json_of(response)
    assert response.status_code == 200
    assert body["ok"] is False
    assert sorted(p["path"] for p in body["problems"]) == ["/allow_unplanned", "/events/e/type"]
    assert all(p["message"] for p in body["problems"])


async def test_check_non_json_answers_400(client: Client, app: App) -> None:
    response = await client.post(f"/api/apps/{app.id}/plan/check", data=b"{", headers=JSON)

    await assert_error(response, 400, "invalid_json")


async def test_check_unknown_app_answers_404(client: Client) -> None:
    response = await client.post(f"/api/apps/{missing_app()}/plan/check", json=ORDERS_V1)

    await assert_error(response, 404, "unknown_app")


# --- ingest judged by the current plan ------------------------------------------------------


async def test_ingest_plan_change_applies_to_the_very_next_request(
    client: Client, app: App
) -> None:
    event = order(orderId="o-1", price="12.99", currency="usd")
    before = await post_event(client, app.id, event | {"event_id": "evt-before"})

    await put_plan(client, app.id, ORDERS_V1)
    after = await post_event(client, app.id, event | {"event_id": "evt-after"})

    assert (before["status"], before["errors"]) == ("valid", [])
    assert after["status"] == "invalid"
    assert sorted((e["path"], e["rule"]) for e in after["errors"]) == [
        ("/currency", "enum"),
        ("/price", "type"),
    ]


async def test_ingest_plan_failure_errors_carry_every_field(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)

    result = await post_event(client, app.id, order(price="12.99", currency="EUR"))

    assert result["status"] == "invalid"
    assert all(set(e) == ISSUE_KEYS for e in result["errors"])
    by_rule = {e["rule"]: e for e in result["errors"]}
    assert by_rule["type"] == STRING_PRICE_ISSUE
    assert by_rule["required"]["path"] == "/orderId"
    assert by_rule["required"]["message"] == "missing required property orderId"
    assert set(by_rule) == {"type", "required"}


async def test_ingest_unplanned_event_is_invalid_and_warnings_keep_valid(
    client: Client, app: App
) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    unplanned = await post_event(client, app.id, {"eventName": "cart_viewed"})
    await put_plan(client, app.id, {**ORDERS_V1, "allow_unplanned": True})

    allowed = await post_event(client, app.id, {"eventName": "cart_viewed"})

    assert unplanned["status"] == "invalid"
    assert [(e["path"], e["rule"], e["severity"]) for e in unplanned["errors"]] == [
        ("/eventName", "unplanned_event", "error")
    ]
    assert allowed["status"] == "valid"
    assert [(e["rule"], e["severity"]) for e in allowed["errors"]] == [
        ("unplanned_event", "warning")
    ]


async def test_ingest_batch_judges_each_event_by_the_plan(
    client: Client, app: App, web_settings: Settings
) -> None:
    await put_plan(client, app.id, ORDERS_V1)
    good = order(orderId="o-1", currency="GBP", price=1)
    bad = order(orderId="o-2", currency="usd")
    unplanned = {"eventName": "cart_viewed", "event_id": "evt-unplanned"}

    response = await client.post(f"/api/logs/{app.id}", json=[good, bad, unplanned])

    body = await json_of(response)
    assert response.status_code == 202
    results = body["results"]
    assert [r["status"] for r in results] == ["valid", "invalid", "invalid"]
    assert [(e["path"], e["message"]) for e in results[1]["errors"]] == [
        ("/currency", 'currency must be one of USD, EUR, GBP, got "usd"')
    ]
    assert [e["rule"] for e in results[2]["errors"]] == ["unplanned_event"]
    for result in results:
        queued = await queued_event(web_settings.redis_url, result["task_id"], result["event_id"])
        assert queued["plan_version"] == 1


async def test_ingest_queued_message_and_stored_row_carry_plan_version(
    client: Client, app: App, pool: asyncpg.Pool, web_settings: Settings
) -> None:
    unjudged = await post_event(client, app.id, order(orderId="o-0", currency="USD"))
    await put_plan(client, app.id, ORDERS_V1)
    await put_plan(client, app.id, ORDERS_V2)

    result = await post_event(client, app.id, order(orderId="o-1", price=3))

    queued = await queued_event(web_settings.redis_url, result["task_id"], result["event_id"])
    assert queued["plan_version"] == 2
    assert queued["status"] == "invalid"
    # ORDERS_V2 asks for camelCase, so the snake_case event name earns a warning too.
    assert sorted((e["rule"], e["severity"]) for e in orjson.loads(queued["errors"])) == [
        ("minimum", "error"),
        ("naming", "warning"),
    ]
    before = await queued_event(web_settings.redis_url, unjudged["task_id"], unjudged["event_id"])
    assert before["plan_version"] is None
    await store_events(pool, [queued, before])
    async with pool.acquire() as conn:
        rows = await select_log_entries(conn, app.id)
    assert {r.event_id: (r.plan_version, r.status) for r in rows} == {
        result["event_id"]: (2, "invalid"),
        unjudged["event_id"]: (None, "valid"),
    }


async def test_ingest_plan_saved_elsewhere_applies_via_notify(
    client: Client, make_app: MakeApp, pool: asyncpg.Pool
) -> None:
    """Saved straight to the database, as another web process would: only NOTIFY tells us."""
    app = await make_app()
    strict = {"events": {"user_login": {"type": "object", "required": ["orderId"]}}}
    warm = await post_event(client, app.id, dict(QUICK_START))
    assert warm["status"] == "valid"

    async with pool.acquire() as conn:
        await save_plan(conn, app.id, strict)
    started = time.monotonic()
    statuses = []
    while time.monotonic() - started < 1.0:
        statuses.append((await post_event(client, app.id, dict(QUICK_START)))["status"])
        if statuses[-1] == "invalid":
            break
        await asyncio.sleep(0.01)

    # The app cache keeps a view for 5 s, so a change within 1 s came by notification.
    assert statuses[-1] == "invalid", f"still {statuses[-1]} after {len(statuses)} requests"


# --- draft --------------------------------------------------------------------------------


async def test_draft_proposes_plan_from_stored_events(
    client: Client, app: App, pool: asyncpg.Pool, web_settings: Settings
) -> None:
    events = [
        order(orderId="o1", price=10, currency="USD", paidAt="2025-12-10T15:45:00Z"),
        order(orderId="o2", price=12.5, paidAt="2025-12-11T09:00:00Z"),
        {**QUICK_START, "event_id": "login-1"},
    ]
    for event in events:
        await ingest_and_store(client, pool, web_settings.redis_url, app.id, event)

    response = await client.get(f"/api/apps/{app.id}/plan/draft")

    body = await json_of(response)
    assert response.status_code == 200
    assert body["events_read"] == 3
    drafted = body["plan"]["events"]
    assert sorted(drafted) == ["order_completed", "user_login"]
    orders = drafted["order_completed"]
    assert orders["required"] == ["orderId", "paidAt", "price"]
    assert orders["properties"]["price"] == {"type": "number"}
    assert orders["properties"]["currency"] == {"type": "string"}
    assert orders["properties"]["paidAt"] == {"type": "string", "format": "date-time"}
    assert "eventName" not in orders["properties"]
    assert "event_id" not in orders["properties"]
    assert drafted["user_login"]["properties"]["userId"] == {"type": "integer"}
    check = await json_of(await client.post(f"/api/apps/{app.id}/plan/check", json=body["plan"]))
    assert check == {"ok": True, "problems": []}


async def test_draft_without_traffic_has_no_events(client: Client, app: App) -> None:
    body = await json_of(await client.get(f"/api/apps/{app.id}/plan/draft"))

    assert body == {"plan": {"events": {}, "allow_unplanned": False}, "events_read": 0}


async def test_draft_unknown_app_answers_404(client: Client) -> None:
    response = await client.get(f"/api/apps/{missing_app()}/plan/draft")

    await assert_error(response, 404, "unknown_app")


# --- revalidate ---------------------------------------------------------------------------


@pytest.fixture
async def judged_under_v1(
    client: Client, make_app: MakeApp, pool: asyncpg.Pool, web_settings: Settings
) -> tuple[str, dict[str, str]]:
    """An app with five stored events judged by ORDERS_V1, then ORDERS_V2 saved."""
    app = await make_app()
    await put_plan(client, app.id, ORDERS_V1)
    events = {
        "still_valid": order(orderId="a", price=20, currency="USD"),
        "newly_failing": order(orderId="b", price=5, currency="USD"),
        "fixed": order(orderId="c", price=20),
        "still_invalid_1": order(orderId="d", price=5),
        "still_invalid_2": order(orderId="e", price="x", currency="USD"),
    }
    ids = {}
    for label, event in events.items():
        result = await ingest_and_store(client, pool, web_settings.redis_url, app.id, event)
        ids[label] = result["event_id"]
    await put_plan(client, app.id, ORDERS_V2)
    return app.id, ids


async def stored_state(pool: asyncpg.Pool, app_id: str) -> list[tuple[str, str, int | None]]:
    async with pool.acquire() as conn:
        rows = await select_log_entries(conn, app_id)
    return sorted((r.event_id, r.status, r.plan_version) for r in rows)


async def test_revalidate_counts_against_current_version(
    client: Client, pool: asyncpg.Pool, judged_under_v1: tuple[str, dict[str, str]]
) -> None:
    app_id, ids = judged_under_v1
    stored_before = await stored_state(pool, app_id)

    response = await client.post(f"/api/apps/{app_id}/revalidate", json={})

    body = await json_of(response)
    assert response.status_code == 200
    assert (body["version"], body["judged"]) == (2, 5)
    assert body["counts"] == {
        "fixed": 1,
        "newly_failing": 1,
        "still_invalid": 2,
        "still_valid": 1,
    }
    (failing,) = body["examples"]["newly_failing"]
    assert failing["event_id"] == ids["newly_failing"]
    assert (failing["was"], failing["now"]) == ("valid", "invalid")
    assert (failing["first_problem"]["path"], failing["first_problem"]["rule"]) == (
        "/price",
        "minimum",
    )
    assert [e["event_id"] for e in body["examples"]["fixed"]] == [ids["fixed"]]
    assert sorted(e["event_id"] for e in body["examples"]["still_invalid"]) == sorted(
        [ids["still_invalid_1"], ids["still_invalid_2"]]
    )
    assert await stored_state(pool, app_id) == stored_before
    assert {plan_version for _, _, plan_version in stored_before} == {1}


async def test_revalidate_against_named_version_and_status(
    client: Client, judged_under_v1: tuple[str, dict[str, str]]
) -> None:
    app_id, _ = judged_under_v1

    same = await json_of(await client.post(f"/api/apps/{app_id}/revalidate", json={"version": 1}))
    invalid_only = await json_of(
        await client.post(f"/api/apps/{app_id}/revalidate", json={"status": "invalid"})
    )
    empty_body = await client.post(f"/api/apps/{app_id}/revalidate")

    assert same["version"] == 1
    assert same["counts"] == {"fixed": 0, "newly_failing": 0, "still_invalid": 3, "still_valid": 2}
    assert invalid_only["judged"] == 3
    assert invalid_only["counts"] == {
        "fixed": 1,
        "newly_failing": 0,
        "still_invalid": 2,
        "still_valid": 0,
    }
    assert empty_body.status_code == 200
    assert (await json_of(empty_body))["judged"] == 5


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"version": 9}, 404, "unknown_plan_version", id="missing-version"),
        pytest.param({"version": "1"}, 400, "invalid_version", id="string-version"),
        pytest.param({"version": True}, 400, "invalid_version", id="bool-version"),
        pytest.param({"status": "broken"}, 400, "invalid_filter", id="bad-status"),
    ],
)
async def test_revalidate_bad_options_are_refused(
    client: Client, app: App, body: dict[str, Any], status: int, code: str
) -> None:
    await put_plan(client, app.id, ORDERS_V1)

    response = await client.post(f"/api/apps/{app.id}/revalidate", json=body)

    await assert_error(response, status, code)


async def test_revalidate_non_json_answers_400(client: Client, app: App) -> None:
    await put_plan(client, app.id, ORDERS_V1)

    response = await client.post(f"/api/apps/{app.id}/revalidate", data=b"{x", headers=JSON)

    await assert_error(response, 400, "invalid_json")


async def test_revalidate_unknown_app_or_no_plan_answers_404(client: Client, app: App) -> None:
    unknown = await client.post(f"/api/apps/{missing_app()}/revalidate", json={})
    no_plan = await client.post(f"/api/apps/{app.id}/revalidate", json={})

    await assert_error(unknown, 404, "unknown_app")
    await assert_error(no_plan, 404, "unknown_plan_version")
