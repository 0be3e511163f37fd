"""SQL for tracking plan versions."""

from __future__ import annotations

from typing import Any

from web.core.queries.base import Connection, PlanVersion


async def insert_plan_version(conn: Connection, app_id: str, document: Any) -> PlanVersion:
    """Store the next version of an app's plan and make it current; lock the app first."""
    row = await conn.fetchrow(
        """
        WITH next AS (
            SELECT coalesce(max(version), 0) + 1 AS version
            FROM tracking_plans
            WHERE app_id = $1
        ), saved AS (
            INSERT INTO tracking_plans (app_id, version, document)
            SELECT $1, version, $2::json FROM next
            RETURNING app_id, version, document, created_at
        ), current AS (
            UPDATE apps
            SET plan_version = (SELECT version FROM saved)
            WHERE id = $1
        )
        SELECT app_id, version, document, created_at FROM saved
        """,
        app_id,
        document,
    )
    return PlanVersion(**dict(row))


async def select_plan_version(
    conn: Connection, app_id: str, version: int | None = None
) -> PlanVersion | None:
    """One version of an app's plan; the current one when version is None."""
    row = await conn.fetchrow(
        """
        SELECT p.app_id, p.version, p.document, p.created_at
        FROM tracking_plans p
        JOIN apps a ON a.id = p.app_id
        WHERE p.app_id = $1 AND p.version = coalesce($2::integer, a.plan_version)
        """,
        app_id,
        version,
    )
    return PlanVersion(**dict(row)) if row else None


async def select_plan_versions(conn: Connection, app_id: str) -> list[PlanVersion]:
    rows = await conn.fetch(
        """
        SELECT app_id, version, document, created_at
        FROM tracking_plans
        WHERE app_id = $1
        ORDER BY version DESC
        """,
        app_id,
    )
    return [PlanVersion(**dict(row)) for row in rows]
