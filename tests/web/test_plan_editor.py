"""The visual plan editor's routes: edit fragments and refusals, tabs, impact and stats APIs."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.web.support import assert_error, error, insert_entries, new_entry
from tests.web.test_openapi_api import Checker, checker, document  # noqa: F401 (fixtures)
from web.core.queries.base import App

RICH: dict[str, Any] = {
    "$defs": {"money": {"type": "number", "minimum": 0}},
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["orderId"],
            "properties": {
                "orderId": {"type": "string", "pattern": "^O-"},
                "total": {"$ref": "#/$defs/money"},
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"at": {"type": "string", "format": "date-time"}},
                    },
                },
            },
            "additionalProperties": False,
        }
    },
    "allow_unplanned": False,
    "naming": None,
}
ORDER = "/events/Order Completed"


def draft_of(fragment: str) -> Any:
    """The document the visual editor carries in its hidden field."""
    match = re.search(
        r'<input type="hidden" name="document" id="plan-draft"[^>]*value="([^"]*)"', fragment
    )
    assert match is not None, fragment[:500]
    return orjson.loads(html.unescape(match[1]))


async def text_of(response: WerkzeugResponse) -> str:
    return await response.get_data(as_text=True)


async def edit(
    client: Client, app_id: str, document: Any, op: str, **fields: Any
) -> WerkzeugResponse:
    form = {"document": orjson.dumps(document).decode(), "op": op, **fields}
    return await client.post(f"/apps/{app_id}/plan/editor/edit", form=form)


async def store(
    pool: asyncpg.Pool,
    app_id: str,
    payload: dict[str, Any],
    status: str = "valid",
    errors: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> int:
    entry = new_entry(app_id, name=payload["eventName"], status=status, errors=errors)
    entry = entry._replace(payload=orjson.dumps(payload).decode(), **changes)
    [entry_id] = await insert_entries(pool, [entry])
    return entry_id


# --- tabs and edits -------------------------------------------------------------------------


async def test_visual_tab_renders_the_json_tabs_document_and_keeps_what_it_does_not_model(
    client: Client, app: App
) -> None:
    response = await client.post(
        f"/apps/{app.id}/plan/editor/visual", form={"document": orjson.dumps(RICH).decode()}
    )

    fragment = await text_of(response)
    assert response.status_code == 200
    assert draft_of(fragment) == RICH
    assert 'value="Order Completed"' in fragment
    assert 'value="orderId"' in fragment and 'value="^O-"' in fragment
    assert '<option value="date-time" selected>' in fragment
    text = html.unescape(fragment)
    assert '"additionalProperties": false' in text  # kept, read-only
    assert '"$ref": "#/$defs/money"' in text
    assert '"$defs"' in text
    assert "The plan is valid." in fragment


async def test_json_tab_shows_the_visual_tabs_draft(client: Client, app: App) -> None:
    response = await client.post(
        f"/apps/{app.id}/plan/editor/json", form={"document": orjson.dumps(RICH).decode()}
    )

    fragment = await text_of(response)
    match = re.search(
        r'<textarea name="document" id="plan-document"[^>]*>(.*?)</textarea>', fragment, re.S
    )
    assert match is not None
    assert orjson.loads(html.unescape(match[1])) == RICH


async def test_visual_tab_refuses_text_that_is_not_a_json_object(client: Client, app: App) -> None:
    for text, message in (('{"events": ', "not valid JSON"), ("[1]", "must be a JSON object")):
        response = await client.post(f"/apps/{app.id}/plan/editor/visual", form={"document": text})
        fragment = await text_of(response)
        assert response.status_code == 400
        assert 'id="plan-document"' in fragment and message in fragment


async def test_each_edit_answers_the_editor_with_the_edited_draft(client: Client, app: App) -> None:
    empty = {"events": {}, "allow_unplanned": False, "naming": None}
    response = await edit(client, app.id, empty, "add_event", name="Checkout")
    assert response.status_code == 200
    plan = draft_of(await text_of(response))
    assert plan["events"] == {"Checkout": {"type": "object", "properties": {}}}

    steps: list[tuple[str, dict[str, Any]]] = [
        ("add_property", {"pointer": "/events/Checkout", "name": "total", "kind": "number"}),
        (
            "set_rule",
            {"pointer": "/events/Checkout/properties/total", "rule": "minimum", "value": "0"},
        ),
        ("set_required", {"pointer": "/events/Checkout/properties/total", "value": "on"}),
        ("set_naming", {"value": "Title Case"}),
    ]
    for op, fields in steps:
        response = await edit(client, app.id, plan, op, **fields)
        assert response.status_code == 200, await text_of(response)
        plan = draft_of(await text_of(response))

    assert plan == {
        "events": {
            "Checkout": {
                "type": "object",
                "properties": {"total": {"type": "number", "minimum": 0}},
                "required": ["total"],
            }
        },
        "allow_unplanned": False,
        "naming": "Title Case",
    }


async def test_set_type_reads_every_checked_type(client: Client, app: App) -> None:
    fields = [
        ("document", orjson.dumps(RICH).decode()),
        ("op", "set_type"),
        ("pointer", f"{ORDER}/properties/orderId"),
        ("types", "string"),
        ("types", "null"),
    ]
    response = await client.post(
        f"/apps/{app.id}/plan/editor/edit",
        data=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    plan = draft_of(await text_of(response))
    assert plan["events"]["Order Completed"]["properties"]["orderId"]["type"] == ["string", "null"]


async def test_an_edit_that_breaks_the_plan_is_made_and_its_problem_shown(
    client: Client, app: App
) -> None:
    response = await edit(
        client,
        app.id,
        RICH,
        "set_rule",
        pointer=f"{ORDER}/properties/orderId",
        rule="pattern",
        value="(",
    )

    fragment = await text_of(response)
    assert response.status_code == 200
    assert (
        draft_of(fragment)["events"]["Order Completed"]["properties"]["orderId"]["pattern"] == "("
    )
    assert "1 problem:" in fragment
    assert '<code>/events/Order Completed</code> "(" is not a "regex"' in html.unescape(fragment)


@pytest.mark.parametrize(
    ("op", "fields", "code"),
    [
        (
            "set_rule",
            {"pointer": f"{ORDER}/properties/orderId", "rule": "minimum", "value": "ten"},
            "invalid_value",
        ),
        (
            "set_rule",
            {"pointer": f"{ORDER}/properties/nope", "rule": "pattern", "value": "x"},
            "invalid_pointer",
        ),
        (
            "set_rule",
            {"pointer": "/$defs/money", "rule": "minimum", "value": "1"},
            "invalid_pointer",
        ),
        ("set_rule", {"pointer": "no slash", "rule": "pattern", "value": "x"}, "invalid_pointer"),
        ("set_rule", {"pointer": ORDER, "rule": "oneOf", "value": "x"}, "invalid_rule"),
        ("add_event", {"name": "Order Completed"}, "name_taken"),
        ("set_type", {"pointer": ORDER, "types": "text"}, "invalid_value"),
        ("explode", {}, "invalid_edit"),
    ],
)
async def test_a_refused_edit_is_400_with_its_code_and_the_draft_unchanged(
    client: Client, app: App, op: str, fields: dict[str, Any], code: str
) -> None:
    response = await edit(client, app.id, RICH, op, **fields)

    fragment = await text_of(response)
    assert response.status_code == 400
    assert f"<code>{code}</code>" in fragment
    assert draft_of(fragment) == RICH


async def test_an_edit_of_a_draft_that_is_not_json_is_400_in_the_json_tab(
    client: Client, app: App
) -> None:
    response = await client.post(
        f"/apps/{app.id}/plan/editor/edit", form={"document": "{", "op": "add_event", "name": "a"}
    )

    assert response.status_code == 400
    assert "not valid JSON" in await text_of(response)


async def test_event_data_in_names_is_escaped(client: Client, app: App) -> None:
    hostile = "<script>alert(1)</script>"
    plan = {"events": {hostile: {"properties": {'"><img src=x onerror=alert(1)>': {}}}}}

    fragment = await text_of(
        await client.post(
            f"/apps/{app.id}/plan/editor/visual", form={"document": orjson.dumps(plan).decode()}
        )
    )

    assert "<script>alert" not in fragment and "<img src=x" not in fragment
    assert draft_of(fragment) == plan


async def test_editor_routes_of_an_unknown_app_are_404(client: Client) -> None:
    response = await client.post("/apps/no-such-app/plan/editor/json", form={"document": "{}"})

    assert response.status_code == 404


async def test_plan_page_has_the_editor_tabs_and_loads_the_statistics(
    client: Client, app: App
) -> None:
    page = await text_of(await client.get(f"/apps/{app.id}/plan"))

    assert 'id="plan-editor-area"' in page and ">Visual</button>" in page
    assert f'hx-get="/apps/{app.id}/plan/stats"' in page
    assert f'hx-post="/apps/{app.id}/plan/editor/impact"' in page


# --- what would break -----------------------------------------------------------------------

STRICT = {
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["orderId"],
            "properties": {"total": {"type": "number", "minimum": 0}},
        }
    }
}


async def test_impact_counts_newly_failing_and_fixed_by_event_and_rule(
    client: Client,
    checker: Checker,
    app: App,
    pool: asyncpg.Pool,
) -> None:
    fine = await store(pool, app.id, {"eventName": "Order Completed", "orderId": "A", "total": 5})
    negative = await store(
        pool, app.id, {"eventName": "Order Completed", "orderId": "B", "total": -1}
    )
    was_bad = error("/total", "type", "total must be a number")
    fixed = await store(
        pool,
        app.id,
        {"eventName": "Order Completed", "orderId": "C", "total": 3},
        "invalid",
        [was_bad],
    )
    await store(  # outside the default window of 24 hours: not judged
        pool,
        app.id,
        {"eventName": "Order Completed", "total": -5},
        received_at=datetime.now(UTC) - timedelta(days=2),
    )
    path = f"/api/apps/{app.id}/plan/impact"

    found = await checker.call(
        "POST", path, 200, "/api/apps/{app_id}/plan/impact", json={"plan": STRICT}
    )

    assert found["judged"] == 3 and found["capped"] is False
    assert found["counts"] == {"fixed": 1, "newly_failing": 1, "still_invalid": 0, "still_valid": 1}
    changes = {(c["outcome"], c["event_name"], c["rule"]): c for c in found["changes"]}
    assert set(changes) == {
        ("newly_failing", "Order Completed", "minimum"),
        ("fixed", "Order Completed", "type"),
    }
    assert [
        e["id"] for e in changes["newly_failing", "Order Completed", "minimum"]["examples"]
    ] == [negative]
    assert [e["id"] for e in changes["fixed", "Order Completed", "type"]["examples"]] == [fixed]
    assert fine not in [e["id"] for c in found["changes"] for e in c["examples"]]


async def test_impact_judges_one_session(
    client: Client,
    checker: Checker,
    app: App,
    pool: asyncpg.Pool,
) -> None:
    await store(pool, app.id, {"eventName": "Order Completed", "total": -1})
    mine = await store(pool, app.id, {"eventName": "Order Completed", "total": -2}, session="qa-1")

    found = await checker.call(
        "POST",
        f"/api/apps/{app.id}/plan/impact",
        200,
        "/api/apps/{app_id}/plan/impact",
        json={"plan": STRICT, "session": "qa-1"},
    )

    assert found["judged"] == 1 and found["session"] == "qa-1"
    assert found["changes"][0]["examples"][0]["id"] == mine
    assert {c["rule"] for c in found["changes"]} == {"required", "minimum"}


async def test_impact_refusals_have_codes(
    client: Client,
    checker: Checker,
    app: App,
) -> None:
    path, template = f"/api/apps/{app.id}/plan/impact", "/api/apps/{app_id}/plan/impact"
    bad_plan = await checker.call("POST", path, 400, template, json={"plan": {"events": 1}})
    assert bad_plan["error"]["code"] == "invalid_plan"
    no_plan = await checker.call("POST", path, 400, template, json={})
    assert no_plan["error"]["code"] == "invalid_plan"
    when = await checker.call("POST", path, 400, template, json={"plan": STRICT, "since": "soon"})
    assert when["error"]["code"] == "invalid_filter"
    session = await checker.call("POST", path, 400, template, json={"plan": STRICT, "session": 7})
    assert session["error"]["code"] == "invalid_filter"
    await checker.call(
        "POST", path, 400, template, data=b"[", headers={"Content-Type": "application/json"}
    )
    await checker.call("POST", "/api/apps/nope/plan/impact", 404, template, json={"plan": STRICT})


async def test_impact_fragment_links_examples_and_says_what_was_judged(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    negative = await store(
        pool, app.id, {"eventName": "Order Completed", "orderId": "B", "total": -1}
    )

    response = await client.post(
        f"/apps/{app.id}/plan/editor/impact",
        form={"document": orjson.dumps(STRICT).decode(), "hours": "6"},
    )

    fragment = await text_of(response)
    assert response.status_code == 200
    assert "1 stored event" in fragment and "of the last 6 h" in fragment
    assert f'href="/apps/{app.id}/events/{negative}"' in fragment
    assert "<code>minimum</code>" in fragment


async def test_impact_fragment_refuses_a_broken_draft_and_a_bad_window(
    client: Client, app: App
) -> None:
    broken = await client.post(
        f"/apps/{app.id}/plan/editor/impact", form={"document": "{", "hours": "6"}
    )
    assert broken.status_code == 400
    assert "<code>invalid_plan</code>" in await text_of(broken)
    window = await client.post(
        f"/apps/{app.id}/plan/editor/impact", form={"document": "{}", "hours": "5"}
    )
    assert window.status_code == 400
    assert "invalid_filter" in await text_of(window)


# --- property statistics --------------------------------------------------------------------


async def test_stats_give_types_missing_share_and_top_values(
    client: Client,
    checker: Checker,
    app: App,
    pool: asyncpg.Pool,
) -> None:
    for payload in (
        {
            "eventName": "Order Completed",
            "currency": "USD",
            "total": 5,
            "address": {"city": "Oslo"},
        },
        {"eventName": "Order Completed", "currency": "USD", "total": "5"},
        {
            "eventName": "Order Completed",
            "currency": "EUR",
            "total": 5,
            "address": {"city": "Rome"},
        },
        {"eventName": "Order Completed", "currency": "USD", "total": None},
        {"eventName": "Signed Up", "plan": True},
    ):
        await store(pool, app.id, payload)

    found = await checker.call(
        "GET", f"/api/apps/{app.id}/plan/stats", 200, "/api/apps/{app_id}/plan/stats"
    )

    assert found["read"] == 5
    [order, signup] = found["events"]
    assert (order["event_name"], order["sampled"]) == ("Order Completed", 4)
    props = {p["path"]: p for p in order["properties"]}
    assert list(props) == ["address", "address.city", "currency", "total"]
    assert props["total"]["types"] == {"integer": 2, "string": 1, "null": 1}
    assert props["currency"]["top_values"] == [
        {"value": "USD", "count": 3},
        {"value": "EUR", "count": 1},
    ]
    assert props["address.city"]["missing"] == 2 and props["address.city"]["missing_share"] == 0.5
    assert {"value": 5, "count": 2} in props["total"]["top_values"]
    assert {"value": "5", "count": 1} in props["total"]["top_values"]
    assert signup["properties"][0]["top_values"] == [{"value": True, "count": 1}]


async def test_stats_window_leaves_old_events_out_and_refuses_bad_hours(
    client: Client,
    checker: Checker,
    app: App,
    pool: asyncpg.Pool,
) -> None:
    await store(
        pool,
        app.id,
        {"eventName": "Old", "a": 1},
        received_at=datetime.now(UTC) - timedelta(hours=3),
    )
    path, template = f"/api/apps/{app.id}/plan/stats", "/api/apps/{app_id}/plan/stats"

    one_hour = await checker.call("GET", f"{path}?hours=1", 200, template)
    four_hours = await checker.call("GET", f"{path}?hours=4", 200, template)

    assert one_hour["events"] == [] and one_hour["read"] == 0
    assert [e["event_name"] for e in four_hours["events"]] == ["Old"]
    for hours in ("0", "169", "x", "%C2%B2"):
        await assert_error(await client.get(f"{path}?hours={hours}"), 400, "invalid_hours")
        await checker.call("GET", f"{path}?hours={hours}", 400, template)


async def test_stats_fragment_says_what_was_read(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await store(pool, app.id, {"eventName": "Signed Up", "plan": "<b>pro</b>"})

    fragment = await text_of(await client.get(f"/apps/{app.id}/plan/stats"))

    assert "Read 1 stored event of the last 24 h" in fragment
    assert "Signed Up" in fragment and "&lt;b&gt;pro&lt;/b&gt;" in fragment
    assert "<b>pro" not in fragment
