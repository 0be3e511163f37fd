"""`lvd create-user`: a user whose password is stored hashed and checks out."""

from __future__ import annotations

import secrets
import subprocess

import asyncpg

from tests.e2e.helpers import run_lvd_sync
from web.core.settings import Settings
from web.core.users import authenticate


def create_user(settings: Settings, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return run_lvd_sync(settings, "create-user", name, "--password-stdin", stdin=password + "\n")


async def test_cli_create_user_stores_a_hash_that_authenticates(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    name = f"qa-{secrets.token_hex(4)}"
    result = create_user(settings, name, "a long enough password")
    assert result.returncode == 0, result.stderr
    assert f"Created user {name}" in result.stdout
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE username = $1", name)
        assert stored.startswith("$argon2id$")
        assert "a long enough password" not in stored
        assert await authenticate(conn, name, "a long enough password") is not None
        assert await authenticate(conn, name, "wrong") is None


def test_cli_create_user_refuses_a_short_password_and_a_taken_name(settings: Settings) -> None:
    short = create_user(settings, f"qa-{secrets.token_hex(4)}", "short")
    assert short.returncode == 1
    assert "at least 12 characters" in short.stderr
    name = f"qa-{secrets.token_hex(4)}"
    assert create_user(settings, name, "a long enough password").returncode == 0
    again = create_user(settings, name, "a long enough password")
    assert again.returncode == 1
    assert "already exists" in again.stderr
