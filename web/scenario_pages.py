"""Scenario pages: the list, the editor (htmx), a run's live view with its stream, its Markdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from quart import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from web.attachments import text_file
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.queries.base import App, Connection
from web.core.queries.pairings import select_live_pairings
from web.core.queries.scenarios import (
    StoredScenario,
    delete_scenario,
    select_scenario,
    select_scenarios,
)
from web.core.scenario_reports import run_markdown
from web.core.scenarios import NAME_PATTERN, Run
from web.scenario_form import Draft
from web.scenario_runs import checked_session, read_run, require_scenario, watch_run
from web.scenarios_api import save_scenario
from web.sse import RETRY_FRAME, sse_frame, sse_response

blueprint = Blueprint("scenario_pages", __name__)

KEEPALIVE_SECONDS = 15.0
# The app's live QA sessions the editor offers to run the scenario against.
LIVE_SESSIONS_SHOWN = 10
_SCENARIO = "/apps/<app_id>/scenarios/<name>"
_RUN = f"{_SCENARIO}/runs/<session>"


@blueprint.get("/apps/<app_id>/scenarios")
async def list_page(app_id: str) -> str:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        found = await select_scenarios(conn, app_id)
    return await render_template("scenarios.html", app=app, scenarios=found, name_error=None)


@blueprint.post("/apps/<app_id>/scenarios")
async def new_scenario(app_id: str) -> Any:
    """Open the editor for a new name (nothing is stored until it is saved)."""
    name = (await request.form).get("name", "").strip()
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        taken = await select_scenario(conn, app_id, name) if NAME_PATTERN.fullmatch(name) else None
        found = await select_scenarios(conn, app_id)
    if not NAME_PATTERN.fullmatch(name) or taken is not None:
        why = "is taken" if taken else "must be 1 to 64 of a-z, 0-9, _ and -"
        page = await render_template(
            "scenarios.html", app=app, scenarios=found, name_error=f"The name {why}."
        )
        return page, 400
    return redirect(url_for("scenario_pages.editor", app_id=app_id, name=name))


@blueprint.get(_SCENARIO)
async def editor(app_id: str, name: str) -> str:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        stored = await select_scenario(conn, app_id, name) if NAME_PATTERN.fullmatch(name) else None
        sessions = await _live_sessions(conn, app_id)
    if stored is None and not NAME_PATTERN.fullmatch(name):
        raise Rejected(404, "unknown_scenario", f"app {app_id!r} has no scenario {name!r}")
    draft = Draft.from_document(name, stored.document) if stored else Draft(name)
    return await _render_editor(app, draft, stored, saved=False, sessions=sessions)


@blueprint.post(_SCENARIO)
async def edit(app_id: str, name: str) -> str:
    """One edit of the form (htmx: the editor alone comes back), checked as it is made;
    the Save button stores it."""
    form = await request.form
    draft = Draft.from_form(name, form)
    action = form.get("action", "check")
    draft.apply(action)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        stored = await select_scenario(conn, app_id, name) if NAME_PATTERN.fullmatch(name) else None
        document, problems = draft.document()
        saved = action == "save" and not problems
        if saved:
            stored, _ = await save_scenario(conn, app_id, name, document)
        sessions = await _live_sessions(conn, app_id)
    partial = request.headers.get("HX-Request") == "true"
    return await _render_editor(app, draft, stored, saved=saved, partial=partial, sessions=sessions)


async def _live_sessions(conn: Connection, app_id: str) -> list[str]:
    """The app's live QA sessions (pairings), newest first: the editor offers to run them."""
    return [p.session for p in await select_live_pairings(conn, app_id, LIVE_SESSIONS_SHOWN)]


async def _render_editor(
    app: App,
    draft: Draft,
    stored: StoredScenario | None,
    *,
    saved: bool,
    partial: bool = False,
    sessions: list[str],
) -> str:
    document, problems = draft.document()
    context = {
        "app": app,
        "draft": draft,
        "stored": stored,
        "saved": saved,
        "sessions": sessions,
        "problems": problems,
        "document_json": orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(),
    }
    return await render_template("_scenario_editor.html" if partial else "scenario.html", **context)


@blueprint.post(f"{_SCENARIO}/delete")
async def delete(app_id: str, name: str) -> Any:
    async with services().pool.acquire() as conn:
        await require_scenario(conn, app_id, name)
        await delete_scenario(conn, app_id, name)
    return redirect(url_for("scenario_pages.list_page", app_id=app_id))


@blueprint.get(f"{_SCENARIO}/run")
async def open_run(app_id: str, name: str) -> Any:
    """The editor's "run against a session" form: to the run's own address."""
    session = checked_session(request.args.get("session", "").strip())
    return redirect(url_for("scenario_pages.run_page", app_id=app_id, name=name, session=session))


@blueprint.get(_RUN)
async def run_page(app_id: str, name: str, session: str) -> str:
    session = checked_session(session)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        stored = await require_scenario(conn, app_id, name)
        run = await read_run(conn, stored, session)
    return await render_template("scenario_run.html", app=app, stored=stored, run=run)


@blueprint.get(f"{_RUN}.md")
async def run_markdown_file(app_id: str, name: str, session: str) -> Response:
    session = checked_session(session)
    async with services().pool.acquire() as conn:
        stored = await require_scenario(conn, app_id, name)
        run = await read_run(conn, stored, session)
    now = datetime.now(UTC)
    text = run_markdown(
        run,
        app_id=app_id,
        revision=stored.revision,
        generated_at=now,
        base_url=request.host_url.rstrip("/"),
    )
    # The session may be anything, so the file's name leaves it out.
    return text_file(text, "text/markdown", f"{app_id}-{name}-run", now, "md")


@blueprint.get(f"{_RUN}/stream")
async def run_stream(app_id: str, name: str, session: str) -> Response:
    """The run's steps over SSE: rendered again each time an event of the session is stored."""
    session = checked_session(session)
    svc = services()
    async with svc.pool.acquire() as conn:
        stored = await require_scenario(conn, app_id, name)

    @stream_with_context
    async def frames() -> AsyncIterator[bytes]:
        yield RETRY_FRAME
        sent = 0
        async with watch_run(svc, stored, session) as watch:
            run: Run | None = await watch.current()
            while True:
                if run is None:
                    yield b": keepalive\n\n"
                else:
                    sent += 1
                    yield await _run_frame(app_id, run, sent)
                run = await watch.changed(KEEPALIVE_SECONDS)

    return sse_response(frames())


async def _run_frame(app_id: str, run: Run, number: int) -> bytes:
    html = await render_template("_scenario_run.html", app_id=app_id, run=run)
    return sse_frame(html, event="run", event_id=number)
