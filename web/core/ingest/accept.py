"""The one ingest path every wire format shares: find the app, admit, judge, enqueue, answer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from web.core.directory import AppDirectory, AppView
from web.core.errors import RETRY_AFTER_SECONDS, Rejected
from web.core.ingest.admission import admit, find_app
from web.core.ingest.budget import JudgingBudget, NoTurn
from web.core.ingest.wire import Answer, Delivery, JudgedAs, WireFormat, WireRequest
from web.core.parsing import ParsedEvent
from web.core.queue.contract import QueuedEvent
from web.core.queue.enqueuer import BatchingEnqueuer, EnqueueUnavailable
from web.core.ratelimit import RateLimiter
from web.core.settings import Limits, Settings
from web.core.validation import CompiledPlan, validate
from web.core.validation.envelope import event_name_of
from web.core.validation.hygiene import add_hygiene

log = logging.getLogger("lvd.ingest")

SESSION_HEADER = "X-LVD-Session"
MAX_SESSION_LENGTH = 100
# A judged event: as it goes to the queue, and its errors and warnings for the answer.
Judged = tuple[QueuedEvent, list[dict[str, Any]]]


class IngestServices(Protocol):
    """What ingest needs of a web process's services (web.context.Services has them)."""

    settings: Settings
    apps: AppDirectory
    enqueuer: BatchingEnqueuer
    limiter: RateLimiter
    judging: JudgingBudget


async def accept(
    svc: IngestServices, formats: Sequence[WireFormat], request: WireRequest
) -> tuple[WireFormat, Answer]:
    """Answer an ingest request in the words of its format; refusals are answers too.

    `formats` are the ones whose route matched (usually one); the first whose body shape
    it recognises reads it. Returns the format that answered, for the metrics label.
    Nothing is parsed before the request has its turn (web/core/ingest/budget.py).
    """
    try:
        async with svc.judging.turn(len(request.body), within=svc.settings.enqueue_timeout):
            return await _accept_in_turn(svc, formats, request)
    except NoTurn:
        busy = Rejected(
            503,
            "busy",
            "this server has more events to judge than it can take in time; nothing was"
            " stored, retry",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        return formats[0], formats[0].refused(busy)


async def _accept_in_turn(
    svc: IngestServices, formats: Sequence[WireFormat], request: WireRequest
) -> tuple[WireFormat, Answer]:
    fmt = formats[0]
    delivery: Delivery | None = None
    try:
        limits = fmt.limits(svc.settings.limits)
        if len(formats) == 1:
            value = fmt.decode(request, limits)
        else:
            # The body is read under the most generous limits of the formats it may be.
            widest = max((f.limits(svc.settings.limits) for f in formats), key=_request_bytes)
            value = fmt.decode(request, widest)
            fmt = next((f for f in formats if f.recognises(value)), fmt)
            limits = fmt.limits(svc.settings.limits)
        delivery = fmt.deliver(value, request, limits)
        view = await find_app(svc.apps, delivery)
        admit(
            view.app,
            delivery,
            svc.limiter,
            keys_required=svc.settings.require_write_keys,
            rate_limit=svc.settings.rate_limit,
        )
        session = checked_session(requested_session(request))
        results = await judge_and_enqueue(svc, view, delivery.events, session, delivery.judged_as)
        return fmt, fmt.accepted(request, delivery, results)
    except Rejected as exc:
        return fmt, fmt.refused(exc, delivery)
    except EnqueueUnavailable as exc:
        unavailable = Rejected(
            503, "queue_unavailable", str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
        return fmt, fmt.refused(unavailable, delivery)


def _request_bytes(limits: Limits) -> int:
    return limits.max_request_bytes


def requested_session(request: WireRequest) -> str | None:
    """The session a request names: in its path, else its header, else its query."""
    return (
        request.path_session
        or request.header(SESSION_HEADER.lower())
        or request.query.get("session")
    )


def checked_session(session: str | None) -> str | None:
    """The test session events belong to, if any; 400 when the id is too long or empty."""
    if session is None:
        return None
    if not 0 < len(session) <= MAX_SESSION_LENGTH:
        raise Rejected(
            400, "invalid_session", f"a session id is 1 to {MAX_SESSION_LENGTH} characters"
        )
    return session


async def judge_and_enqueue(
    svc: IngestServices,
    view: AppView,
    events: Sequence[ParsedEvent],
    session: str | None,
    judged_as: JudgedAs | None = None,
) -> list[dict[str, Any]]:
    """Judge events by the app's plan and enqueue them in one message: one result per event."""
    received_at = datetime.now(UTC).isoformat()
    hygiene = view.app.hygiene_checks
    judged = [
        _judge(view.app.id, view.plan, parsed, received_at, session, judged_as, hygiene)
        for parsed in events
    ]
    _log_verdicts(view.app.id, judged)
    task_id = await svc.enqueuer.enqueue([queued for queued, _ in judged])
    return [_result(queued, issues, task_id) for queued, issues in judged]


def _judge(
    app_id: str,
    plan: CompiledPlan | None,
    parsed: ParsedEvent,
    received_at: str,
    session: str | None,
    judged_as: JudgedAs | None,
    hygiene: bool = False,
) -> Judged:
    event = parsed.event
    judged = judged_as(event) if judged_as else event
    name = event_name_of(judged)
    verdict = validate(judged, plan)
    if hygiene:
        # The event as sent (its paths are the stored payload's), read and sized as stored.
        add_hygiene(verdict, event, parsed.json or None)
    shown_name = name if isinstance(name, str) else None
    issues = verdict.issues_as_dicts()
    queued = QueuedEvent(
        app_id=app_id,
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
