"""API tokens: the JSON API under /api/tokens and the /tokens page to create and revoke them.

Who may: a signed-in (or Basic-auth) user, or an admin-scoped token (web/core/scopes.py);
on a loopback server without sign-in, whoever may use the rest of the dashboard.
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.auth import current_actor
from web.context import services
from web.core.errors import Rejected
from web.core.queries.apps import select_apps
from web.core.scopes import DEFAULT_SCOPE, SCOPES
from web.core.tokens import (
    MAX_NAME_LENGTH,
    NewToken,
    create_token,
    list_tokens,
    revoke,
    token_as_json,
)
from web.requests import json_body
from web.security import refuse_other_sites

blueprint = Blueprint("tokens", __name__)


@blueprint.before_request
async def refuse_other_sites_api() -> None:
    """The JSON API answers no page of another site, even the list, which holds no token.
    The page itself may be reached by a link from anywhere; its forms are same-origin only
    (web/security.py), like every form's."""
    if request.path.startswith("/api/"):
        await refuse_other_sites()


@blueprint.post("/api/tokens")
async def create_api() -> tuple[Response, int]:
    body = await json_body()
    async with services().pool.acquire() as conn:
        new = await create_token(
            conn,
            body.get("name"),
            body.get("scope", DEFAULT_SCOPE),
            body.get("app_id"),
            created_by=current_actor(),
        )
    return jsonify({**token_as_json(new.stored), "token": new.token}), 201


@blueprint.get("/api/tokens")
async def list_api() -> Response:
    async with services().pool.acquire() as conn:
        tokens = await list_tokens(conn)
    return jsonify({"tokens": [token_as_json(token) for token in tokens]})


@blueprint.delete("/api/tokens/<int:token_id>")
async def revoke_api(token_id: int) -> Response:
    async with services().pool.acquire() as conn:
        await revoke(conn, token_id)
    return Response(status=204)


@blueprint.get("/tokens")
async def page() -> str:
    return await _render_page(notice=request.args.get("notice"))


@blueprint.post("/tokens")
async def create_form() -> tuple[str, int]:
    form = await request.form
    try:
        async with services().pool.acquire() as conn:
            new = await create_token(
                conn,
                form.get("name"),
                form.get("scope") or DEFAULT_SCOPE,
                form.get("app_id") or None,
                created_by=current_actor(),
            )
    except Rejected as exc:
        return await _render_page(error=exc.message), exc.status
    # Rendered, not redirected: the token is shown this once and must never be in a URL.
    return await _render_page(new=new), 201


@blueprint.post("/tokens/<int:token_id>/revoke")
async def revoke_form(token_id: int) -> WerkzeugResponse:
    async with services().pool.acquire() as conn:
        await revoke(conn, token_id)
    return redirect(url_for("tokens.page", notice=f"Token {token_id} revoked"), 303)


async def _render_page(
    *, new: NewToken | None = None, notice: str | None = None, error: str | None = None
) -> str:
    async with services().pool.acquire() as conn:
        tokens = await list_tokens(conn)
        apps = await select_apps(conn)
    return await render_template(
        "tokens.html",
        tokens=tokens,
        apps=apps,
        scopes=SCOPES,
        default_scope=DEFAULT_SCOPE,
        max_name_length=MAX_NAME_LENGTH,
        new=new,
        notice=notice,
        error=error,
    )
