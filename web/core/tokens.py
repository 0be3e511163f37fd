"""API tokens: minting one (shown once, stored as a digest), checking one, listing, revoking.

A token is `lvd_` and 43 URL-safe base64 characters (32 random bytes). Only its SHA-256 hex
digest is stored: a token is high-entropy, so a fast hash cannot be guessed back, and the
lookup by digest costs one index probe (argon2 is for passwords people choose).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from web.core.apps import APP_ID_PATTERN
from web.core.errors import Rejected
from web.core.queries.apps import select_app
from web.core.queries.base import Connection
from web.core.queries.tokens import (
    ApiToken,
    insert_token,
    revoke_token,
    select_token_by_hash,
    select_tokens,
    touch_token,
)
from web.core.scopes import DEFAULT_SCOPE, SCOPES

TOKEN_PREFIX = "lvd_"  # noqa: S105  (what every token starts with, not a secret)
TOKEN_PATTERN = re.compile(r"^lvd_[A-Za-z0-9_-]{43}$")
DISPLAY_PREFIX_LENGTH = 8
MAX_NAME_LENGTH = 100
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# last_used_at is written at most this often per token: a busy CI job is one write a minute,
# not one per request.
TOUCH_INTERVAL_SECONDS = 60.0
# Ids are bigint: a larger number in a URL names no token (and must not reach the query).
MAX_TOKEN_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: the stored row and the token itself, which is never shown again."""

    stored: ApiToken
    token: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_text() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    conn: Connection,
    name: object,
    scope: object = DEFAULT_SCOPE,
    app_id: object = None,
    *,
    created_by: str | None,
) -> NewToken:
    """Mint a token; Rejected (400) for a bad name, scope or app (one rule for API, UI, CLI)."""
    checked_name = _checked_name(name)
    checked_scope = DEFAULT_SCOPE if scope is None else scope
    if not isinstance(checked_scope, str) or checked_scope not in SCOPES:
        raise Rejected(
            400, "invalid_scope", f"a scope is one of {', '.join(SCOPES)}; got {scope!r}"
        )
    if app_id is not None and (
        not isinstance(app_id, str)
        or not APP_ID_PATTERN.fullmatch(app_id)
        or await select_app(conn, app_id) is None
    ):
        raise Rejected(400, "unknown_app", f"no app with id {app_id!r}")
    token = new_token_text()
    stored = await insert_token(
        conn,
        name=checked_name,
        token_hash=token_digest(token),
        prefix=token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + DISPLAY_PREFIX_LENGTH],
        scope=checked_scope,
        app_id=app_id,
        created_by=created_by,
    )
    return NewToken(stored, token)


def _checked_name(name: object) -> str:
    """The name, stripped; 1 to 100 characters as sent, not all spaces, no control characters
    (what PostgreSQL's text cannot hold, NUL, among them; and a name is one line)."""
    if not isinstance(name, str) or not name.strip():
        raise Rejected(400, "invalid_token_name", "a token needs a name, such as ci or nightly")
    if len(name) > MAX_NAME_LENGTH:
        raise Rejected(
            400, "token_name_too_long", f"a token's name is at most {MAX_NAME_LENGTH} characters"
        )
    if CONTROL_CHARACTERS.search(name):
        raise Rejected(400, "invalid_token_name", "a token's name holds no control characters")
    return name.strip()


async def find_token(conn: Connection, token: str) -> ApiToken | None:
    """The live token this text is, marking it used; None when malformed, unknown or revoked.

    last_used_at is written only when the row just read says it is a minute old or more, so
    a token in constant use costs one small UPDATE a minute, whatever the request rate.
    """
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    found = await select_token_by_hash(conn, token_digest(token), TOUCH_INTERVAL_SECONDS)
    if found is None or found.token.revoked_at is not None:
        return None
    if found.touch_due:
        await touch_token(conn, found.token.id, TOUCH_INTERVAL_SECONDS)
    return found.token


async def list_tokens(conn: Connection) -> list[ApiToken]:
    return await select_tokens(conn)


async def revoke(conn: Connection, token_id: int) -> None:
    """Revoke the token; Rejected (404 unknown_token) when there is no such token."""
    if not 0 < token_id <= MAX_TOKEN_ID or not await revoke_token(conn, token_id):
        raise Rejected(404, "unknown_token", f"no token with id {token_id}")


def token_as_json(token: ApiToken) -> dict[str, object]:
    """A token as the API lists it: everything but the token, which is never stored."""
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "app_id": token.app_id,
        "prefix": token.prefix,
        "created_by": token.created_by,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }
