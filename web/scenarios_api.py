"""Scenario API: list, get, save and delete scenarios; a run's report, long-polled if asked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response, jsonify, request

from web.api_types import refuse_null_characters
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.plans import reject_problems
from web.core.queries.base import Connection
from web.core.queries.scenarios import (
    StoredScenario,
    delete_scenario,
    select_scenarios,
    upsert_scenario,
)
from web.core.scenario_reports import run_json
from web.core.scenarios import NAME_PATTERN, Run, check_scenario
from web.query_api import MAX_WAIT_SECONDS
from web.requests import json_body
from web.scenario_runs import checked_session, read_run, require_scenario, watch_run
from web.security import refuse_other_sites

blueprint = Blueprint("scenarios_api", __name__)
blueprint.before_request(refuse_other_sites)

_SCENARIO = "/api/apps/<app_id>/scenarios/<name>"


def scenario_json(stored: StoredScenario) -> dict[str, Any]:
    """A SavedScenario (web/openapi_scenarios.py)."""
    return {
        "app_id": stored.app_id,
        "name": stored.name,
        "revision": stored.revision,
        "created_at": stored.created_at.isoformat(),
        "updated_at": stored.updated_at.isoformat(),
        "scenario": stored.document,
    }


def entry_json(stored: StoredScenario) -> dict[str, Any]:
    """A ScenarioEntry: what the list shows of a scenario."""
    steps = stored.document.get("steps", [])
    return {
        "name": stored.name,
        "description": stored.document.get("description", ""),
        "steps": [step["event"] for step in steps],
        "revision": stored.revision,
        "updated_at": stored.updated_at.isoformat(),
    }


async def save_scenario(
    conn: Connection, app_id: str, name: str, document: Any
) -> tuple[StoredScenario, bool]:
    """Check and save; Rejected 400 invalid_scenario with every problem located."""
    refuse_null_characters(document)
    reject_problems("invalid_scenario", "scenario", check_scenario(document, name))
    # The file in git carries its name; the stored document does too, first.
    named = {"name": name, **{k: v for k, v in document.items() if k != "name"}}
    async with conn.transaction():
        await require_app(conn, app_id)
        return await upsert_scenario(conn, app_id, name, named)


@blueprint.get("/api/apps/<app_id>/scenarios")
async def list_scenarios(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        found = await select_scenarios(conn, app_id)
    return jsonify({"scenarios": [entry_json(stored) for stored in found]})


@blueprint.get(_SCENARIO)
async def get_scenario(app_id: str, name: str) -> Response:
    async with services().pool.acquire() as conn:
        stored = await require_scenario(conn, app_id, name)
    return jsonify(scenario_json(stored))


@blueprint.put(_SCENARIO)
async def put_scenario(app_id: str, name: str) -> Response:
    document = await json_body()
    if not NAME_PATTERN.fullmatch(name):
        raise Rejected(400, "invalid_scenario_name", "a name is 1 to 64 of a-z, 0-9, _ and -")
    async with services().pool.acquire() as conn:
        stored, created = await save_scenario(conn, app_id, name, document)
    response = jsonify(scenario_json(stored))
    response.status_code = 201 if created else 200
    return response


@blueprint.delete(_SCENARIO)
async def remove_scenario(app_id: str, name: str) -> Response:
    async with services().pool.acquire() as conn:
        await require_scenario(conn, app_id, name)
        await delete_scenario(conn, app_id, name)
    return Response(status=204)


@blueprint.get(f"{_SCENARIO}/runs/<session>")
async def run_report(app_id: str, name: str, session: str) -> Response:
    """The run's report now, or, with ?wait=<s>, once it is decided or the wait is over."""
    session = checked_session(session)
    wait = _wait_arg()
    async with services().pool.acquire() as conn:
        stored = await require_scenario(conn, app_id, name)
        run = None if wait else await read_run(conn, stored, session)
    if run is None:
        run = await _decided_run(stored, session, wait)
    return jsonify(
        run_json(run, app_id=app_id, revision=stored.revision, generated_at=datetime.now(UTC))
    )


async def _decided_run(stored: StoredScenario, session: str, wait: float) -> Run:
    """Waits on the hub (no polling of the database) until the run is decided or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with watch_run(services(), stored, session) as watch:
        run = await watch.current()
        while not run.decided:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            run = await watch.changed(remaining) or run
    return run


def _wait_arg() -> float:
    raw = request.args.get("wait")
    if raw is None or raw == "":
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN fails this too
        raise Rejected(
            400, "invalid_wait", f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}"
        )
    return seconds
