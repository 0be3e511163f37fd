"""POST /api/logs/<app_id>: read, judge and enqueue events, answering 202 with each verdict."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from quart import Blueprint, Response, request

from web.context import services
from web.core import queries
from web.core.errors import Rejected
from web.core.jobs import QueuedEvent
from web.core.parsing import ParsedEvent, parse_events
from web.core.validation import CompiledPlan, Verdict, validate
from web.core.validation.envelope import event_name_of
from web.security import admit_events

log = logging.getLogger("lvd.ingest")

blueprint = Blueprint("ingest", __name__)

SESSION_HEADER = "X-LVD-Session"
MAX_SESSION_LENGTH = 100


@blueprint.post("/api/logs/<app_id>")
async def ingest(app_id: str) -> Response:
    settings = services().settings
    raw = await request.get_data(cache=False, as_text=False)
    assert isinstance(raw, bytes)
    body = parse_events(
        raw,
        content_type=request.headers.get("Content-Type"),
        content_encoding=request.headers.get("Content-Encoding"),
        limits=settings.limits,
    )
    view = await services().apps.get(app_id)
    if view is None:
        raise Rejected(404, "unknown_app", f"no app with id {app_id!r}: create it first")
    app = view.app
    admit_events(app, len(body.events))

    received_at = datetime.now(UTC).isoformat()
    session = _session()
    judged = [_judge(app, view.plan, parsed, received_at, session) for parsed in body.events]
    task_id = await services().enqueuer.enqueue([queued for queued, _ in judged])

    results = [_result(queued, verdict, task_id) for queued, verdict in judged]
    payload: dict[str, Any] = {"results": results} if body.is_batch else results[0]
    return Response(orjson.dumps(payload), status=202, mimetype="application/json")


def _judge(
    app: queries.App,
    plan: CompiledPlan | None,
    parsed: ParsedEvent,
    received_at: str,
    session: str | None,
) -> tuple[QueuedEvent, Verdict]:
    event = parsed.event
    name = event_name_of(event)
    verdict = validate(event, plan)
    shown_name = name if isinstance(name, str) else None
    log.info("Processing event: %s", shown_name or "(no name)")
    log.info(
        "Validation %s for app_id: %s", "PASSED" if verdict.status == "valid" else "FAILED", app.id
    )
    queued = QueuedEvent(
        app_id=app.id,
        event_id=parsed.event_id or str(uuid.uuid4()),
        event_name=shown_name[:255] if shown_name else None,
        payload=orjson.dumps(event).decode(),
        status=verdict.status,
        errors=orjson.dumps(verdict.issues_as_dicts()).decode(),
        plan_version=verdict.plan_version,
        session=session,
        received_at=received_at,
    )
    return queued, verdict


def _result(queued: QueuedEvent, verdict: Verdict, task_id: str) -> dict[str, Any]:
    return {
        "event_id": queued.event_id,
        "event_name": queued.event_name,
        "status": verdict.status,
        "errors": verdict.issues_as_dicts(),
        "task_id": task_id,
        "message": "Event queued for processing",
    }


def _session() -> str | None:
    session = request.headers.get(SESSION_HEADER) or request.args.get("session")
    if session is None:
        return None
    if not 0 < len(session) <= MAX_SESSION_LENGTH:
        raise Rejected(
            400, "invalid_session", f"a session id is 1 to {MAX_SESSION_LENGTH} characters"
        )
    return session
