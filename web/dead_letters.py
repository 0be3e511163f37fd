"""Dead letters: events that could not be stored, with their reasons, and sending them again."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.context import services
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


def as_json(letter: DeadLetter) -> dict[str, Any]:
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
    return jsonify({"pending": pending, "dead_letters": [as_json(x) for x in letters]})


@blueprint.post("/api/dead-letters/retry")
async def retry_api() -> Response:
    body = await json_body()
    ids = [value for value in body.get("ids", []) if isinstance(value, int)]
    sent, skipped, task_id = await retry(ids)
    return jsonify({"sent": sent, "not_retryable": skipped, "task_id": task_id})
