"""Security by default: write keys for ingest, same-origin checks for forms, strict headers."""

from __future__ import annotations

import base64
import binascii
import hmac
import math

from quart import Quart, Response, request

from web.context import Services
from web.core import queries
from web.core.errors import Rejected

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
# Every response carries these unless it set its own.
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
CROSS_ORIGIN_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": (
        "Content-Type, Content-Encoding, Authorization, X-Write-Key, X-LVD-Session"
    ),
    "Access-Control-Allow-Methods": "POST, OPTIONS",
}
# Ingest is called cross-origin by browser SDKs on purpose; everything else is same-origin.
CROSS_ORIGIN_PATHS = ("/api/logs/", "/v1/", "/batch")
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def admit_events(
    svc: Services,
    app: queries.App,
    count: int,
    *,
    authorization: str | None,
    write_key: str | None,
) -> None:
    """The gate every ingest path passes: the app's write key, then its rate limit.

    write_key is the X-Write-Key header or a key found in the body (Segment's writeKey,
    PostHog's api_key); otherwise the Authorization header's Basic user is the key.
    """
    check_write_key(app, authorization, write_key, required=svc.settings.require_write_keys)
    wait = svc.limiter.take(app.id, count)
    if wait is not None:
        retry_after = "60" if wait == float("inf") else str(max(1, math.ceil(wait)))
        raise Rejected(
            429,
            "rate_limited",
            f"app {app.id!r} is sending more than {svc.settings.rate_limit} events per second",
            headers={"Retry-After": retry_after},
        )


def check_write_key(
    app: queries.App,
    authorization: str | None,
    header_key: str | None,
    *,
    required: bool = False,
) -> None:
    """Refuse a wrong key always, and a missing one when the app or the server requires it."""
    presented = header_key or basic_user(authorization)
    if presented is None:
        if app.require_write_key or required:
            raise Rejected(401, "write_key_required", f"app {app.id!r} requires its write key")
        return
    # Constant-time, so response timing reveals nothing about the key.
    if not hmac.compare_digest(presented.encode(), app.write_key.encode()):
        raise Rejected(
            401, "invalid_write_key", f"that write key does not belong to app {app.id!r}"
        )


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic Authorization header; None when it is not Basic.

    Raises ValueError when it claims to be Basic but cannot be decoded.
    """
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("the Authorization header is malformed") from None
    user, _, password = decoded.partition(":")
    return user, password


def basic_user(authorization: str | None) -> str | None:
    """The Basic user name, which SDKs send as the write key; 401 when malformed."""
    try:
        credentials = basic_credentials(authorization)
    except ValueError as exc:
        raise Rejected(401, "invalid_write_key", str(exc)) from None
    return (credentials[0] or None) if credentials else None


def install_security(app: Quart) -> None:
    @app.before_request
    async def refuse_cross_site_writes() -> None:
        # CSRF defence: a browser always says where a request comes from; API clients
        # such as curl send neither header and are not subject to CSRF.
        if request.method not in _UNSAFE_METHODS or request.path.startswith(CROSS_ORIGIN_PATHS):
            return
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get("Origin")
        if site is not None and site not in ("same-origin", "none"):
            raise Rejected(403, "cross_site_request", "cross-site requests may not change state")
        if origin is not None and origin != request.host_url.rstrip("/"):
            raise Rejected(403, "cross_site_request", "cross-origin requests may not change state")

    @app.after_request
    async def add_security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if request.path.startswith(CROSS_ORIGIN_PATHS):
            headers.update(CROSS_ORIGIN_HEADERS)
        return response
