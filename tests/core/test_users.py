"""Password checks: argon2 off the event loop, and credentials verified lately not again."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

import asyncpg
import pytest

from web.core import users
from web.core.queries.users import update_password_hash
from web.core.users import (
    RecentPasswords,
    authenticate,
    authenticate_pooled,
    create_user,
    hash_password,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The thread id of each argon2 verification, as it happens."""
    seen: list[int] = []
    real = users._verify

    def counting(password_hash: str, password: str) -> bool:
        seen.append(threading.get_ident())
        return real(password_hash, password)

    monkeypatch.setattr(users, "_verify", counting)
    users.recent_passwords.forget_all()
    yield seen
    users.recent_passwords.forget_all()


@pytest.fixture
async def user(pool: asyncpg.Pool) -> str:
    name = f"qa-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, name, PASSWORD)
    return name


async def test_users_password_is_verified_off_the_event_loop_thread(
    pool: asyncpg.Pool, user: str, verifications: list[int]
) -> None:
    assert await authenticate_pooled(pool, user, PASSWORD) is not None
    assert await authenticate_pooled(pool, "ghost", PASSWORD) is None
    assert len(verifications) == 2
    assert threading.get_ident() not in verifications


async def test_users_same_credentials_are_verified_once(
    pool: asyncpg.Pool, user: str, verifications: list[int]
) -> None:
    for _ in range(5):
        assert await authenticate_pooled(pool, user, PASSWORD) is not None
    assert len(verifications) == 1


async def test_users_wrong_passwords_are_never_remembered(
    pool: asyncpg.Pool, user: str, verifications: list[int]
) -> None:
    for _ in range(3):
        assert await authenticate_pooled(pool, user, PASSWORD + "!") is None
    assert len(verifications) == 3


async def test_users_changed_password_stops_matching_at_once(
    pool: asyncpg.Pool, user: str, verifications: list[int]
) -> None:
    """The remembered check holds only for the stored hash it was made against: another
    process changing the password (a new hash) makes the old one fail on the next call."""
    async with pool.acquire() as conn:
        assert await authenticate(conn, user, PASSWORD) is not None
        found = await conn.fetchrow("SELECT id FROM users WHERE username = $1", user)
        await update_password_hash(conn, found["id"], await hash_password("another long password"))
        assert await authenticate(conn, user, PASSWORD) is None
        assert await authenticate(conn, user, "another long password") is not None
    assert len(verifications) == 3


async def test_users_deleted_user_stops_matching_at_once(
    pool: asyncpg.Pool, user: str, verifications: list[int]
) -> None:
    assert await authenticate_pooled(pool, user, PASSWORD) is not None
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM users WHERE username = $1", user)
    assert await authenticate_pooled(pool, user, PASSWORD) is None


def test_users_recent_passwords_expire_and_stay_bounded() -> None:
    now = [0.0]
    recent = RecentPasswords(ttl_seconds=10, max_entries=2, clock=lambda: now[0])
    recent.remember("a", "pw", "hash-a")
    assert recent.matches("a", "pw", "hash-a")
    assert not recent.matches("a", "pw", "another hash")
    recent.remember("a", "pw", "hash-a")
    assert not recent.matches("a", "other pw", "hash-a")
    assert not recent.matches("b", "pw", "hash-a")
    now[0] = 10.0
    assert not recent.matches("a", "pw", "hash-a")  # expired
    for name in ("a", "b", "c"):
        recent.remember(name, "pw", "h")
    assert not recent.matches("a", "pw", "h")  # the oldest went first
    assert recent.matches("b", "pw", "h") and recent.matches("c", "pw", "h")


def test_users_recent_passwords_keep_no_password() -> None:
    recent = RecentPasswords()
    recent.remember("alice", "a very secret password", "stored hash")
    assert "a very secret password" not in repr(recent._entries)
    assert all(len(key) == 32 for key in recent._entries)


async def test_users_a_slow_verification_leaves_the_loop_free(
    pool: asyncpg.Pool, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While argon2 is busy (here: held until the loop says so), the loop runs other work.
    On the loop, the verification would wait for a release the loop could never send."""
    started, release = threading.Event(), threading.Event()
    real = users._verify

    def held(password_hash: str, password: str) -> bool:
        started.set()
        assert release.wait(10), "the loop never released the verification"
        return real(password_hash, password)

    monkeypatch.setattr(users, "_verify", held)
    users.recent_passwords.forget_all()
    checking = asyncio.create_task(authenticate_pooled(pool, user, PASSWORD))
    assert await asyncio.to_thread(started.wait, 10)
    async with pool.acquire() as conn:  # the loop serves other work meanwhile
        assert await conn.fetchval("SELECT 1") == 1
    assert not checking.done()
    release.set()
    assert await checking is not None
