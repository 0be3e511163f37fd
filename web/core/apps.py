"""Apps: adding one (one rule for the API, the web form and the command line), requiring one."""

from __future__ import annotations

import re
import secrets

from web.core.errors import Rejected
from web.core.queries.apps import insert_app, select_app
from web.core.queries.base import App, Connection

APP_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_APP_NAME_LENGTH = 200


def new_write_key() -> str:
    return "wk_" + secrets.token_urlsafe(24)


async def add_app(conn: Connection, app_id: object, name: object) -> App:
    """Add an app with a fresh write key; Rejected when the id is malformed or taken."""
    if not isinstance(app_id, str) or not APP_ID_PATTERN.fullmatch(app_id):
        raise Rejected(
            400,
            "invalid_app_id",
            "an app id is 1 to 63 lowercase letters, digits, '-' or '_', starting with a"
            " letter or digit",
        )
    display_name = name if isinstance(name, str) and name.strip() else app_id
    if len(display_name) > MAX_APP_NAME_LENGTH:
        raise Rejected(
            400, "invalid_app_name", f"a name is at most {MAX_APP_NAME_LENGTH} characters"
        )
    app = await insert_app(conn, app_id, display_name.strip(), new_write_key())
    if app is None:
        raise Rejected(409, "app_exists", f"an app with id {app_id!r} already exists")
    return app


def unknown_app(app_id: str, *, known_by: str = "id") -> Rejected:
    """The refusal when no app has this id (404 unknown_app), for callers to raise.

    known_by names what the caller looked the app up by, when not only its id.
    """
    return Rejected(404, "unknown_app", f"no app with {known_by} {app_id!r}")


async def require_app(conn: Connection, app_id: str) -> App:
    """The app with this id; Rejected (404 unknown_app) when there is none."""
    app = await select_app(conn, app_id)
    if app is None:
        raise unknown_app(app_id)
    return app


def app_as_json(app: App) -> dict[str, object]:
    return {
        "id": app.id,
        "name": app.name,
        "write_key": app.write_key,
        "require_write_key": app.require_write_key,
        "created_at": app.created_at.isoformat(),
    }
