"""The visual plan editor in Chromium: a plan built from empty, a rich plan round-tripped, and
what a stricter draft would break."""

from __future__ import annotations

import copy
import re
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from playwright.async_api import Locator, Page, expect

from tests.conftest import LiveServer
from tests.e2e.test_browser import Tab, browser, chromium_executable, tab  # noqa: F401 (fixtures)
from web.core.queries.base import App

from .helpers import APP_ID, post_event, unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EVENT = "/events/Checkout"


def prop(page: Page, pointer: str) -> Locator:
    return page.locator(f'li.pe-prop[data-pointer="{pointer}"]')


def rules(page: Page, pointer: str) -> Locator:
    return page.locator(f'li.pe-prop[data-pointer="{pointer}"] > .pe-rules')


async def draft(page: Page) -> Any:
    return orjson.loads(await page.locator("#plan-draft").get_attribute("value") or "null")


async def settled(page: Page) -> None:
    """Until htmx has no request out and has finished swapping and settling: a field of a
    fragment just swapped in is listened to only once htmx has processed it."""
    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    await page.wait_for_function(f"() => !document.querySelector('{busy}')")


async def wait_for_draft(page: Page, fragment: str) -> None:
    """Until the draft the editor carries (compact JSON) contains this text."""
    await expect(page.locator("#plan-draft")).to_have_attribute(
        "value", re.compile(re.escape(fragment))
    )
    await settled(page)


async def add_property(page: Page, schema: Locator, name: str, kind: str, pointer: str) -> None:
    adder = schema.locator(":scope > .pe-add")
    await adder.get_by_label("New property").fill(name)
    await adder.get_by_label("of type").select_option(kind)
    await adder.get_by_role("button", name="Add property").click()
    await expect(prop(page, pointer)).to_be_visible()
    await settled(page)


async def set_text(page: Page, pointer: str, label: str, value: str, expected: str) -> None:
    field = rules(page, pointer).get_by_label(label)
    await field.fill(value)
    await field.press("Tab")  # change fires on leaving the field
    await wait_for_draft(page, expected)


async def test_build_a_plan_from_empty_save_it_and_ingest_judges_by_it(
    tab: Tab, http: httpx.AsyncClient, live_server: LiveServer, test_app_row: App
) -> None:
    page = tab.page
    await page.goto(f"{live_server.base_url}/apps/{APP_ID}/plan")
    await page.get_by_role("tab", name="Visual").click()
    await expect(page.locator("#pe-new-event")).to_be_visible()
    await settled(page)
    await page.locator("#pe-new-event").fill("Checkout")
    await page.get_by_role("button", name="Add event").click()
    event = page.locator(f'article.pe-event[data-pointer="{EVENT}"] > .pe-properties')
    await expect(event).to_be_visible()
    await settled(page)

    order_id = f"{EVENT}/properties/orderId"
    await add_property(page, event, "orderId", "string", order_id)
    await prop(page, order_id).locator(":scope > .pe-prop-head").get_by_label("required").check()
    await wait_for_draft(page, '"required":["orderId"]')
    await set_text(page, order_id, "Pattern", r"^O-\d+$", '"pattern":"^O-\\\\d+$"')

    total = f"{EVENT}/properties/total"
    await add_property(page, event, "total", "number", total)
    minimum = rules(page, total).get_by_label("Minimum")
    await minimum.fill("ten")
    await minimum.press("Tab")
    await expect(page.locator(".pe-refusal")).to_contain_text("invalid_value")  # a 400, shown
    await settled(page)
    await set_text(page, total, "Minimum", "0", '"minimum":0')
    await expect(page.locator(".pe-refusal")).to_have_count(0)

    currency = f"{EVENT}/properties/currency"
    await add_property(page, event, "currency", "string", currency)
    await set_text(page, currency, "Allowed values", "USD\nEUR", '"enum":["USD","EUR"]')

    lines = f"{EVENT}/properties/lines"
    await add_property(page, event, "lines", "array", lines)
    await prop(page, lines).get_by_role("button", name="Describe the items").click()
    items = page.locator(f'li.pe-prop[data-pointer="{lines}"] > .pe-items > .pe-properties')
    await expect(items).to_be_visible()
    await settled(page)
    at = f"{lines}/items/properties/at"
    await add_property(page, items, "at", "string", at)
    await rules(page, at).get_by_label("Format").select_option("date-time")
    await wait_for_draft(page, '"format":"date-time"')
    await expect(page.locator("#plan-problems")).to_contain_text("The plan is valid.")
    built = await draft(page)
    await tab.screenshot("plan-editor-visual-built.png")

    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("text=Version 1, saved")).to_be_visible()
    saved = (await http.get(f"/api/apps/{APP_ID}/plan")).json()["plan"]
    assert saved == built
    assert saved["events"]["Checkout"]["properties"]["lines"]["items"]["properties"]["at"] == {
        "type": "string",
        "format": "date-time",
    }

    bad = {
        "eventName": "Checkout",
        "event_id": unique("c"),
        "orderId": "X-1",
        "total": -1,
        "currency": "GBP",
        "lines": [{"at": "yesterday"}],
    }
    answer = (await post_event(http, bad)).json()
    assert answer["status"] == "invalid"
    assert {(e["path"], e["rule"]) for e in answer["errors"]} == {
        ("/orderId", "pattern"),
        ("/total", "minimum"),
        ("/currency", "enum"),
        ("/lines/0/at", "format"),
    }
    good = {**bad, "event_id": unique("c"), "orderId": "O-7", "total": 3, "currency": "EUR"}
    good["lines"] = [{"at": "2026-12-07T10:00:00Z"}]
    assert (await post_event(http, good)).json()["status"] == "valid"
    missing = {"eventName": "Checkout", "event_id": unique("c")}
    assert [e["rule"] for e in (await post_event(http, missing)).json()["errors"]] == ["required"]
    assert not [line for line in tab.console if "Content Security Policy" in line], tab.console


RICH: dict[str, Any] = {
    "$defs": {
        "money": {"type": "number", "minimum": 0, "multipleOf": 0.01},
        "line": {
            "type": "object",
            "required": ["sku"],
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"},
                "options": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        },
    },
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["orderId", "total"],
            "properties": {
                "orderId": {"type": "string", "minLength": 1},
                "total": {"$ref": "#/$defs/money"},
                "placedAt": {"type": "string", "format": "date-time"},
                "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
                "shipments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "eta": {"type": "string", "format": "date"},
                            "parcels": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"weight": {"type": "number"}},
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                },
                "payment": {"oneOf": [{"const": "card"}, {"const": "cash"}]},
            },
        }
    },
    "allow_unplanned": True,
    "naming": None,
}


async def test_a_rich_plan_round_trips_with_one_visual_change(
    tab: Tab, http: httpx.AsyncClient, live_server: LiveServer, test_app_row: App
) -> None:
    page = tab.page
    put = await http.put(f"/api/apps/{APP_ID}/plan", json=RICH)
    assert put.status_code == 200, put.text
    await page.goto(f"{live_server.base_url}/apps/{APP_ID}/plan")
    await page.get_by_role("tab", name="Visual").click()
    await expect(page.locator("#plan-draft")).to_have_count(1)
    await settled(page)
    assert await draft(page) == RICH
    await expect(page.locator(".pe-kept-json").first).to_contain_text('"$defs"')

    parcels = "/events/Order Completed/properties/shipments/items/properties/parcels"
    weight = f"{parcels}/items/properties/weight"
    await set_text(page, weight, "Description", "In grams", '"description":"In grams"')
    await page.get_by_role("tab", name="JSON").click()
    shown = orjson.loads(await page.locator("#plan-document").input_value())
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("text=Version 2, saved")).to_be_visible()

    expected = copy.deepcopy(RICH)
    shipments = expected["events"]["Order Completed"]["properties"]["shipments"]
    shipments["items"]["properties"]["parcels"]["items"]["properties"]["weight"]["description"] = (
        "In grams"
    )
    stored = (await http.get(f"/api/apps/{APP_ID}/plan/versions/2")).json()["plan"]
    assert stored == expected
    assert shown == expected
    diff = (await http.get(f"/api/apps/{APP_ID}/plan/diff?from=1&to=2")).json()
    assert diff["events_changed"] == {
        "Order Completed": [
            {
                "path": "/properties/shipments/items/properties/parcels/items/properties/weight"
                "/description",
                "change": "added",
                "old": None,
                "new": "In grams",
            }
        ]
    }


async def test_what_would_break_counts_newly_failing_events_of_a_stricter_draft(
    tab: Tab,
    http: httpx.AsyncClient,
    live_server: LiveServer,
    test_app_row: App,
    pool: asyncpg.Pool,
) -> None:
    page = tab.page
    negative, fine = unique("o"), unique("o")
    await post_event(http, {"eventName": "Order Completed", "event_id": negative, "total": -3})
    await post_event(http, {"eventName": "Order Completed", "event_id": fine, "total": 3})
    assert await wait_for_event_ids(pool, APP_ID, [negative, fine]) == {negative: 1, fine: 1}
    strict = {
        "events": {"Order Completed": {"properties": {"total": {"type": "number", "minimum": 0}}}}
    }

    await page.goto(f"{live_server.base_url}/apps/{APP_ID}/plan")
    await page.locator("#plan-document").fill(orjson.dumps(strict).decode())
    await page.get_by_label("Traffic of the last").select_option("1")
    await page.get_by_role("button", name="What would break?").click()

    impact = page.locator("#plan-impact")
    await expect(impact.locator(".pe-newly-failing strong")).to_have_text("1")
    await expect(impact).to_contain_text("2 stored events of the last 1 h")
    row = impact.locator("tr.pe-change-newly_failing")
    await expect(row).to_contain_text("minimum")
    await expect(row.get_by_role("link", name=negative)).to_be_visible()
    await expect(page.locator("text=No plan yet")).to_be_visible()  # nothing was saved
    await expect(page.locator("#plan-stats")).to_contain_text("Order Completed")
    await tab.screenshot("plan-editor-impact.png")
