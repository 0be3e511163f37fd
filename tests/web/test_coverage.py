"""Coverage: planned events seen, missing and unplanned, for a session or a time range; the
sign-off as a page, Markdown and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.dashboard_support import issue, store, stored
from tests.web.support import table_rows
from web.core import plans
from web.core.exports import COVERAGE_COLUMNS, coverage_markdown, md_text
from web.core.insights import build_coverage
from web.core.queries.base import App, NewLogEntry
from web.core.queries.dashboard import NameActivity

PLAN: dict[str, Any] = {
    "events": {
        "app_opened": {"type": "object"},
        "signup": {"type": "object"},
        "checkout": {"type": "object"},
    }
}
HOSTILE = "<script>alert(1)</script> | **bold** [x](javascript:alert(1))"


async def planned_app(pool: asyncpg.Pool, make_app: MakeApp) -> App:
    app = await make_app()
    async with pool.acquire() as conn:
        await plans.save_plan(conn, app.id, PLAN)
    return app


async def fetch(client: Client, path: str, **query: str) -> tuple[int, str, Any]:
    response = await client.get(path, query_string=query)
    return response.status_code, await response.get_data(as_text=True), response.headers


def in_session(app_id: str, session: str, *names: str) -> list[NewLogEntry]:
    """Valid events of these names, sent in one test session."""
    return [stored(app_id, name=name, session=session) for name in names]


def states(page: str, table: str = "planned") -> dict[str, list[str]]:
    start = page.index(f'id="{table}"')
    rows = table_rows(page[start : page.index("</table>", start)])
    return {row.attrs["data-event-name"]: row.cells[1:] for row in rows if row.attrs}


async def test_coverage_session_shows_seen_failing_missing_and_unplanned(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)
    await store(
        pool,
        [
            *in_session(app.id, "qa-1", "app_opened", "app_opened", "signup", "debug_ping"),
            stored(app.id, name="signup", session="qa-1", errors=[issue("/email", "format")]),
            stored(app.id, name=None, session="qa-1", errors=[issue("/eventName", "required")]),
            # Another session: not counted.
            *in_session(app.id, "qa-2", "checkout"),
        ],
    )

    status, page, _ = await fetch(client, f"/apps/{app.id}/coverage", session="qa-1")

    assert status == 200
    planned = states(page)
    assert list(planned) == ["app_opened", "signup", "checkout"]  # the plan's order
    assert planned["app_opened"][:3] == ["seen, all valid", "2", "0"]
    assert planned["signup"][:3] == ["seen, some invalid", "2", "1"]
    assert planned["checkout"] == ["missing", "0", "0", "\N{EN DASH}"]
    assert {name: cells[:2] for name, cells in states(page, "unplanned").items()} == {
        "debug_ping": ["1", "0"]
    }
    assert "Not ready to sign off" in page
    assert "test session qa-1" in page
    assert '<dd id="count-seen">2 / 3 <small>(67 %)</small></dd>' in page


async def test_coverage_all_seen_and_valid_is_ready(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)
    await store(pool, in_session(app.id, "ok", "app_opened", "signup", "checkout"))

    _, page, _ = await fetch(client, f"/apps/{app.id}/coverage", session="ok")

    assert "Every planned event seen, all valid, nothing unplanned." in page


async def test_coverage_time_range_and_default_last_day(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)
    now = datetime.now(UTC)
    await store(
        pool,
        [
            stored(app.id, name="app_opened", received_at=now - timedelta(hours=1)),
            stored(app.id, name="signup", received_at=now - timedelta(hours=30)),
        ],
    )
    since = (now - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%S")
    until = (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")

    _, default, _ = await fetch(client, f"/apps/{app.id}/coverage")
    _, ranged, _ = await fetch(client, f"/apps/{app.id}/coverage", since=since, until=until)

    assert [s[0] for s in states(default).values()] == ["seen, all valid", "missing", "missing"]
    assert "last 24 hours (from " in default
    assert [s[0] for s in states(ranged).values()] == ["missing", "seen, all valid", "missing"]


async def test_coverage_without_plan_says_it_cannot_judge(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    await store(pool, [stored(app.id, name="anything")])

    _, page, _ = await fetch(client, f"/apps/{app.id}/coverage")

    assert "nothing is planned, so coverage cannot be judged" in page
    assert list(states(page, "unplanned")) == ["anything"]


async def test_coverage_markdown_download_is_a_sign_off(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)
    await store(pool, in_session(app.id, "qa-3", "signup", HOSTILE))

    status, text, headers = await fetch(client, f"/apps/{app.id}/coverage.md", session="qa-3")

    assert status == 200
    assert headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert headers["Content-Disposition"].startswith(f'attachment; filename="{app.id}-coverage-')
    assert "- Scope: test session qa\\-3" not in text  # '-' is left alone
    assert "- Scope: test session qa-3" in text
    assert "- Planned events seen: 1 of 3 (33 %)" in text
    assert "| signup | OK: seen, all valid | 1 | 0 |" in text
    assert "| app\\_opened | MISSING: missing | 0 | 0 | - |" in text
    assert "Signed off by:" in text
    assert "<script>" not in text
    hostile_line = next(line for line in text.splitlines() if "EXTRA" in line)
    assert hostile_line.count(" | ") == 4  # the name's pipe is escaped, so the table holds
    assert "&lt;script&gt;" in hostile_line and "\\[x\\]" in hostile_line


async def test_coverage_csv_download_neutralises_formulas(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)
    await store(pool, in_session(app.id, "qa-4", '=HYPERLINK("http://x")'))

    status, text, headers = await fetch(client, f"/apps/{app.id}/coverage.csv", session="qa-4")

    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COVERAGE_COLUMNS)
    assert [row[:4] for row in rows[1:]] == [
        ["app_opened", "yes", "missing", "0"],
        ["signup", "yes", "missing", "0"],
        ["checkout", "yes", "missing", "0"],
        ['\'=HYPERLINK("http://x")', "no", "not in the plan", "1"],
    ]


@pytest.mark.parametrize(
    "query",
    [{"since": "yesterday"}, {"since": "2025-12-11T00:00:00Z", "until": "2025-12-10T00:00:00Z"}],
)
async def test_coverage_bad_scope_is_400(client: Client, app: App, query: dict[str, str]) -> None:
    status, page, _ = await fetch(client, f"/apps/{app.id}/coverage", **query)

    assert status == 400
    assert "invalid_filter" in page


async def test_coverage_page_links_downloads_and_print(
    client: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await planned_app(pool, make_app)

    _, page, _ = await fetch(client, f"/apps/{app.id}/coverage", session="qa-9")

    assert f'href="/apps/{app.id}/coverage.md?session=qa-9" download' in page
    assert f'href="/apps/{app.id}/coverage.csv?session=qa-9" download' in page
    assert "data-print" in page
    assert (await client.get("/apps/nope/coverage")).status_code == 404


def test_build_coverage_ignores_unnamed_and_keeps_plan_order() -> None:
    at = datetime(2025, 12, 10, tzinfo=UTC)
    activity = [
        NameActivity(None, 3, 3, at, at),
        NameActivity("b", 1, 0, at, at),
        NameActivity("z", 2, 1, at, at),
    ]

    report = build_coverage(["c", "b", "a"], activity)

    assert [(row.event_name, row.state) for row in report.planned] == [
        ("c", "missing"),
        ("b", "seen"),
        ("a", "missing"),
    ]
    assert [row.event_name for row in report.unplanned] == ["z"]
    assert (report.unnamed, report.seen, report.missing, report.signed_off) == (3, 1, 2, False)
    text = coverage_markdown(
        report,
        app_name="A",
        app_id="a",
        scope="s",
        plan_version=None,
        generated_at=at,
        view_url="http://h/x",
    )
    assert "- Tracking plan: none" in text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a|b", "a\\|b"),
        ("<b>&", "&lt;b&gt;&amp;"),
        ("line\nbreak", "line break"),
        ("`code` *x* _y_ [l](u) #h !i ~s", "\\`code\\` \\*x\\* \\_y\\_ \\[l\\](u) \\#h \\!i \\~s"),
    ],
)
def test_md_text_escapes_markdown_and_html(raw: str, shown: str) -> None:
    assert md_text(raw) == shown
