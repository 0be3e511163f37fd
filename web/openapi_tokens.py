"""The API description's token paths (web/tokens.py) and the types of their bodies."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from web.api_types import MAX_INT8, AppId, Int8, Timestamp
from web.core.tokens import MAX_NAME_LENGTH
from web.openapi_operations import ADMIN, answer, operation
from web.openapi_refs import Schema

Scope = Literal["read", "write", "admin"]


class NewTokenRequest(TypedDict):
    """A token to mint: its name, its scope (default write), and the one app it may reach."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"\S")]
    scope: NotRequired[Scope | None]
    app_id: NotRequired[AppId | None]


class TokenEntry(TypedDict):
    """A token as listed: never the token itself, which is not stored."""

    id: Int8
    name: str
    scope: Scope
    app_id: str | None
    prefix: Annotated[str, Field(description="The token's first 8 characters after lvd_")]
    created_by: str | None
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class NewToken(TokenEntry):
    """A token just minted, with the token itself: shown this once."""

    token: Annotated[str, Field(pattern=r"^lvd_[A-Za-z0-9_-]{43}$")]


class TokenList(TypedDict):
    """Every token, revoked ones too."""

    tokens: list[TokenEntry]


_TOKEN_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT8}
_SAME_SITE = {"403": ("cross_site_request",)}


def token_paths() -> dict[str, Schema]:
    """POST and GET /api/tokens, DELETE /api/tokens/{token_id}: admin scope or a person."""
    return {
        "/api/tokens": {
            "get": operation(
                "get",
                "listTokens",
                "tokens",
                "Every API token, without the tokens themselves",
                scope=ADMIN,
                answer=answer("The tokens", "TokenList"),
                about_app=False,
                refusals=_SAME_SITE,
            ),
            "post": operation(
                "post",
                "createToken",
                "tokens",
                "Mint an API token: the answer shows it once",
                scope=ADMIN,
                answer=answer("The token, shown this once", "NewToken"),
                status="201",
                body="NewTokenRequest",
                about_app=False,
                refusals={
                    "400": (
                        "invalid_token_name",
                        "token_name_too_long",
                        "invalid_scope",
                        "unknown_app",
                    ),
                },
            ),
        },
        "/api/tokens/{token_id}": {
            "parameters": [
                {"name": "token_id", "in": "path", "required": True, "schema": _TOKEN_ID}
            ],
            "delete": operation(
                "delete",
                "revokeToken",
                "tokens",
                "Revoke an API token",
                scope=ADMIN,
                answer=None,
                status="204",
                about_app=False,
                refusals={"404": ("unknown_token", "not_found")},
            ),
        },
    }
