"""Event detail: fragment and page, marked payload, errors apart from warnings, the schema of
the stored plan version, times, and a cURL replay that is safe to paste into a shell."""

from __future__ import annotations

import html
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from markupsafe import escape
from quart.typing import TestClientProtocol as Client

from tests.sample_plans import order_completed
from tests.web.conftest import MakeApp
from tests.web.dashboard_support import elements, issue, store, stored
from web.core import plans
from web.core.payloads import (
    Finding,
    curl_command,
    findings_by_pointer,
    json_lines,
    replay_body,
    schema_findings,
)
from web.core.queries.base import App
from web.core.validation.plan import compile_plan

PLAN: dict[str, Any] = {
    "events": {
        "order_completed": order_completed(items={"type": "array", "items": {"type": "object"}})
    }
}
HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script><i hx-get="/x" hx-trigger="load">'
SHELL_HOSTILE = "'; touch {sentinel}; echo '$(touch {sentinel})`touch {sentinel}`\n\\'\"\""


async def judged(
    pool: asyncpg.Pool, app_id: str, payload: dict[str, Any], version: int, **extra: Any
) -> int:
    """Store the event as ingest would have judged it against plan `version` of PLAN."""
    verdict = compile_plan(PLAN, version).judge(payload)
    [row_id] = await store(
        pool,
        [
            stored(
                app_id,
                name=payload.get("eventName"),
                payload=payload,
                errors=verdict.issues_as_dicts(),
                plan_version=version,
                **extra,
            )
        ],
    )
    return row_id


async def detail(client: Client, app_id: str, row_id: int, *, panel: bool = True) -> str:
    headers = {"HX-Request": "true"} if panel else {}
    response = await client.get(f"/apps/{app_id}/events/{row_id}", headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_data(as_text=True)


def marked(page: str, section: str = "Payload") -> dict[str, str]:
    """In one JSON block of the page, pointer -> mark (error, warning or "")."""
    start = page.index(f'<pre class="json" aria-label="{section}">')
    block = page[start : page.index("</pre>", start)]
    found: dict[str, str] = {}
    for span in elements(block, "span"):
        if "jl" in span.attrs.get("class", "").split():
            classes = span.attrs["class"].split()
            mark = next((c[5:] for c in classes if c.startswith("mark-")), "")
            found.setdefault(span.attrs["data-pointer"], mark)
    return found


# --- the page and the fragment -----------------------------------------------------------


async def test_detail_fragment_for_htmx_and_page_otherwise(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    [row_id] = await store(pool, [stored(app.id, name="user_login")])

    fragment = await detail(client, app.id, row_id)
    page = await detail(client, app.id, row_id, panel=False)

    assert fragment.lstrip().startswith("<article")
    assert "<html" not in fragment
    assert "data-close-detail" in fragment
    assert page.startswith("<!doctype html>")
    assert '<article class="event-detail"' in page
    assert "data-close-detail" not in page


async def test_detail_marks_failing_paths_and_missing_values(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    async with pool.acquire() as conn:
        await plans.save_plan(conn, app.id, PLAN)
    payload = {
        "eventName": "order_completed",
        "price": -5,
        "currency": "GBP",
        "items": [{"sku": 1}, "not an object"],
    }
    row_id = await judged(pool, app.id, payload, 1)

    page = await detail(client, app.id, row_id)

    marks = marked(page)
    assert marks["/price"] == "error"
    assert marks["/currency"] == "error"
    assert marks["/items/1"] == "error"
    assert marks["/orderId"] == "error"  # absent: shown as a (missing) line
    assert marks["/items/0/sku"] == ""
    assert marks["/eventName"] == ""
    assert (
        '<span class="k">&#34;orderId&#34;</span>: <span class="v v-missing">(missing)</span>'
        in (page)
    )


async def test_detail_lists_errors_and_warnings_apart(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    [row_id] = await store(
        pool,
        [
            stored(
                app.id,
                payload={"eventName": "checkout", "total": "12.99", "context": {}},
                errors=[
                    issue("/total", "type", "total must be a number, got a string"),
                    issue("/context", "note", "context is empty", severity="warning"),
                ],
            )
        ],
    )

    page = await detail(client, app.id, row_id)

    errors = page[page.index('<ol class="issues issues-error">') :]
    errors = errors[: errors.index("</ol>")]
    warnings = page[page.index('<ol class="issues issues-warning">') :]
    warnings = warnings[: warnings.index("</ol>")]
    assert "total must be a number, got a string" in errors and "context" not in errors
    assert "context is empty" in warnings and "total" not in warnings
    assert "Errors (1)" in page and "Warnings (1)" in page
    assert marked(page) == {"": "", "/eventName": "", "/total": "error", "/context": "warning"}


async def test_detail_schema_comes_from_the_version_the_event_was_judged_against(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    async with pool.acquire() as conn:
        await plans.save_plan(conn, app.id, PLAN)
        newer = orjson.loads(orjson.dumps(PLAN))
        newer["events"]["order_completed"]["properties"]["price"]["minimum"] = 100
        await plans.save_plan(conn, app.id, newer)
    row_id = await judged(pool, app.id, {"eventName": "order_completed", "price": -1}, 1)

    page = await detail(client, app.id, row_id)

    assert "Schema, plan version 1" in page
    schema = marked(page, "Event schema")
    assert schema["/properties/price"] == "error"
    assert schema["/properties/price/minimum"] == "error"
    assert schema["/required"] == "error"  # orderId and currency are missing
    assert schema["/properties/orderId"] == "error"
    block = page[page.index('aria-label="Event schema"') :]
    assert '<span class="k">&#34;minimum&#34;</span>: <span class="v v-number">0</span>' in block


async def test_detail_without_plan_or_unplanned_says_so(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    async with pool.acquire() as conn:
        await plans.save_plan(conn, app.id, PLAN)
    no_plan, unplanned = await store(
        pool,
        [
            stored(app.id, name="anything"),
            stored(app.id, name="surprise", plan_version=1, errors=[issue("/eventName", "x")]),
        ],
    )

    assert "No tracking plan was in force" in await detail(client, app.id, no_plan)
    assert "This event is not in plan version 1." in await detail(client, app.id, unplanned)


async def test_detail_shows_received_and_stored_times(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    [row_id] = await store(pool, [stored(app.id, session="qa-7")])

    page = await detail(client, app.id, row_id)

    times = [t.attrs["datetime"] for t in elements(page, "time")]
    assert len(times) == 2
    assert "ms after it was received" in page
    assert f'href="/apps/{app.id}?session=qa-7"' in page


async def test_detail_unknown_or_other_apps_event_is_404(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app, other = await make_app(), await make_app()
    [theirs] = await store(pool, [stored(other.id)])

    for path in (f"/apps/{app.id}/events/{theirs}", f"/apps/{app.id}/events/999999999"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "unknown_event" in await response.get_data(as_text=True)
    assert (await client.get(f"/apps/nope/events/{theirs}")).status_code == 404


async def test_detail_hostile_event_renders_inert(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    payload = {"eventName": HOSTILE, HOSTILE: HOSTILE, "nested": {"k": [HOSTILE]}}
    [row_id] = await store(
        pool,
        [
            stored(
                app.id,
                name=HOSTILE,
                payload=payload,
                session=HOSTILE,
                event_id=HOSTILE,
                errors=[issue(f"/{HOSTILE}", HOSTILE, HOSTILE), issue(f"/x/{HOSTILE}", "required")],
            )
        ],
    )

    for panel in (True, False):
        page = await detail(client, app.id, row_id, panel=panel)
        for raw in ("<img src=x", "<script>alert", "<i hx-get", 'hx-get="/x"'):
            assert raw not in page
        assert str(escape(HOSTILE)) in page
        assert '<article class="event-detail" aria-labelledby="detail-title" hx-disable>' in page


# --- the replay ------------------------------------------------------------------------------


async def test_detail_curl_replays_payload_without_its_id(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await make_app(require_write_key=True)
    payload = {"eventName": "signup", "event_id": "e-1", "plan": 'it\'s "pro"', "n": [1, 2.5]}
    [row_id] = await store(pool, [stored(app.id, payload=payload, session="qa 42")])

    page = await detail(client, app.id, row_id)

    [area] = [t for t in elements(page, "textarea") if t.attrs.get("id") == f"curl-{row_id}"]
    assert "readonly" in area.attrs
    args = shlex.split(area.text.replace("\\\n", " "))
    assert args[:5] == ["curl", "-sS", "-X", "POST", f"http://localhost/api/logs/{app.id}"]
    headers = [args[i + 1] for i, arg in enumerate(args) if arg == "-H"]
    assert headers == [
        "Content-Type: application/json",
        "X-LVD-Session: qa 42",
        f"X-Write-Key: {app.write_key}",
    ]
    assert orjson.loads(args[args.index("--data-raw") + 1]) == {
        "eventName": "signup",
        "plan": 'it\'s "pro"',
        "n": [1, 2.5],
    }
    assert f'data-copy="curl-{row_id}"' in page


def test_curl_command_quotes_hostile_text_so_the_shell_runs_nothing(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    sentinel = tmp_path / "pwned"
    hostile = SHELL_HOSTILE.format(sentinel=sentinel)
    payload = {"eventName": hostile, hostile: [hostile, {"k": hostile}], "emoji": "ok ✓ \u2028"}
    command = curl_command(
        "http://127.0.0.1:9/api/logs/app", payload, session=hostile, write_key=hostile
    )
    captured = tmp_path / "args"
    # A stand-in curl that writes its arguments, NUL-separated, instead of sending them.
    script = f'curl() {{ printf "%s\\0" "$@" > {shlex.quote(str(captured))}; }}\n{command}\n'

    subprocess.run([bash, "-c", script], check=True, timeout=10)

    assert not sentinel.exists()
    args = captured.read_bytes().decode().split("\0")[:-1]
    assert args[args.index("--data-raw") + 1] == orjson.dumps(replay_body(payload)).decode()
    assert f"X-LVD-Session: {hostile}" in args
    assert f"X-Write-Key: {hostile}" in args


# --- the pure pieces ---------------------------------------------------------------------------


def test_json_lines_shape_commas_and_pointers() -> None:
    lines = json_lines({"a": [1, {"b/c": None}], "e": {}, "t": True}, {})

    assert [(line.depth, line.key, line.text, line.comma, line.pointer) for line in lines] == [
        (0, None, "{", False, ""),
        (1, '"a"', "[", False, "/a"),
        (2, None, "1", True, "/a/0"),
        (2, None, "{", False, "/a/1"),
        (3, '"b/c"', "null", False, "/a/1/b~1c"),
        (2, None, "}", False, "/a/1"),
        (1, None, "]", True, "/a"),
        (1, '"e"', "{}", True, "/e"),
        (1, '"t"', "true", False, "/t"),
        (0, None, "}", False, ""),
    ]


def test_json_lines_missing_deep_path_hangs_off_the_deepest_existing_object() -> None:
    findings = findings_by_pointer([issue("/context/app/version", "required")])

    lines = json_lines({"context": {"os": "ios"}}, findings)

    missing = [line for line in lines if line.kind == "missing"]
    assert [(m.key, m.pointer, m.mark, m.depth) for m in missing] == [
        ('"app/version"', "/context/app/version", "error", 2)
    ]
    assert [line.text for line in lines if line.pointer == "/context/os"] == ['"ios"']
    assert next(line for line in lines if line.pointer == "/context/os").comma is True


def test_json_lines_finding_below_a_scalar_marks_the_scalar() -> None:
    lines = json_lines({"n": 5}, {"/n/deeper": [Finding("type", "error")]})

    assert [(line.pointer, line.mark) for line in lines if line.mark] == [("/n", "error")]


def test_schema_findings_point_at_subschema_and_rule_keyword() -> None:
    schema = PLAN["events"]["order_completed"]
    findings = findings_by_pointer(
        [
            issue("/price", "minimum"),
            issue("/orderId", "required"),
            issue("/items/0", "type"),
            issue("/extra", "additionalProperties"),
        ]
    )

    found = schema_findings(schema, findings)

    assert set(found) == {
        "/properties/price",
        "/properties/price/minimum",
        "/properties/orderId",
        "/required",
        "/properties/items/items",
        "/properties/items/items/type",
    }


def test_curl_command_escapes_as_html_only_in_the_template() -> None:
    command = curl_command("http://h/api/logs/a", {"eventName": "<b>"})

    assert "<b>" in command
    assert html.escape(command) != command
