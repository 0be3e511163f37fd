"""Scenario API and pages: CRUD, refusals, run reports (JSON, Markdown, page), coverage."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.support import assert_error, eventually, json_of, message_event
from web.context import Services
from web.core.pairing import start_pairing
from web.core.queries.base import App
from workers.store import store_events

CHECKOUT: dict[str, Any] = {
    "description": "Buy one thing",
    "steps": [
        {"event": "product_viewed"},
        {"event": "product_added"},
        {"event": "checkout_started"},
        {
            "event": "order_completed",
            "assertions": [
                {"path": "/properties/total", "schema": {"type": "number", "exclusiveMinimum": 0}}
            ],
        },
    ],
}


async def send(pool: asyncpg.Pool, app_id: str, session: str, name: str, **props: Any) -> str:
    """Store one event of the session as a worker would (row and notification)."""
    event = message_event(app_id, name=name)
    event["session"] = session
    event["payload"] = orjson.dumps({"event": name, "properties": props}).decode()
    await store_events(pool, [event])
    return str(event["event_id"])


async def put(client: Client, app_id: str, name: str, document: Any) -> Any:
    return await client.put(f"/api/apps/{app_id}/scenarios/{name}", json=document)


def run_path(app: App, session: str, name: str = "checkout") -> str:
    return f"/api/apps/{app.id}/scenarios/{name}/runs/{session}"


async def test_scenario_crud_round_trips_the_document(client: Client, app: App) -> None:
    created = await put(client, app.id, "checkout", CHECKOUT)
    assert created.status_code == 201
    body = await json_of(created)
    assert (body["name"], body["revision"], body["app_id"]) == ("checkout", 1, app.id)
    assert body["scenario"] == {"name": "checkout", **CHECKOUT}

    again = await put(client, app.id, "checkout", {**CHECKOUT, "name": "checkout", "strict": True})
    assert again.status_code == 200
    assert (await json_of(again))["revision"] == 2

    got = await json_of(await client.get(f"/api/apps/{app.id}/scenarios/checkout"))
    assert got["scenario"]["strict"] is True and next(iter(got["scenario"])) == "name"
    listed = await json_of(await client.get(f"/api/apps/{app.id}/scenarios"))
    assert listed["scenarios"][0]["steps"] == [
        "product_viewed",
        "product_added",
        "checkout_started",
        "order_completed",
    ]

    deleted = await client.delete(f"/api/apps/{app.id}/scenarios/checkout")
    assert deleted.status_code == 204
    gone = await client.get(f"/api/apps/{app.id}/scenarios/checkout")
    await assert_error(gone, 404, "unknown_scenario")
    await assert_error(
        await client.delete(f"/api/apps/{app.id}/scenarios/checkout"), 404, "unknown_scenario"
    )


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("checkout", {"steps": []}, 400, "invalid_scenario"),
        ("checkout", {"name": "other", "steps": [{"event": "a"}]}, 400, "invalid_scenario"),
        ("Bad Name", {"steps": [{"event": "a"}]}, 400, "invalid_scenario_name"),
        ("checkout", {"steps": [{"event": "a\u0000"}]}, 400, "null_character"),
        ("checkout", ["not", "an", "object"], 400, "invalid_top_level"),
    ],
)
async def test_scenario_put_refusals(
    client: Client, app: App, name: str, body: Any, status: int, code: str
) -> None:
    found = await assert_error(await put(client, app.id, name, body), status, code)
    if code == "invalid_scenario":
        assert found["problems"][0]["path"] in ("/steps", "/name")


async def test_scenario_put_for_an_unknown_app_is_404(client: Client) -> None:
    await assert_error(await put(client, "no-such-app", "checkout", CHECKOUT), 404, "unknown_app")


async def test_scenario_run_report_json_markdown_and_page(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    await send(pool, app.id, "s1", "product_viewed")
    await send(pool, app.id, "s1", "checkout_started")
    await send(pool, app.id, "s1", "product_added")
    bad = await send(pool, app.id, "s1", "order_completed", total=0)

    report = await json_of(await client.get(run_path(app, "s1")))
    assert (report["verdict"], report["decided"], report["revision"]) == ("failed", True, 1)
    assert [s["state"] for s in report["steps"]] == ["passed", "passed", "passed", "failed"]
    assert report["steps"][2]["out_of_order"] is True
    assert report["steps"][3]["event_id"] == bad
    assert report["steps"][3]["event_url"].startswith(f"/apps/{app.id}/events/")
    assert [f["kind"] for f in report["findings"]] == ["failed_assertion", "out_of_order"]
    assert report["text"].splitlines()[0] == (
        "Scenario checkout in session s1: FAILED (3 of 4 steps passed, 4 events)"
    )
    assert report["counts"] == {
        "steps": 4,
        "passed": 3,
        "failed": 1,
        "waiting": 0,
        "out_of_order": 1,
        "repeated": 0,
        "unexpected": 0,
    }
    detail = await client.get(report["steps"][3]["event_url"])
    assert detail.status_code == 200

    markdown = await client.get(f"/apps/{app.id}/scenarios/checkout/runs/s1.md")
    assert markdown.status_code == 200
    assert markdown.headers["Content-Type"] == "text/markdown; charset=utf-8"
    text = await markdown.get_data(as_text=True)
    assert "- Verdict: **FAILED**" in text
    assert f"[{bad}](<http://localhost{report['steps'][3]['event_url']}>)" in text
    assert "## Out of order" in text

    page = await client.get(f"/apps/{app.id}/scenarios/checkout/runs/s1")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-verdict="failed"' in html
    assert f'href="{report["steps"][3]["event_url"]}"' in html


async def test_scenario_run_refusals(client: Client, app: App) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    await assert_error(await client.get(run_path(app, "s", "nope")), 404, "unknown_scenario")
    await assert_error(await client.get(run_path(app, "x" * 101)), 400, "invalid_session")
    for wait in ("-1", "61", "nan", "soon"):
        response = await client.get(run_path(app, "s"), query_string={"wait": wait})
        await assert_error(response, 400, "invalid_wait")


async def test_scenario_long_poll_returns_when_the_deciding_event_is_stored(
    client: Client, app: App, pool: asyncpg.Pool, services: Services
) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    await send(pool, app.id, "s2", "product_viewed")
    subscribers = services.hub.subscriber_count
    waiting = asyncio.create_task(client.get(run_path(app, "s2"), query_string={"wait": "30"}))
    await eventually(lambda: services.hub.subscriber_count > subscribers, message="subscribed")
    for name in ("product_added", "checkout_started"):
        await send(pool, app.id, "s2", name)
    await send(pool, app.id, "other", "order_completed", total=3)  # another session
    # Not decided yet: the poll is still open after those three have been handled.
    await send(pool, app.id, "s2", "screen_viewed")
    assert not waiting.done()

    stored_at = time.monotonic()
    await send(pool, app.id, "s2", "order_completed", total=3)
    report = await json_of(await asyncio.wait_for(waiting, 20))
    assert time.monotonic() - stored_at < 10
    assert report["verdict"] == "passed"
    assert [f["kind"] for f in report["findings"]] == ["unexpected"]


async def test_scenario_long_poll_answers_in_progress_when_the_wait_ends(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    await send(pool, app.id, "s3", "product_viewed")
    report = await json_of(await client.get(run_path(app, "s3"), query_string={"wait": "0.3"}))
    assert (report["verdict"], report["decided"]) == ("in_progress", False)
    assert "step 2 (product_added): missing" in report["text"]


async def test_coverage_of_a_session_lists_its_scenario_runs(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    await put(client, app.id, "browse", {"steps": [{"event": "product_viewed"}]})
    await send(pool, app.id, "s4", "product_viewed")

    page = await (
        await client.get(f"/apps/{app.id}/coverage", query_string={"session": "s4"})
    ).get_data(as_text=True)
    assert 'id="scenario-runs"' in page
    assert f'href="/apps/{app.id}/scenarios/checkout/runs/s4"' in page
    markdown = await (
        await client.get(f"/apps/{app.id}/coverage.md", query_string={"session": "s4"})
    ).get_data(as_text=True)
    assert "## Scenario runs" in markdown
    assert "| browse | PASSED | 1 of 1 |" in markdown
    assert "| checkout | IN PROGRESS | 1 of 4 |" in markdown
    csv = await (
        await client.get(f"/apps/{app.id}/coverage.csv", query_string={"session": "s4"})
    ).get_data(as_text=True)
    assert "scenario,verdict,steps_passed,steps,summary" in csv
    assert "checkout,in_progress,1,4," in csv
    # Without a session there are no runs to list.
    plain = await (await client.get(f"/apps/{app.id}/coverage")).get_data(as_text=True)
    assert 'id="scenario-runs"' not in plain


async def test_scenario_editor_builds_checks_and_saves(client: Client, app: App) -> None:
    base = f"/apps/{app.id}/scenarios/checkout"
    page = await client.get(base)
    assert "Not saved yet." in await page.get_data(as_text=True)
    form = {"description": "", "step-0-event": "product_viewed", "action": "add_step"}
    html = await (await client.post(base, form=form, headers={"HX-Request": "true"})).get_data(
        as_text=True
    )
    assert 'name="step-1-event"' in html and "Step 2 event" in html
    assert "/steps/1/event" in html  # the new step has no event yet: a problem, shown
    form = {
        "step-0-event": "product_viewed",
        "step-1-event": "order_completed",
        "action": "add_assertion-1",
    }
    html = await (await client.post(base, form=form, headers={"HX-Request": "true"})).get_data(
        as_text=True
    )
    assert 'name="step-1-assertion-0-path"' in html
    form |= {
        "step-1-assertion-0-path": "/properties/total",
        "step-1-assertion-0-kind": "schema",
        "step-1-assertion-0-value": '{"type": "number", "exclusiveMinimum": 0}',
        "action": "up-1",
    }
    html = await (await client.post(base, form=form, headers={"HX-Request": "true"})).get_data(
        as_text=True
    )
    assert html.index('value="order_completed"') < html.index('value="product_viewed"')
    form |= {"step-0-event": "product_viewed", "step-1-event": "order_completed", "action": "save"}
    html = await (await client.post(base, form=form, headers={"HX-Request": "true"})).get_data(
        as_text=True
    )
    assert "Saved as revision 1." in html
    got = await json_of(await client.get(f"/api/apps/{app.id}/scenarios/checkout"))
    assert got["scenario"]["steps"][1]["assertions"] == [
        {"path": "/properties/total", "schema": {"type": "number", "exclusiveMinimum": 0}}
    ]
    bad = {**form, "step-1-assertion-0-value": "{not json"}
    html = await (await client.post(base, form=bad, headers={"HX-Request": "true"})).get_data(
        as_text=True
    )
    assert "/steps/1/assertions/0/schema" in html and "{not json" in html
    assert "Saved as revision" not in html


async def test_scenario_pages_list_and_delete(client: Client, app: App) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    listed = await (await client.get(f"/apps/{app.id}/scenarios")).get_data(as_text=True)
    assert 'data-scenario="checkout"' in listed
    assert "product_viewed → product_added → checkout_started → order_completed" in listed
    refused = await client.post(f"/apps/{app.id}/scenarios", form={"name": "checkout"})
    assert refused.status_code == 400
    assert "The name is taken." in await refused.get_data(as_text=True)
    opened = await client.post(f"/apps/{app.id}/scenarios", form={"name": "signup"})
    assert opened.status_code == 302
    assert opened.headers["Location"] == f"/apps/{app.id}/scenarios/signup"

    deleted = await client.post(f"/apps/{app.id}/scenarios/checkout/delete")
    assert (deleted.status_code, deleted.headers["Location"]) == (302, f"/apps/{app.id}/scenarios")
    gone = await client.get(f"/api/apps/{app.id}/scenarios/checkout")
    await assert_error(gone, 404, "unknown_scenario")


async def test_scenario_editor_offers_the_apps_live_qa_sessions(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    await put(client, app.id, "checkout", CHECKOUT)
    async with pool.acquire() as conn:
        pairing = await start_pairing(conn, app.id, datetime.now(UTC))
    html = await (await client.get(f"/apps/{app.id}/scenarios/checkout")).get_data(as_text=True)
    link = f'href="/apps/{app.id}/scenarios/checkout/runs/{pairing.session}"'
    assert 'id="live-sessions"' in html and link in html
