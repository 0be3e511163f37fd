"""Hygiene checks over HTTP: warnings in the 202 answer and the queued event, the per-app
switch (API and the violations page's form), its refusals, and warnings grouped on the
violations page and marked in the live view."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.dashboard_support import issue, store, stored
from tests.web.support import assert_error, event_rows, json_of, queued_event, table_rows
from tests.web.test_openapi_api import Checker, checker, document  # noqa: F401 (fixtures)
from tests.web.test_tokens import bearer, locked, locked_app, mint  # noqa: F401 (fixtures)
from web.context import Services
from web.core.plans import PLANS_CHANNEL
from web.core.queries.apps import select_app
from web.core.queries.base import App
from web.core.settings import Settings
from web.core.validation.hygiene import RULES, check_hygiene

SIGN_UP = {
    "eventName": "signed_up",
    "event_id": "hyg-1",
    "timestamp": "2025-12-10T15:45:00Z",
    "properties": {"contact": "jane.doe@example.com", "card": "4111 1111 1111 1111"},
}


async def send(client: Client, app_id: str, event: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/logs/{app_id}", json=event)
    assert response.status_code == 202, await response.get_data(as_text=True)
    return await json_of(response)


async def switch(client: Client, app_id: str, body: Any) -> Any:
    return await client.put(f"/api/apps/{app_id}/hygiene", json=body)


async def test_answer_and_queued_event_carry_masked_warnings(
    client: Client, app: App, web_settings: Settings
) -> None:
    body = await send(client, app.id, SIGN_UP)

    assert body["status"] == "valid"
    found = [(e["path"], e["rule"], e["severity"], e["actual"]) for e in body["errors"]]
    assert found == [
        ("/properties/contact", "pii_email", "warning", "j***@example.com"),
        ("/properties/card", "pii_card_number", "warning", "***1111"),
    ]
    answer = orjson.dumps(body).decode()
    assert "jane.doe" not in answer and "4111 1111" not in answer
    queued = await queued_event(web_settings.redis_url, body["task_id"], "hyg-1")
    assert queued["status"] == "valid"
    assert orjson.loads(queued["errors"]) == body["errors"]


async def test_an_event_near_segments_limit_is_warned(client: Client, app: App) -> None:
    event = {"eventName": "big", "blob": "x" * 27_000}
    body = await send(client, app.id, event)
    (warning,) = body["errors"]
    assert (warning["rule"], warning["path"], warning["severity"]) == (
        "size_near_limit",
        "",
        "warning",
    )
    assert "of Segment's limit of 32 KB per event" in warning["message"]
    assert warning["actual"] == len(orjson.dumps(event))


async def test_switch_off_then_on_through_the_api(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    assert await json_of(await client.get(f"/api/apps/{app.id}/hygiene")) == {
        "app_id": app.id,
        "enabled": True,
        "rules": list(RULES),
    }
    await send(client, app.id, SIGN_UP)  # the app's view is now cached

    response = await switch(client, app.id, {"enabled": False})

    assert response.status_code == 200
    assert (await json_of(response))["enabled"] is False
    assert (await json_of(await client.get(f"/api/apps/{app.id}/hygiene")))["enabled"] is False
    async with pool.acquire() as conn:
        stored_app = await select_app(conn, app.id)
    assert stored_app is not None and stored_app.hygiene_checks is False
    assert (await send(client, app.id, SIGN_UP))["errors"] == []

    await switch(client, app.id, {"enabled": True})
    assert len((await send(client, app.id, SIGN_UP))["errors"]) == 2


async def test_switch_off_keeps_the_plans_errors(client: Client, app: App) -> None:
    await switch(client, app.id, {"enabled": False})
    body = await send(client, app.id, {"userId": "jane@example.com"})
    assert body["status"] == "invalid"
    assert [e["rule"] for e in body["errors"]] == ["required"]


@pytest.mark.parametrize(
    "body",
    [
        {"enabled": "false"},
        {"enabled": 0},
        {"enabled": None},
        {},
        {"enabled": True, "also": 1},
        {"on": True},
    ],
)
async def test_switch_refuses_anything_but_a_boolean(client: Client, app: App, body: Any) -> None:
    await assert_error(await switch(client, app.id, body), 400, "invalid_hygiene")
    assert (await json_of(await client.get(f"/api/apps/{app.id}/hygiene")))["enabled"] is True


@pytest.mark.parametrize("body", [[True], "true", True])
async def test_switch_refuses_a_body_that_is_not_an_object(
    client: Client, app: App, body: Any
) -> None:
    await assert_error(await switch(client, app.id, body), 400, "invalid_top_level")


async def test_switch_refuses_a_body_that_is_not_json(client: Client, app: App) -> None:
    response = await client.put(
        f"/api/apps/{app.id}/hygiene", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 400, "invalid_json")


async def test_switch_of_an_unknown_app_is_404(client: Client) -> None:
    await assert_error(await switch(client, "no-such-app", {"enabled": False}), 404, "unknown_app")
    await assert_error(await client.get("/api/apps/no-such-app/hygiene"), 404, "unknown_app")


async def test_the_violations_page_form_switches_it(
    client: Client, app: App, services: Services
) -> None:
    page = await (await client.get(f"/apps/{app.id}/violations")).get_data(as_text=True)
    assert 'Hygiene checks are <strong class="hygiene-state">on</strong>' in page
    assert 'name="enabled" value="false"' in page

    response = await client.post(f"/apps/{app.id}/hygiene", form={"enabled": "false"})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/apps/{app.id}/violations#hygiene")
    view = await services.apps.get(app.id)
    assert view is not None and view.app.hygiene_checks is False
    page = await (await client.get(f"/apps/{app.id}/violations")).get_data(as_text=True)
    assert 'Hygiene checks are <strong class="hygiene-state">off</strong>' in page
    assert "Turn hygiene checks on" in page


@pytest.mark.parametrize("value", ["no", "", "False"])
async def test_the_form_refuses_other_values(client: Client, app: App, value: str) -> None:
    response = await client.post(f"/apps/{app.id}/hygiene", form={"enabled": value})
    assert response.status_code == 400
    assert "invalid_hygiene" in await response.get_data(as_text=True)


def hygiene_entry(app_id: str, payload: dict[str, Any], received_at: datetime) -> Any:
    """An event stored as the worker stores it, with the warnings ingest gives it."""
    errors = [found.as_dict() for found in check_hygiene(payload, size_bytes=100)]
    return stored(app_id, name="signed_up", payload=payload, errors=errors, received_at=received_at)


async def test_warnings_are_grouped_apart_from_failures(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    emails = [{"eventName": "signed_up", "email": f"user{i}@example.com"} for i in range(3)]
    await store(
        pool,
        [
            # Hours ago (counted from the hourly rollups) and minutes ago (from the rows).
            hygiene_entry(app.id, emails[0], now - timedelta(hours=3)),
            hygiene_entry(app.id, emails[1], now - timedelta(minutes=5)),
            hygiene_entry(app.id, emails[2], now - timedelta(minutes=1)),
            hygiene_entry(app.id, {"eventName": "signed_up", "p": "+15551234567"}, now),
            stored(app.id, name="signed_up", errors=[issue("/plan", "required")]),
        ],
    )

    page = await (await client.get(f"/apps/{app.id}/violations")).get_data(as_text=True)

    warned = [row.cells for row in table_rows(page) if "warned" in row.attrs.get("class", "")]
    assert [cells[:4] for cells in warned] == [
        [
            "signed_up",
            "/email",
            "pii_email /email holds an email address (u***@example.com):"
            " personal data and secrets should not be sent to analytics",
            "3",
        ],
        [
            "signed_up new",
            "/p",
            "pii_phone /p holds a phone number (***67): personal data and"
            " secrets should not be sent to analytics",
            "1",
        ],
    ]
    assert "1 failure in 1 group" in page
    assert "4 in 2 groups" in page
    assert "user0@" not in page and "5551234567" not in page


async def test_live_view_rows_mark_warnings(client: Client, app: App, pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    await store(pool, [hygiene_entry(app.id, {"eventName": "signed_up", "e": "a@b.co"}, now)])
    page = await (await client.get(f"/apps/{app.id}")).get_data(as_text=True)
    (row,) = event_rows(page)
    assert "! 1 warning" in row.cells[-1]
    assert "warning-marker" in page


async def test_the_api_answers_as_documented(checker: Checker, app: App) -> None:
    path, documented = f"/api/apps/{app.id}/hygiene", "/api/apps/{app_id}/hygiene"
    await checker.call("GET", path, 200, documented)
    await checker.call("PUT", path, 200, documented, json={"enabled": False})
    await checker.call("PUT", path, 400, documented, json={"enabled": "no"})
    await checker.call("PUT", path, 400, documented, json=[True])
    await checker.call("GET", "/api/apps/no-such-app/hygiene", 404, documented)
    await checker.call(
        "PUT", "/api/apps/no-such-app/hygiene", 404, documented, json={"enabled": True}
    )
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    await checker.call("PUT", path, 403, documented, json={"enabled": True}, headers=cross_site)


@pytest.mark.parametrize(
    ("scope", "may_switch"), [("read", False), ("write", True), ("admin", True)]
)
async def test_reading_takes_read_and_switching_takes_write(
    locked: Client, pool: asyncpg.Pool, app: App, scope: str, may_switch: bool
) -> None:
    token = bearer(await mint(pool, scope))
    read = await locked.get(f"/api/apps/{app.id}/hygiene", headers=token)
    assert read.status_code == 200
    switched = await locked.put(
        f"/api/apps/{app.id}/hygiene", json={"enabled": False}, headers=token
    )
    if may_switch:
        assert switched.status_code == 200
    else:
        await assert_error(switched, 403, "insufficient_scope")
    async with pool.acquire() as conn:
        stored_app = await select_app(conn, app.id)
    assert stored_app is not None and stored_app.hygiene_checks is (not may_switch)


async def test_tokens_of_another_app_cannot_switch_it(
    locked: Client, pool: asyncpg.Pool, app: App, make_app: MakeApp
) -> None:
    other = await make_app()
    token = bearer(await mint(pool, "write", app_id=other.id))
    response = await locked.put(
        f"/api/apps/{app.id}/hygiene", json={"enabled": False}, headers=token
    )
    assert response.status_code == 403


async def test_a_switch_tells_every_web_process_to_forget_the_app(
    client: Client, app: App, web_settings: Settings
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(web_settings.database_url)
    try:
        await listener.add_listener(PLANS_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        await switch(client, app.id, {"enabled": False})
        async with asyncio.timeout(10):
            while (await heard.get()) != app.id:
                pass
    finally:
        await listener.close()
