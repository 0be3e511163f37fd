"""POST /api/logs/<app_id>: read, judge and enqueue events, answering 202 with each verdict."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from quart import Blueprint, Response, request

from web.context import services
from web.core import queries
from web.core.directory import AppView
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
    admit_events(view.app, len(body.events))
    results = await judge_and_enqueue(view, body.events, request_session())
    payload: dict[str, Any] = {"results": results} if body.is_batch else results[0]
    return Response(orjson.dumps(payload), status=202, mimetype="application/json")


async def judge_and_enqueue(
    view: AppView,
    events: Sequence[ParsedEvent],
    session: str | None,
    judged_as: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Judge events by the app's plan and enqueue them in one message: one result per event.

    judged_as gives the view of an event that is judged and named (an SDK's identify call
    is named by its type); the event as sent is what is stored.
    """
    received_at = datetime.now(UTC).isoformat()
    judged = [
        _judge(view.app, view.plan, parsed, received_at, session, judged_as) for parsed in events
    ]
    _log_verdicts(view.app.id, judged)
    task_id = await services().enqueuer.enqueue([queued for queued, _ in judged])
    return [_result(queued, verdict, task_id) for queued, verdict in judged]


def _log_verdicts(app_id: str, judged: Sequence[tuple[QueuedEvent, Verdict]]) -> None:
    # One event: the quick start's two lines. A batch: two lines for all of it, because a
    # log line per event would cost more CPU than judging the event.
    if not log.isEnabledFor(logging.INFO):
        return
    if len(judged) == 1:
        queued, verdict = judged[0]
        log.info("Processing event: %s", queued.event_name or "(no name)")
        outcome = "PASSED" if verdict.status == "valid" else "FAILED"
        log.info("Validation %s for app_id: %s", outcome, app_id)
        return
    failed = sum(1 for _, verdict in judged if verdict.status == "invalid")
    log.info("Processing %d events: %s", len(judged), _names(judged))
    log.info("Validation PASSED %d, FAILED %d for app_id: %s", len(judged) - failed, failed, app_id)


def _names(judged: Sequence[tuple[QueuedEvent, Verdict]], shown: int = 5) -> str:
    names = [queued.event_name or "(no name)" for queued, _ in judged[:shown]]
    return ", ".join(names) + (", ..." if len(judged) > shown else "")


def _judge(
    app: queries.App,
    plan: CompiledPlan | None,
    parsed: ParsedEvent,
    received_at: str,
    session: str | None,
    judged_as: Callable[[dict[str, Any]], Mapping[str, Any]] | None,
) -> tuple[QueuedEvent, Verdict]:
    event = parsed.event
    judged = judged_as(event) if judged_as else event
    name = event_name_of(judged)
    verdict = validate(judged, plan)
    shown_name = name if isinstance(name, str) else None
    queued = QueuedEvent(
        app_id=app.id,
        event_id=parsed.event_id or str(uuid.uuid4()),
        event_name=shown_name[:255] if shown_name else None,
        payload=parsed.json or orjson.dumps(event).decode(),
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


def request_session(from_path: str | None = None) -> str | None:
    """The test session the request's events belong to: from its path, header or query."""
    session = from_path or request.headers.get(SESSION_HEADER) or request.args.get("session")
    if session is None:
        return None
    if not 0 < len(session) <= MAX_SESSION_LENGTH:
        raise Rejected(
            400, "invalid_session", f"a session id is 1 to {MAX_SESSION_LENGTH} characters"
        )
    return session
