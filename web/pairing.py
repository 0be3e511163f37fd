"""Pairing a device: "Start a QA session", its pairing page (QR code, short URL) and /p/<code>.

Every page here is a dashboard page: behind sign-in when sign-in is on (web/auth.py), like
the rest. The QR code carries the app's write key, so its images are never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from web.context import services
from web.core import pairing as pairing_core
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.filters import EventFilter
from web.core.queries.base import App, LogEntry
from web.core.queries.events import select_log_entries
from web.core.queries.pairings import (
    Pairing,
    delete_expired_pairings,
    select_live_pairing,
    select_live_pairings,
)
from web.dashboard import ROW_CAP_PAGES

blueprint = Blueprint("pairing", __name__)

# The app's other live QA sessions listed on a pairing page, at most.
OTHER_SESSIONS = 10


@dataclass(frozen=True, slots=True)
class Paired:
    """A live pairing with its app and the session's newest events, as the pages show them."""

    pairing: Pairing
    app: App
    entries: list[LogEntry]
    more: bool
    filters: EventFilter


def unknown_pairing() -> Rejected:
    return Rejected(
        404, "unknown_pairing", "no QA session has this short code, or its pairing expired"
    )


@blueprint.post("/apps/<app_id>/pairings")
async def start_session(app_id: str) -> WerkzeugResponse:
    """Start a QA session: a new session id and short code, then its pairing page."""
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        await delete_expired_pairings(conn)
        pairing = await pairing_core.start_pairing(conn, app_id, datetime.now(UTC))
    return redirect(url_for("pairing.pairing_page", code=pairing.code), 303)


@blueprint.get("/pairing/<code>")
async def pairing_page(code: str) -> str:
    paired = await _load(code, with_entries=True)
    base = _base()
    document = pairing_core.payload(paired.pairing, paired.app, base)
    async with services().pool.acquire() as conn:
        recent = await select_live_pairings(conn, paired.app.id, OTHER_SESSIONS + 1)
    return await render_template(
        "pairing.html",
        others=[other for other in recent if other.code != code][:OTHER_SESSIONS],
        payload=document,
        payload_pretty=pairing_core.payload_pretty(document),
        reachable=pairing_core.reachable_from_a_phone(base),
        **_live_context(paired),
    )


@blueprint.get("/p/<code>")
async def session_live(code: str) -> str:
    """The session's live view for a phone's browser: the short URL the QR page gives."""
    paired = await _load(code, with_entries=True)
    return await render_template("pairing_live.html", **_live_context(paired))


@blueprint.get("/pairing/<code>/qr.svg")
async def qr_svg(code: str) -> Response:
    text = await _payload_text(code)
    return _image(pairing_core.qr_svg(text), "image/svg+xml")


@blueprint.get("/pairing/<code>/qr.png")
async def qr_png(code: str) -> Response:
    text = await _payload_text(code)
    return _image(pairing_core.qr_png(text), "image/png")


async def _payload_text(code: str) -> str:
    paired = await _load(code, with_entries=False)
    return pairing_core.payload_text(pairing_core.payload(paired.pairing, paired.app, _base()))


def _image(body: bytes, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    # It carries the write key: no shared cache, no copy left behind.
    response.headers["Cache-Control"] = "no-store"
    return response


def _base() -> str:
    return pairing_core.public_base(services().settings.public_url, request.host_url)


async def _load(code: str, *, with_entries: bool) -> Paired:
    if not pairing_core.is_code(code):
        raise unknown_pairing()
    svc = services()
    page_size = svc.settings.page_size
    async with svc.pool.acquire() as conn:
        pairing = await select_live_pairing(conn, code)
        if pairing is None:
            raise unknown_pairing()
        app = await require_app(conn, pairing.app_id)
        filters = EventFilter(session=pairing.session)
        entries = (
            await select_log_entries(conn, app.id, filters=filters, limit=page_size + 1)
            if with_entries
            else []
        )
    more, entries = len(entries) > page_size, entries[:page_size]
    return Paired(pairing, app, entries, more, filters)


def _live_context(paired: Paired) -> dict[str, Any]:
    """What templates/_live_events.html needs: the rows, and where the stream starts."""
    page_size = services().settings.page_size
    return {
        "pairing": paired.pairing,
        "app": paired.app,
        "entries": paired.entries,
        "filters": paired.filters,
        "more": paired.more,
        # The stream starts after the newest row shown, so nothing falls between the two.
        "after_id": paired.entries[0].id if paired.entries else 0,
        "page_size": page_size,
        "row_cap": page_size * ROW_CAP_PAGES,
        "server_now_ms": int(datetime.now(UTC).timestamp() * 1000),
        "live_url": pairing_core.live_url(_base(), paired.pairing.code),
    }
