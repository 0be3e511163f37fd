"""The plan page: events, the htmx editor check, saving, history diffs, draft, re-validate."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.sample_plans import order_completed
from tests.web.support import table_rows
from web.core.plans import save_plan
from web.core.queries.base import App, NewLogEntry
from web.core.queries.events import insert_log_entries
from web.core.queries.plans import select_plan_version, select_plan_versions

PLAN: dict[str, Any] = {
    "events": {
        "order_completed": order_completed(coupon={"type": ["string", "null"]}),
        "user_login": {"type": "object"},
    }
}
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '</textarea><div hx-get="/x" hx-trigger="load">',
]
RAW_MARKUP = ["<script>alert", "<img src=x", "<div hx-get", 'hx-get="/x"', "</textarea><div"]


async def text_of(response: WerkzeugResponse) -> str:
    assert response.mimetype == "text/html", response.mimetype
    return await response.get_data(as_text=True)


async def diff_text(client: Client, app_id: str, version: int) -> str:
    """A plan version's diff fragment as text: tags removed, entities decoded."""
    response = await client.get(f"/apps/{app_id}/plan/versions/{version}/diff")
    assert response.status_code == 200
    return html.unescape(re.sub(r"<[^>]+>", "", await text_of(response)))


async def save(pool: asyncpg.Pool, app_id: str, document: Any) -> int:
    async with pool.acquire() as conn:
        return (await save_plan(conn, app_id, document)).version


async def versions_of(pool: asyncpg.Pool, app_id: str) -> list[int]:
    async with pool.acquire() as conn:
        return [v.version for v in await select_plan_versions(conn, app_id)]


async def store(pool: asyncpg.Pool, app_id: str, rows: list[tuple[dict[str, Any], str]]) -> None:
    """Stored events as a worker would have written them: (payload, status) pairs."""
    entries = [
        NewLogEntry(
            app_id=app_id,
            event_id=f"evt-{uuid.uuid4().hex[:12]}",
            event_name=payload.get("eventName"),
            payload=orjson.dumps(payload).decode(),
            status=status,
            errors="[]",
            plan_version=None,
            session=None,
            received_at=datetime.now(UTC),
        )
        for payload, status in rows
    ]
    async with pool.acquire() as conn:
        await insert_log_entries(conn, entries)


def editor_text(page: str) -> str:
    match = re.search(r"<textarea[^>]*name=\"document\"[^>]*>(.*?)</textarea>", page, re.DOTALL)
    assert match is not None, "the page has no plan editor"
    return html.unescape(match[1])


def event_names(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<h3 class="event-name">(.*?)</h3>', page)]


def problem_items(fragment: str) -> list[str]:
    items = re.findall(r"<li><code>(.*?)</code>", fragment)
    return [html.unescape(item) for item in items]


def assert_no_raw_markup(text: str) -> None:
    for marker in RAW_MARKUP:
        assert marker not in text, f"{marker!r} reached the page unescaped"


# --- the page -----------------------------------------------------------------------------


async def test_plan_page_lists_events_properties_and_required(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, PLAN)

    response = await client.get(f"/apps/{app.id}/plan")

    page = await text_of(response)
    assert response.status_code == 200
    assert event_names(page) == ["order_completed", "user_login"]
    rows = {row.cells[0]: row.cells[1:] for row in table_rows(page) if row.cells[0] != "Property"}
    assert rows == {
        "orderId": ["string", "required", ""],
        "price": ["number", "optional", "minimum: 0"],
        "currency": ["any", "required", 'enum: ["USD","EUR"]'],
        "coupon": ["string | null", "optional", ""],
    }
    assert "Any properties." in page
    assert "Version 1" in page
    assert orjson.loads(editor_text(page)) == PLAN


async def test_plan_page_shows_refs_and_required_only_properties(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    plan = {
        "$defs": {"money": {"type": "number"}},
        "events": {
            "refund_issued": {
                "required": ["amount", "reason"],
                "properties": {"amount": {"$ref": "#/$defs/money", "description": "In cents"}},
            }
        },
    }
    await save(pool, app.id, plan)

    page = await text_of(await client.get(f"/apps/{app.id}/plan"))

    rows = [row.cells for row in table_rows(page) if row.cells[0] != "Property"]
    assert rows == [
        ["amountIn cents", "see #/$defs/money", "required", '$ref: "#/$defs/money"'],
        ["reason", "any", "required", ""],
    ]


async def test_plan_page_without_plan_says_every_event_is_accepted(
    client: Client, app: App
) -> None:
    response = await client.get(f"/apps/{app.id}/plan")

    page = await text_of(response)
    assert response.status_code == 200
    assert "No plan yet" in page
    assert "No events defined." in page
    assert "No versions yet." in page
    assert orjson.loads(editor_text(page))["events"] == {}


async def test_plan_page_unknown_app_answers_404(client: Client) -> None:
    response = await client.get(f"/apps/nope-{uuid.uuid4().hex[:8]}/plan")

    assert response.status_code == 404
    assert "<code>unknown_app</code>" in await text_of(response)


# --- the editor's check fragment --------------------------------------------------------------


async def test_plan_check_fragment_lists_problems_with_paths(client: Client, app: App) -> None:
    bad = {"events": {"e": {"type": "strin"}}, "naming": "kebab"}

    response = await client.post(
        f"/apps/{app.id}/plan/check", form={"document": orjson.dumps(bad).decode()}
    )

    fragment = await text_of(response)
    assert response.status_code == 200
    assert 'id="plan-problems"' in fragment
    assert "2 problems:" in fragment
    assert problem_items(fragment) == ["/events/e/type", "/naming"]
    assert "The plan is valid." not in fragment


async def test_plan_check_fragment_reports_json_syntax_error(client: Client, app: App) -> None:
    response = await client.post(f"/apps/{app.id}/plan/check", form={"document": '{"events": '})

    fragment = await text_of(response)
    assert "1 problem:" in fragment
    assert problem_items(fragment) == ["/"]
    assert "not valid JSON" in fragment


async def test_plan_check_fragment_says_valid_for_good_plan(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    response = await client.post(
        f"/apps/{app.id}/plan/check", form={"document": orjson.dumps(PLAN).decode()}
    )

    fragment = await text_of(response)
    assert response.status_code == 200
    assert "The plan is valid." in fragment
    assert "problem" not in fragment.replace("plan-problems", "")
    assert await versions_of(pool, app.id) == []


# --- saving from the form -------------------------------------------------------------------


async def test_plan_form_save_valid_redirects_303_and_adds_version(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, {"events": {}})

    response = await client.post(
        f"/apps/{app.id}/plan", form={"document": orjson.dumps(PLAN).decode()}
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/apps/{app.id}/plan")
    assert await versions_of(pool, app.id) == [2, 1]
    async with pool.acquire() as conn:
        current = await select_plan_version(conn, app.id)
    assert current is not None and current.document == PLAN
    page = await text_of(await client.get(f"/apps/{app.id}/plan"))
    assert event_names(page) == ["order_completed", "user_login"]


async def test_plan_form_save_applies_to_next_ingest(client: Client, app: App) -> None:
    event = {"eventName": "order_completed", "orderId": "o1"}
    before = await client.post(f"/api/logs/{app.id}", json=event)

    await client.post(f"/apps/{app.id}/plan", form={"document": orjson.dumps(PLAN).decode()})
    after = await client.post(f"/api/logs/{app.id}", json=event)

    assert orjson.loads(await before.get_data())["status"] == "valid"
    body = orjson.loads(await after.get_data())
    assert body["status"] == "invalid"
    assert [(e["path"], e["rule"]) for e in body["errors"]] == [("/currency", "required")]


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        pytest.param('{"events": {"e": {"type": "strin"}}}', ["/events/e/type"], id="schema"),
        pytest.param('{"events": {}, "allow_unplanned": "yes"}', ["/allow_unplanned"], id="bool"),
        pytest.param('{"events": ', ["/"], id="not-json"),
    ],
)
async def test_plan_form_save_invalid_answers_400_with_problems(
    client: Client, app: App, pool: asyncpg.Pool, text: str, paths: list[str]
) -> None:
    await save(pool, app.id, PLAN)

    response = await client.post(f"/apps/{app.id}/plan", form={"document": text})

    page = await text_of(response)
    assert response.status_code == 400
    assert problem_items(page.split('id="plan-problems"', 1)[1]) == paths
    # The text the user typed stays in the editor for them to fix.
    assert editor_text(page) == text
    assert await versions_of(pool, app.id) == [1]
    assert event_names(page) == ["order_completed", "user_login"]


# --- history diffs --------------------------------------------------------------------------


async def test_plan_diff_fragment_shows_changes_from_previous_version(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, PLAN)
    changed = orjson.loads(orjson.dumps(PLAN))
    changed["events"]["order_completed"]["properties"]["price"]["minimum"] = 1
    del changed["events"]["user_login"]
    changed["events"]["cart_viewed"] = {"type": "object"}
    changed["allow_unplanned"] = True
    await save(pool, app.id, changed)

    text = await diff_text(client, app.id, 2)

    assert "Version 2 compared with version 1" in text
    assert "Events added: cart_viewed" in text
    assert "Events removed: user_login" in text
    assert "/properties/price/minimum changed: 0 → 1" in text
    assert "/allow_unplanned added: null → true" in text


@pytest.mark.parametrize(
    ("times_saved", "expected"),
    [
        pytest.param(
            1,
            ["Version 1 (the first)", "Events added: order_completed, user_login"],
            id="first-version-lists-all-events",
        ),
        pytest.param(2, ["No changes."], id="identical-versions-say-no-changes"),
    ],
)
async def test_plan_diff_fragment_of_the_same_plan_saved_again(
    client: Client, app: App, pool: asyncpg.Pool, times_saved: int, expected: list[str]
) -> None:
    for _ in range(times_saved):
        await save(pool, app.id, PLAN)

    text = await diff_text(client, app.id, times_saved)

    for line in expected:
        assert line in text


async def test_plan_diff_fragment_missing_version_answers_404(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, PLAN)

    response = await client.get(f"/apps/{app.id}/plan/versions/5/diff")

    assert response.status_code == 404
    assert "<code>unknown_plan_version</code>" in await text_of(response)


# --- draft from traffic ---------------------------------------------------------------------


async def test_plan_page_draft_prefills_editor_with_events_seen(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(
        pool,
        app.id,
        [
            ({"eventName": "checkout_started", "cartId": "c1", "items": 2}, "valid"),
            ({"eventName": "checkout_started", "cartId": "c2"}, "valid"),
            ({"eventName": "search", "query": "shoes"}, "valid"),
        ],
    )

    response = await client.get(f"/apps/{app.id}/plan?draft=1")

    page = await text_of(response)
    assert response.status_code == 200
    assert "Draft from traffic" in page
    drafted = orjson.loads(editor_text(page))
    assert sorted(drafted["events"]) == ["checkout_started", "search"]
    assert drafted["events"]["checkout_started"]["required"] == ["cartId"]
    assert drafted["events"]["search"]["properties"]["query"] == {"type": "string"}
    # Nothing is saved until the user presses save.
    assert await versions_of(pool, app.id) == []


# --- re-validate ----------------------------------------------------------------------------


async def test_plan_revalidate_fragment_shows_counts(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, PLAN)
    await store(
        pool,
        app.id,
        [
            ({"eventName": "order_completed", "orderId": "a", "currency": "USD"}, "valid"),
            ({"eventName": "order_completed", "orderId": "b", "currency": "usd"}, "valid"),
            ({"eventName": "order_completed", "orderId": "c", "currency": "EUR"}, "invalid"),
            ({"eventName": "user_login"}, "valid"),
            ({"eventName": "cart_viewed"}, "invalid"),
        ],
    )

    response = await client.post(f"/apps/{app.id}/plan/revalidate", form={"version": "1"})

    fragment = await text_of(response)
    assert response.status_code == 200
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    assert "5 stored events judged against version 1" in text
    assert "1 fixed" in text
    assert "1 newly failing" in text
    assert "1 still invalid" in text
    assert "2 still valid" in text
    assert "/currency" in text
    assert await versions_of(pool, app.id) == [1]


async def test_plan_revalidate_fragment_missing_version_answers_404(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await save(pool, app.id, PLAN)

    response = await client.post(f"/apps/{app.id}/plan/revalidate", form={"version": "7"})

    assert response.status_code == 404


# --- hostile content --------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_plan_pages_escape_hostile_names_and_descriptions(
    client: Client, app: App, pool: asyncpg.Pool, hostile: str
) -> None:
    await save(pool, app.id, {"events": {}})
    plan = {
        "description": hostile,
        "events": {
            hostile: {
                "type": "object",
                "description": hostile,
                "required": [hostile],
                "properties": {
                    hostile: {"type": "string", "description": hostile, "const": hostile},
                    "price": {"type": "number", "description": hostile},
                },
            }
        },
    }
    await save(pool, app.id, plan)
    await store(
        pool,
        app.id,
        [({"eventName": hostile, hostile: hostile, "price": hostile}, "valid")],
    )

    page = await text_of(await client.get(f"/apps/{app.id}/plan"))
    draft = await text_of(await client.get(f"/apps/{app.id}/plan?draft=1"))
    diff = await text_of(await client.get(f"/apps/{app.id}/plan/versions/2/diff"))
    check = await text_of(
        await client.post(
            f"/apps/{app.id}/plan/check",
            form={"document": orjson.dumps({hostile: 1, "events": {}}).decode()},
        )
    )
    revalidation = await text_of(
        await client.post(f"/apps/{app.id}/plan/revalidate", form={"version": "2"})
    )
    refused = await client.post(
        f"/apps/{app.id}/plan", form={"document": orjson.dumps({hostile: 1}).decode()}
    )

    for text in (page, draft, diff, check, revalidation, await text_of(refused)):
        assert_no_raw_markup(text)
    # Escaped, not dropped: the user still sees what the plan says.
    assert event_names(page) == [hostile]
    assert orjson.loads(editor_text(page)) == plan
    assert hostile in html.unescape(diff)
    assert hostile in html.unescape(check)
    assert hostile in html.unescape(revalidation)
    assert refused.status_code == 400
