"""Sign-in for the dashboard and management API, required whenever the server is exposed."""

from __future__ import annotations

import re

from quart import (
    Blueprint,
    Quart,
    Response,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from quart.sessions import SecureCookieSessionInterface
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.context import services
from web.core.errors import Rejected
from web.core.ingest.wire import basic_credentials
from web.core.users import authenticate

blueprint = Blueprint("auth", __name__)

# Reachable without signing in: health probes, the sign-in page, static files and the API
# description. (Ingest, which has write keys, is answered before Quart: web/ingest.py.)
_OPEN_PATHS = re.compile(r"^/(healthz|readyz|login|static/.*|openapi\.json)$")


class SessionCookies(SecureCookieSessionInterface):
    """Session cookies marked Secure whenever the browser came over HTTPS.

    Behind a TLS proxy the server listens on loopback, where LVD_SECURE_COOKIES is off by
    default; the request's scheme (web/proxy.py believes the proxy's) still says HTTPS.
    """

    def get_cookie_secure(self, app: Quart) -> bool:
        configured: bool = app.config["SESSION_COOKIE_SECURE"]
        return configured or (has_request_context() and request.scheme == "https")


def install_auth(app: Quart) -> None:
    app.session_interface = SessionCookies()

    @app.before_request
    async def require_sign_in() -> Response | WerkzeugResponse | None:
        if not services().settings.require_login or _is_open(request.path):
            return None
        if session.get("user") or await _basic_auth_user():
            return None
        if request.path.startswith("/api/"):
            raise Rejected(
                401,
                "sign_in_required",
                "sign in: send a user's name and password with HTTP Basic auth",
                headers={"WWW-Authenticate": 'Basic realm="lvd"'},
            )
        target = url_for("auth.login_page", next=request.full_path.rstrip("?"))
        if request.headers.get("HX-Request"):
            return Response("", status=401, headers={"HX-Redirect": target})
        return redirect(target, 303)


def _is_open(path: str) -> bool:
    return bool(_OPEN_PATHS.match(path))


async def _basic_auth_user() -> str | None:
    try:
        credentials = basic_credentials(request.headers.get("Authorization"))
    except ValueError:
        return None
    if credentials is None:
        return None
    async with services().pool.acquire() as conn:
        user = await authenticate(conn, *credentials)
    return user.username if user else None


@blueprint.get("/login")
async def login_page() -> str:
    return await render_template("login.html", error=None, next=_safe_next())


@blueprint.post("/login")
async def login() -> Response | WerkzeugResponse:
    form = await request.form
    async with services().pool.acquire() as conn:
        user = await authenticate(conn, form.get("username", ""), form.get("password", ""))
    if user is None:
        html = await render_template(
            "login.html", error="That user name and password do not match.", next=_safe_next()
        )
        return Response(html, status=401, mimetype="text/html")
    session.clear()  # a fresh session on sign-in: no fixation
    session["user"] = user.username
    session.permanent = True
    return redirect(_safe_next(), 303)


@blueprint.post("/logout")
async def logout() -> WerkzeugResponse:
    session.clear()
    return redirect(url_for("auth.login_page"), 303)


def _safe_next() -> str:
    """Where to go after sign-in: a path on this site only, never another origin."""
    target = request.args.get("next") or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
