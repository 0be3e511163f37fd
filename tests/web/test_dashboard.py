"""Pages: the app list with counts, an app's rows, filters, escaping and security headers."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from markupsafe import escape
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.web.conftest import MakeApp
from tests.web.support import error, event_rows, insert_entries, new_entry, table_rows
from web.core.apps import add_app
from web.core.queries.base import App

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    '<div hx-get="/x" hx-trigger="load">',
]
# What must never reach the page unescaped, whichever hostile string carried it.
RAW_MARKUP = ["<script>alert", "<img src=x", "<div hx-get", 'hx-get="/x"', "onerror=alert(1)>"]


async def page(client: Client, path: str) -> tuple[WerkzeugResponse, str]:
    response = await client.get(path)
    return response, await response.get_data(as_text=True)


def sse_connect(text: str) -> tuple[str, dict[str, list[str]]]:
    match = re.search(r'sse-connect="([^"]*)"', text)
    assert match is not None, "the page has no sse-connect attribute"
    url = urlsplit(html.unescape(match[1]))
    return url.path, parse_qs(url.query)


# --- the app list -----------------------------------------------------------------------


async def test_dashboard_index_lists_apps_with_counts(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    busy = await make_app(prefix="busy")
    idle = await make_app(prefix="idle")
    await insert_entries(
        pool,
        [
            new_entry(busy.id),
            new_entry(busy.id, status="invalid", errors=[error("/x", "type", "bad")]),
            new_entry(busy.id),
            new_entry(busy.id, status="invalid"),
            new_entry(busy.id),
        ],
    )

    response, text = await page(client, "/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    rows = {row.cells[0]: row.cells for row in table_rows(text) if row.cells and row.attrs == {}}
    assert rows[busy.id] == [busy.id, busy.name, "5", "2"]
    assert rows[idle.id] == [idle.id, idle.name, "0", "0"]
    assert f'href="/apps/{busy.id}"' in text


async def test_dashboard_index_without_apps_shows_create_form(
    client: Client, clean_db: None
) -> None:
    response, text = await page(client, "/")

    assert response.status_code == 200
    assert "No apps yet" in text
    assert '<form method="post" action="/apps"' in text


# --- an app's page ----------------------------------------------------------------------


async def test_dashboard_app_page_shows_rows_newest_first(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    at = datetime(2025, 12, 10, 15, 45, 0, tzinfo=UTC)
    ids = await insert_entries(
        pool,
        [
            new_entry(app.id, name="first", received_at=at),
            new_entry(
                app.id,
                name="second",
                status="invalid",
                received_at=at + timedelta(seconds=1),
                errors=[
                    error("/context", "note", "only a warning", severity="warning"),
                    error("/timestamp", "format", "timestamp must be an RFC 3339 date-time"),
                    error("/eventName", "required", "missing eventName"),
                ],
            ),
            new_entry(app.id, name=None, received_at=at + timedelta(seconds=2)),
        ],
    )

    response, text = await page(client, f"/apps/{app.id}")

    assert response.status_code == 200
    rows = event_rows(text)
    assert [row.attrs["id"] for row in rows] == [f"event-{i}" for i in reversed(ids)]
    assert [row.cells for row in rows] == [
        ["2025-12-10 15:45:02", "(no name)", "valid", ""],
        [
            "2025-12-10 15:45:01",
            "second",
            "invalid",
            # The first error, how many more, and a marker for the warning (issue 17).
            "/timestamp timestamp must be an RFC 3339 date-time +1 more ! 1 warning",
        ],
        ["2025-12-10 15:45:00", "first", "valid", ""],
    ]
    assert [row.attrs["class"] for row in rows] == [
        "event status-valid",
        "event status-invalid",
        "event status-valid",
    ]
    assert 'datetime="2025-12-10T15:45:01+00:00"' in text


async def test_dashboard_app_page_without_rows_says_so(client: Client, app: App) -> None:
    response, text = await page(client, f"/apps/{app.id}")

    assert response.status_code == 200
    assert event_rows(text) == []
    assert re.search(r'<p class="empty" id="no-events">', text)
    assert sse_connect(text) == (f"/apps/{app.id}/stream", {"after": ["0"]})


@pytest.mark.parametrize("status", ["valid", "invalid"])
async def test_dashboard_status_filter_shows_only_that_status(
    client: Client, pool: asyncpg.Pool, app: App, status: str
) -> None:
    ids = await insert_entries(
        pool,
        [
            new_entry(app.id, name="v1"),
            new_entry(app.id, name="i1", status="invalid"),
            new_entry(app.id, name="v2"),
            new_entry(app.id, name="i2", status="invalid"),
        ],
    )
    expected = {"valid": ["v2", "v1"], "invalid": ["i2", "i1"]}[status]
    newest = {"valid": ids[2], "invalid": ids[3]}[status]

    response, text = await page(client, f"/apps/{app.id}?status={status}")

    assert response.status_code == 200
    rows = event_rows(text)
    assert [row.cells[1] for row in rows] == expected
    assert {row.cells[2] for row in rows} == {status}
    assert sse_connect(text) == (
        f"/apps/{app.id}/stream",
        {"status": [status], "after": [str(newest)]},
    )
    assert re.search(rf'class="filter active"\s+aria-current="page">{status}</a>', text)


async def test_dashboard_all_filter_streams_without_status(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(pool, [new_entry(app.id), new_entry(app.id, status="invalid")])

    response, text = await page(client, f"/apps/{app.id}?status=all")

    assert response.status_code == 200
    assert len(event_rows(text)) == 2
    assert sse_connect(text) == (f"/apps/{app.id}/stream", {"after": [str(max(ids))]})


async def test_dashboard_page_is_capped_at_page_size(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(pool, [new_entry(app.id, name=f"e{i}") for i in range(105)])

    _, text = await page(client, f"/apps/{app.id}")

    rows = event_rows(text)
    assert len(rows) == 100
    assert rows[0].attrs["id"] == f"event-{max(ids)}"
    assert rows[-1].cells[1] == "e5"
    assert sse_connect(text)[1]["after"] == [str(max(ids))]


@pytest.mark.parametrize("status", ["bogus", "VALID", "valid' OR 1=1 --", "<script>x</script>"])
async def test_dashboard_unknown_status_filter_answers_400_page(
    client: Client, app: App, status: str
) -> None:
    response = await client.get(f"/apps/{app.id}", query_string={"status": status})
    text = await response.get_data(as_text=True)

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "invalid_filter" in text
    assert "<script>x" not in text


async def test_dashboard_unknown_app_answers_404_page(client: Client) -> None:
    response, text = await page(client, "/apps/no-such-app")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "unknown_app" in text
    assert "no app with id &#39;no-such-app&#39;" in text


async def test_dashboard_unknown_app_id_is_escaped_on_404_page(client: Client) -> None:
    response, text = await page(client, "/apps/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")

    assert response.status_code == 404
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


async def test_dashboard_unknown_page_answers_404_page(client: Client) -> None:
    response, text = await page(client, "/no/such/page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "not_found" in text


# --- hostile data -----------------------------------------------------------------------


async def test_dashboard_hostile_event_data_renders_escaped(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await insert_entries(
        pool,
        [
            new_entry(
                app.id,
                name=hostile,
                status="invalid",
                event_id=f"{hostile}-{index}",
                errors=[error(hostile, "format", f"bad value {hostile}")],
            )
            for index, hostile in enumerate(HOSTILE)
        ],
    )

    response, text = await page(client, f"/apps/{app.id}")

    assert response.status_code == 200
    for raw in RAW_MARKUP:
        assert raw not in text
    for hostile in HOSTILE:
        assert str(escape(hostile)) in text
        assert f'data-event-id="{escape(hostile)}-' in text
    rows = event_rows(text)
    assert [row.cells[1] for row in reversed(rows)] == HOSTILE
    assert [row.cells[3] for row in reversed(rows)] == [f"{h} bad value {h}" for h in HOSTILE]
    assert "49" not in [row.cells[1] for row in rows]


async def test_dashboard_hostile_app_name_renders_escaped(
    client: Client, pool: asyncpg.Pool, clean_db: None
) -> None:
    async with pool.acquire() as conn:
        app = await add_app(conn, "hostile-name", HOSTILE[0] + HOSTILE[3])

    _, index_text = await page(client, "/")
    _, app_text = await page(client, f"/apps/{app.id}")

    for text in (index_text, app_text):
        assert "<script>alert" not in text
        assert "<div hx-get" not in text
        assert str(escape(HOSTILE[0] + HOSTILE[3])) in text


async def test_dashboard_template_expression_in_data_is_not_evaluated(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await insert_entries(pool, [new_entry(app.id, name="{{7*7}}{% raw %}")])

    _, text = await page(client, f"/apps/{app.id}")

    assert [row.cells[1] for row in event_rows(text)] == ["{{7*7}}{% raw %}"]


# --- headers and templates --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/apps/{app}", "/apps/{app}?status=bogus", "/apps/none"])
async def test_dashboard_pages_carry_security_headers(client: Client, app: App, path: str) -> None:
    response = await client.get(path.format(app=app.id))

    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_dashboard_pages_have_no_inline_scripts(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await insert_entries(pool, [new_entry(app.id)])

    for path in ("/", f"/apps/{app.id}"):
        _, text = await page(client, path)
        scripts = re.findall(r"<script\b[^>]*>", text)
        assert scripts
        assert all(re.search(r'\bsrc="/static/', tag) for tag in scripts), scripts
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text)


def test_dashboard_templates_never_mark_data_safe() -> None:
    templates = sorted(TEMPLATES.glob("*"))

    assert templates
    for template in templates:
        assert template.suffix == ".html", f"{template.name} would not be autoescaped"
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b", source), template.name
        assert not re.search(r"autoescape\s+false", source, re.IGNORECASE), template.name
        assert "Markup" not in source, template.name


async def test_dashboard_app_page_shows_each_sdk_pointed_here_with_the_key(
    client: Client, app: App
) -> None:
    response, text = await page(client, f"/apps/{app.id}")

    assert response.status_code == 200
    snippets = html.unescape(text)
    server = "http://localhost"  # the test client's host
    for expected in (
        f'AnalyticsBrowser.load({{ writeKey: "{app.write_key}", cdnURL: "{server}" }})',
        f'posthog.init("{app.write_key}", {{ api_host: "{server}" }})',
        f'amplitude.init("{app.write_key}", {{ serverUrl: "{server}/2/httpapi" }})',
        f'newTracker("sp", "{server}/snowplow/{app.write_key}", {{ appId: "{app.id}" }})',
        f'rudderanalytics.load("{app.write_key}", "{server}", {{ configUrl: "{server}" }})',
        f'Configuration(writeKey: "{app.write_key}").apiHost("localhost/v1")',
        f"curl -X POST {server}/api/logs/{app.id}",
    ):
        assert expected in snippets, expected
