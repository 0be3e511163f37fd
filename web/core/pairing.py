"""Pairing a device with a QA session: session ids, short codes, the QR payload and its image.

"Start a QA session" makes a session id and a short code. The QR code on the pairing page
carries the payload below (docs/PAIRING.md documents it): what a debug build reads to point
its analytics SDK at this server, tagging every event with the session. /p/<code> is the
session's live view for a phone's browser.
"""

from __future__ import annotations

import io
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import segno

from web.core.errors import Rejected
from web.core.queries.base import App, Connection
from web.core.queries.pairings import Pairing, insert_pairing
from web.core.settings import DEFAULT_PUBLIC_URL, is_loopback

# The payload's form; a debug build refuses a version it does not know.
PAYLOAD_VERSION = 1
# Short codes: no 0/o, 1/l (read aloud or typed from a screen without mistakes).
CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
# 10 characters of 32: 50 bits, drawn by `secrets`; they name a page behind sign-in anyway.
CODE_LENGTH = 10
CODE_PATTERN = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
SESSION_SUFFIX_LENGTH = 6
PAIRING_DAYS = 7
# Codes drawn before giving up (a clash is a 1 in 2**50 event per stored pairing).
CODE_TRIES = 5
# The payload's keys, in the order they are written (docs/PAIRING.md).
PAYLOAD_KEYS = ("lvd", "app_id", "session", "ingest_url", "write_key", "live_url", "expires_at")


def new_code() -> str:
    """A short code for /p/<code>: CODE_LENGTH characters of CODE_ALPHABET, from `secrets`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    return CODE_PATTERN.fullmatch(text) is not None


def new_session_id(now: datetime) -> str:
    """A readable session id, `qa-<yyyymmdd>-<6 random characters>`, e.g. qa-20261207-k3m9xq.

    Ingest takes any id of 1 to 100 characters; this one is also safe in a URL path as is.
    """
    suffix = "".join(secrets.choice(CODE_ALPHABET) for _ in range(SESSION_SUFFIX_LENGTH))
    return f"qa-{now:%Y%m%d}-{suffix}"


async def start_pairing(conn: Connection, app_id: str, now: datetime) -> Pairing:
    """A new session for the app, paired with a fresh short code valid PAIRING_DAYS."""
    session = new_session_id(now)
    for _ in range(CODE_TRIES):
        pairing = await insert_pairing(
            conn, code=new_code(), app_id=app_id, session=session, days=PAIRING_DAYS
        )
        if pairing is not None:
            return pairing
    raise Rejected(503, "pairing_unavailable", "no free pairing code was found; try again")


def public_base(public_url: str, request_base: str) -> str:
    """Where a phone reaches this server: LVD_PUBLIC_URL when it is set (to anything but its
    default), else the scheme and host the request came with (as web/proxy.py resolved them)."""
    chosen = public_url if public_url != DEFAULT_PUBLIC_URL else request_base
    return chosen.rstrip("/")


def reachable_from_a_phone(base: str) -> bool:
    """False when the base names this machine only (127.0.0.1, localhost, ::1)."""
    host = urlsplit(base).hostname or ""
    return not is_loopback(host)


def ingest_url(base: str, session: str) -> str:
    """The session-scoped host: any ingest path under it tags events with the session."""
    return f"{base}/v1/session/{quote(session, safe='')}"


def live_url(base: str, code: str) -> str:
    return f"{base}/p/{code}"


def payload(pairing: Pairing, app: App, base: str) -> dict[str, Any]:
    """The QR code's JSON payload, keys in PAYLOAD_KEYS' order (docs/PAIRING.md).

    The write key is always in it: Segment, RudderStack, PostHog and Amplitude SDKs name the
    app by its key alone, and an app that requires its key refuses events without it. It is
    a key to send events, not to read them; this payload is for debug builds only.
    """
    return {
        "lvd": PAYLOAD_VERSION,
        "app_id": app.id,
        "session": pairing.session,
        "ingest_url": ingest_url(base, pairing.session),
        "write_key": app.write_key,
        "live_url": live_url(base, pairing.code),
        "expires_at": pairing.expires_at.replace(microsecond=0).isoformat(),
    }


def payload_text(document: dict[str, Any]) -> str:
    """The payload as the QR code carries it: compact JSON, UTF-8."""
    return orjson.dumps(document).decode()


def payload_pretty(document: dict[str, Any]) -> str:
    """The payload as the page shows it for copying: indented JSON."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def _qr(text: str) -> segno.QRCode:
    # Medium error correction: survives a glare or a scratched screen, still a small code.
    return segno.make_qr(text, error="m", boost_error=False)


def qr_svg(text: str) -> bytes:
    """The QR code as a standalone SVG (no style attributes: the page's CSP forbids them)."""
    out = io.BytesIO()
    _qr(text).save(out, kind="svg", scale=6, border=4, dark="#000", light="#fff", title="QR")
    return out.getvalue()


def qr_png(text: str) -> bytes:
    """The same QR code as a PNG, for screens and tools that prefer pixels."""
    out = io.BytesIO()
    _qr(text).save(out, kind="png", scale=8, border=4, dark="#000", light="#fff")
    return out.getvalue()
