"""SQL for the per-app hygiene switch (apps.hygiene_checks, migration 0014)."""

from __future__ import annotations

from web.core.plans import PLANS_CHANNEL
from web.core.queries.base import Connection
from web.core.queries.events import notify


async def update_app_hygiene_checks(conn: Connection, app_id: str, enabled: bool) -> bool:
    """Switch the app's hygiene checks and tell every web process to forget its cached view,
    in one transaction; False if there is no such app."""
    async with conn.transaction():
        status = await conn.execute(
            """
            UPDATE apps
            SET hygiene_checks = $2
            WHERE id = $1
            """,
            app_id,
            enabled,
        )
        if not status.endswith(" 1"):
            return False
        await notify(conn, PLANS_CHANNEL, app_id)
    return True
