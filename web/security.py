"""Security by default: same-origin checks for forms, strict headers on every answer."""

from __future__ import annotations

from quart import Quart, Response, request

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
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def from_another_site() -> bool:
    """Whether a browser says this request comes from a web page of another site.

    A browser always says where a request comes from (Sec-Fetch-Site, Origin); API clients
    such as curl send neither header, and are not a page of another site.
    """
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    return (site is not None and site not in ("same-origin", "none")) or (
        origin is not None and origin != request.host_url.rstrip("/")
    )


def install_security(app: Quart) -> None:
    @app.before_request
    async def refuse_cross_site_writes() -> None:
        # CSRF defence. Ingest, the one thing that answers other sites, never gets here:
        # web/ingest.py serves its routes in front of Quart.
        if request.method in _UNSAFE_METHODS and from_another_site():
            raise Rejected(403, "cross_site_request", "cross-site requests may not change state")

    @app.after_request
    async def add_security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        return response


async def refuse_other_sites() -> None:
    """Stored events are readable only by clients that are not web pages of another site.

    Ingest answers every origin so browser SDKs can post; without this check any site a
    tester visits could read or reset their events. A blueprint's before_request.
    """
    if from_another_site():
        raise Rejected(403, "cross_site_request", "the query API answers same-origin requests only")
