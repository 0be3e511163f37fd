"""POST /api/logs/<app_id>: read, judge and enqueue events, answering 202 with each verdict."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from quart import Blueprint, Response, request

from web.context import Services, services
from web.core import queries
from web.core.directory import AppView
from web.core.errors import Rejected
from web.core.jobs import QueuedEvent
from web.core.parsing import ParsedEvent, parse_events
from web.core.validation import CompiledPlan, validate
from web.core.validation.envelope import event_name_of
from web.security import admit_events

log = logging.getLogger("lvd.ingest")

blueprint = Blueprint("ingest", __name__)

SESSION_HEADER = "X-LVD-Session"
# A judged event: as it goes to the queue, and its errors and warnings for the answer.
Judged = tuple[QueuedEvent, list[dict[str, Any]]]
MAX_SESSION_LENGTH = 100


@dataclass(frozen=True, slots=True)
class IngestCall:
    """What an ingest request says besides its body, however it was read.

    Quart's route and the plain-ASGI fast path (web/ingest_asgi.py) both build one.
    """

    app_id: str
    content_type: str | None
    content_encoding: str | None
    authorization: str | None
    write_key: str | None  # the X-Write-Key header
    session: str | None  # the X-LVD-Session header, else the session query parameter


@blueprint.post("/api/logs/<app_id>")
async def ingest(app_id: str) -> Response:
    # Served by web/ingest_asgi.py in front of Quart; this route answers when that
    # declines (the app mounted under a root path) and gives the URL its OPTIONS and 405.
    raw = await request.get_data(cache=False, as_text=False)
    assert isinstance(raw, bytes)
    call = IngestCall(
        app_id=app_id,
        content_type=request.headers.get("Content-Type"),
        content_encoding=request.headers.get("Content-Encoding"),
        authorization=request.headers.get("Authorization"),
        write_key=request.headers.get("X-Write-Key"),
        session=requested_session(),
    )
    body = await accept_events(services(), call, raw)
    return Response(body, status=202, mimetype="application/json")


async def accept_events(svc: Services, call: IngestCall, raw: bytes) -> bytes:
    """Parse, admit, judge and enqueue a request's events: the 202 body, or Rejected."""
    body = parse_events(
        raw,
        content_type=call.content_type,
        content_encoding=call.content_encoding,
        limits=svc.settings.limits,
    )
    view = await svc.apps.get(call.app_id)
    if view is None:
        raise Rejected(404, "unknown_app", f"no app with id {call.app_id!r}: create it first")
    admit_events(
        svc,
        view.app,
        len(body.events),
        authorization=call.authorization,
        write_key=call.write_key,
    )
    results = await judge_and_enqueue(svc, view, body.events, checked_session(call.session))
    payload: dict[str, Any] = {"results": results} if body.is_batch else results[0]
    return orjson.dumps(payload)


async def judge_and_enqueue(
    svc: Services,
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
    task_id = await svc.enqueuer.enqueue([queued for queued, _ in judged])
    return [_result(queued, issues, task_id) for queued, issues in judged]


def _log_verdicts(app_id: str, judged: Sequence[Judged]) -> None:
    # One event: the quick start's two lines. A batch: two lines for all of it, because a
    # log line per event would cost more CPU than judging the event.
    if not log.isEnabledFor(logging.INFO):
        return
    if len(judged) == 1:
        queued = judged[0][0]
        log.info("Processing event: %s", queued.event_name or "(no name)")
        outcome = "PASSED" if queued.status == "valid" else "FAILED"
        log.info("Validation %s for app_id: %s", outcome, app_id)
        return
    failed = sum(1 for queued, _ in judged if queued.status == "invalid")
    log.info("Processing %d events: %s", len(judged), _names(judged))
    log.info("Validation PASSED %d, FAILED %d for app_id: %s", len(judged) - failed, failed, app_id)


def _names(judged: Sequence[Judged], shown: int = 5) -> str:
    names = [queued.event_name or "(no name)" for queued, _ in judged[:shown]]
    return ", ".join(names) + (", ..." if len(judged) > shown else "")


def _judge(
    app: queries.App,
    plan: CompiledPlan | None,
    parsed: ParsedEvent,
    received_at: str,
    session: str | None,
    judged_as: Callable[[dict[str, Any]], Mapping[str, Any]] | None,
) -> Judged:
    event = parsed.event
    judged = judged_as(event) if judged_as else event
    name = event_name_of(judged)
    verdict = validate(judged, plan)
    shown_name = name if isinstance(name, str) else None
    issues = verdict.issues_as_dicts()
    queued = QueuedEvent(
        app_id=app.id,
        event_id=parsed.event_id or str(uuid.uuid4()),
        event_name=shown_name[:255] if shown_name else None,
        payload=parsed.json or orjson.dumps(event).decode(),
        status=verdict.status,
        errors=orjson.dumps(issues).decode() if issues else "[]",
        plan_version=verdict.plan_version,
        session=session,
        received_at=received_at,
    )
    return queued, issues


def _result(queued: QueuedEvent, issues: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    return {
        "event_id": queued.event_id,
        "event_name": queued.event_name,
        "status": queued.status,
        "errors": issues,
        "task_id": task_id,
        "message": "Event queued for processing",
    }


def requested_session(from_path: str | None = None) -> str | None:
    """The session a Quart request names: in its path, else its header, else its query."""
    return from_path or request.headers.get(SESSION_HEADER) or request.args.get("session")


def checked_session(session: str | None) -> str | None:
    """The test session events belong to, if any; 400 when the id is too long or empty."""
    if session is None:
        return None
    if not 0 < len(session) <= MAX_SESSION_LENGTH:
        raise Rejected(
            400, "invalid_session", f"a session id is 1 to {MAX_SESSION_LENGTH} characters"
        )
    return session
