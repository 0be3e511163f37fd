"""Dead letters: events that could not be stored, with their reasons, and sending them again."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from typing_extensions import TypedDict
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.api_types import MAX_INT8, Count, Int8, Timestamp, whole_number
from web.context import services
from web.core.errors import Rejected
from web.core.queries.dead_letters import (
    DeadLetter,
    count_dead_letters,
    lock_pending_dead_letters,
    mark_dead_letters_retried,
    select_dead_letters,
)
from web.core.queue.contract import QueuedEvent
from web.requests import json_body

blueprint = Blueprint("dead_letters", __name__)

SHOWN = 200
_EVENT_FIELDS = frozenset(QueuedEvent.__dataclass_fields__)


class DeadLetterEntry(TypedDict):
    """An event the worker could not store, and why."""

    id: Int8
    message_id: str
    app_id: str | None
    event_id: str | None
    event: dict[str, Any]
    reason: str
    attempts: Count
    created_at: Timestamp
    retried_at: Timestamp | None


class DeadLetterList(TypedDict):
    """How many dead letters wait, and the newest (pending only, unless ?all=1)."""

    pending: Count
    dead_letters: list[DeadLetterEntry]


class RetryRequest(TypedDict, total=False):
    """The ids of the dead letters to send through the queue again (an id that is not a
    pending dead letter's is skipped)."""

    ids: list[int]


class RetryResult(TypedDict):
    """How many were sent again, how many cannot be (an event from before the queue's
    contract), and the queue message that carries them."""

    sent: Count
    not_retryable: Count
    task_id: str | None


def as_json(letter: DeadLetter) -> DeadLetterEntry:
    return {
        "id": letter.id,
        "message_id": letter.message_id,
        "app_id": letter.app_id,
        "event_id": letter.event_id,
        "event": letter.event,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "created_at": letter.created_at.isoformat(),
        "retried_at": letter.retried_at.isoformat() if letter.retried_at else None,
    }


async def retry(ids: list[int]) -> tuple[int, int, str | None]:
    """Send dead letters through the queue again: (sent, not retryable, queue message id).

    The rows stay locked while their events are enqueued, and are marked only if the
    enqueue succeeds: a failed retry leaves them pending, a concurrent one skips them.
    """
    svc = services()
    async with svc.pool.acquire() as conn, conn.transaction():
        letters = await lock_pending_dead_letters(conn, ids)
        retryable = [letter for letter in letters if letter.event.keys() >= _EVENT_FIELDS]
        task_id = None
        if retryable:
            task_id = await svc.enqueuer.enqueue(
                [QueuedEvent(**{k: letter.event[k] for k in _EVENT_FIELDS}) for letter in retryable]
            )
            await mark_dead_letters_retried(conn, [letter.id for letter in retryable])
    return len(retryable), len(letters) - len(retryable), task_id


def parse_retry_ids(body: dict[str, Any]) -> list[int]:
    """The ids a RetryRequest body names; Rejected (400 invalid_ids) unless whole numbers.

    An id beyond bigint names no dead letter: skipped, as any id that is not pending is.
    """
    given = body.get("ids", [])
    if not isinstance(given, list) or not all(whole_number(value) for value in given):
        raise Rejected(400, "invalid_ids", "ids must be a list of dead letter ids")
    return [value for value in given if 1 <= value <= MAX_INT8]


@blueprint.get("/dead-letters")
async def page() -> str:
    async with services().pool.acquire() as conn:
        letters = await select_dead_letters(conn, pending_only=False, limit=SHOWN)
    return await render_template(
        "dead_letters.html", letters=letters, notice=request.args.get("notice")
    )


@blueprint.post("/dead-letters/retry")
async def retry_form() -> WerkzeugResponse:
    form = await request.form
    ids = [int(value) for value in form.getlist("id") if value.isdigit()]
    sent, skipped, _ = await retry(ids)
    notice = f"Sent {sent} event(s) again" + (f"; {skipped} cannot be retried" if skipped else "")
    return redirect(url_for("dead_letters.page", notice=notice), 303)


@blueprint.get("/api/dead-letters")
async def list_api() -> Response:
    pending_only = request.args.get("all") != "1"
    async with services().pool.acquire() as conn:
        letters = await select_dead_letters(conn, pending_only=pending_only, limit=SHOWN)
        pending = await count_dead_letters(conn)
    answer: DeadLetterList = {"pending": pending, "dead_letters": [as_json(x) for x in letters]}
    return jsonify(answer)


@blueprint.post("/api/dead-letters/retry")
async def retry_api() -> Response:
    sent, skipped, task_id = await retry(parse_retry_ids(await json_body()))
    answer: RetryResult = {"sent": sent, "not_retryable": skipped, "task_id": task_id}
    return jsonify(answer)
