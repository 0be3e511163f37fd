"""Sign-in for the dashboard and management API, required whenever the server is exposed."""

from __future__ import annotations

import re

from quart import (
    Blueprint,
    Quart,
    Response,
    g,
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
from web.core.queries.tokens import ApiToken
from web.core.scopes import APP_ARGUMENTS, grants, required_scope
from web.core.tokens import find_token
from web.core.users import authenticate_pooled

blueprint = Blueprint("auth", __name__)

# Reachable without signing in: health probes, the sign-in page, static files and the API
# description and its reference page. (Ingest, which has write keys, is answered before
# Quart: web/ingest.py.)
_OPEN_PATHS = re.compile(r"^/(healthz|readyz|login|static/.*|openapi\.json|docs)$")


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
        if _is_open(request.path):
            return None
        token = _bearer_token()
        if token is not None:
            # Checked even where sign-in is not required: a CI job with a wrong or revoked
            # token fails loudly on the loopback server too, not only once exposed.
            g.api_token = await _admit_token(token)
            return None
        if not services().settings.require_login:
            return None
        if session.get("user"):
            return None
        g.basic_user = await _basic_auth_user()
        if g.basic_user:
            return None
        if request.path.startswith("/api/"):
            raise Rejected(
                401,
                "sign_in_required",
                "sign in: send a user's name and password with HTTP Basic auth,"
                " or an API token as `Authorization: Bearer`",
                headers={"WWW-Authenticate": 'Basic realm="lvd", Bearer realm="lvd"'},
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
    user = await authenticate_pooled(services().pool, *credentials)
    return user.username if user else None


def current_actor() -> str | None:
    """Who is making this request, as recorded beside what they create: the signed-in or
    Basic-auth user's name, `token:<id>` for an API token, None on an open loopback server."""
    token: ApiToken | None = g.get("api_token")
    if token is not None:
        return f"token:{token.id}"
    user: str | None = session.get("user") or g.get("basic_user")
    return user


def _bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is no such header."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _token_refused(status: int, code: str, message: str, **details: str) -> Rejected:
    challenge = f'Bearer error="{code}"'
    if "required_scope" in details:
        challenge += f' scope="{details["required_scope"]}"'
    return Rejected(status, code, message, details, headers={"WWW-Authenticate": challenge})


async def _admit_token(text: str) -> ApiToken:
    """The live token, if it may make this request; Rejected (401 or 403) if not."""
    async with services().pool.acquire() as conn:
        token = await find_token(conn, text)
    if token is None:
        raise _token_refused(401, "invalid_token", "the API token is malformed, unknown or revoked")
    rule = request.url_rule
    if rule is None:  # no such route: the 404 or 405 follows, for any caller
        return token
    needed = required_scope(request.method, rule.rule)
    if needed is None:
        raise _token_refused(
            403, "insufficient_scope", "API tokens do not open the dashboard's pages: sign in"
        )
    if not grants(token.scope, needed):
        raise _token_refused(
            403,
            "insufficient_scope",
            f"this needs a token of scope {needed}; this one's scope is {token.scope}",
            required_scope=needed,
            token_scope=token.scope,
        )
    if token.app_id is not None and not await _about_app(token.app_id):
        raise Rejected(
            403,
            "token_app_forbidden",
            f"this token is limited to the app {token.app_id!r}",
            {"token_app_id": token.app_id},
        )
    return token


async def _about_app(app_id: str) -> bool:
    """Whether this request is about the app `app_id` alone (by its id, or its Snowplow
    alias: id or write key). A request about no app in particular is about all of them."""
    view_args = request.view_args or {}
    named = [view_args[arg] for arg in APP_ARGUMENTS if arg in view_args]
    if len(named) != 1:
        return False
    if named[0] == app_id:
        return True
    if "app" in view_args:  # a write key standing for the app
        view = await services().apps.get_by_id_or_key(named[0])
        return view is not None and view.app.id == app_id
    return False


@blueprint.get("/login")
async def login_page() -> str:
    return await render_template("login.html", error=None, next=_safe_next())


@blueprint.post("/login")
async def login() -> Response | WerkzeugResponse:
    form = await request.form
    user = await authenticate_pooled(
        services().pool, form.get("username", ""), form.get("password", "")
    )
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
