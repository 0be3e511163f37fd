"""SQL for the scheduler's claims: which periodic job is due, on the database's clock."""

from __future__ import annotations

from web.core.queries.base import Connection


async def claim_scheduled_job(conn: Connection, name: str, interval_seconds: float) -> bool:
    """True if the job is due and this caller moved it to its next time (then it runs it).

    A job seen for the first time is scheduled one interval ahead, not run. The database's
    clock decides, so workers on several machines agree.
    """
    await conn.execute(
        """
        INSERT INTO scheduled_jobs (name, due_at)
        VALUES ($1, now() + make_interval(secs => $2))
        ON CONFLICT (name) DO NOTHING
        """,
        name,
        interval_seconds,
    )
    claimed = await conn.fetchval(
        """
        UPDATE scheduled_jobs
        SET due_at = now() + make_interval(secs => $2)
        WHERE name = $1 AND due_at <= now()
        RETURNING true
        """,
        name,
        interval_seconds,
    )
    return bool(claimed)


async def update_scheduled_job_due(conn: Connection, name: str) -> None:
    """Make a job due now (a job that has more to do asks for its next run at once)."""
    await conn.execute(
        """
        INSERT INTO scheduled_jobs (name, due_at)
        VALUES ($1, now())
        ON CONFLICT (name) DO UPDATE SET due_at = now()
        """,
        name,
    )
