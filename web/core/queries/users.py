"""SQL for dashboard users and the secrets every web process shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from web.core.queries.base import Connection


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    created_at: datetime


async def insert_user(conn: Connection, username: str, password_hash: str) -> User | None:
    """Create a user; None when the name is taken."""
    row = await conn.fetchrow(
        """
        INSERT INTO users (username, password_hash)
        VALUES ($1, $2)
        ON CONFLICT (username) DO NOTHING
        RETURNING id, username, password_hash, created_at
        """,
        username,
        password_hash,
    )
    return User(**dict(row)) if row else None


async def select_user(conn: Connection, username: str) -> User | None:
    row = await conn.fetchrow(
        """
        SELECT id, username, password_hash, created_at
        FROM users
        WHERE username = $1
        """,
        username,
    )
    return User(**dict(row)) if row else None


async def update_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        """
        UPDATE users
        SET password_hash = $2
        WHERE id = $1
        """,
        user_id,
        password_hash,
    )


async def count_users(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users"))


async def instance_secret(conn: Connection, name: str, candidate: str) -> str:
    """The shared secret `name`: the candidate if this call created it, else the stored one."""
    await conn.execute(
        """
        INSERT INTO instance_secrets (name, value)
        VALUES ($1, $2)
        ON CONFLICT (name) DO NOTHING
        """,
        name,
        candidate,
    )
    value = await conn.fetchval(
        """
        SELECT value
        FROM instance_secrets
        WHERE name = $1
        """,
        name,
    )
    return str(value)
