"""Dashboard users: creating them and checking passwords (argon2id, never plain text).

argon2 is slow on purpose (64 MiB and, measured on a small 2-core machine, ~0.2 s of a
core per check at argon2-cffi's defaults), so it never runs on an event loop: hashing and
verifying go to a small pool of threads of their own. The pool is bounded: a flood of
wrong passwords queues there, taking at most two cores and their memory, while the loop
keeps serving ingest and everything else.

A script calling the API with HTTP Basic sends the same password on every call; checking
it with argon2 each time would cost a core per ~5 calls a second. RecentPasswords
remembers credentials verified in the last few minutes, keyed by an HMAC under a random
per-process key (the cache holds neither passwords nor an unkeyed fast hash of one), each
with the stored hash it was verified against. A hit counts only while the user's stored
hash is still that one, and the user row is read on every call anyway: a changed
password or a deleted user stops matching at once, in every process. Wrong passwords are
never remembered, so guessing always pays for argon2.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from web.core.errors import Rejected
from web.core.queries.base import Connection
from web.core.queries.users import User, insert_user, select_user, update_password_hash

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing the same either way.
_DUMMY_HASH = _hasher.hash("timing equaliser, never a real password")
# Threads that run argon2; never the event loop's.
PASSWORD_THREADS = 2
_password_threads = ThreadPoolExecutor(PASSWORD_THREADS, thread_name_prefix="lvd-password")
RECENT_PASSWORDS_SECONDS = 300.0
RECENT_PASSWORDS_MAX = 1000

T = TypeVar("T")


class RecentPasswords:
    """Credentials verified lately: (user name, password) -> the stored hash they matched."""

    def __init__(
        self,
        ttl_seconds: float = RECENT_PASSWORDS_SECONDS,
        max_entries: int = RECENT_PASSWORDS_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def _entry_key(self, username: str, password: str) -> bytes:
        # A user name never holds NUL (USERNAME), so the pair is read back unambiguously.
        message = f"{username}\0{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def matches(self, username: str, password: str, password_hash: str) -> bool:
        """Whether this password was verified lately against this very stored hash."""
        key = self._entry_key(username, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        remembered_hash, expires_at = entry
        if expires_at <= self._clock() or not hmac.compare_digest(remembered_hash, password_hash):
            del self._entries[key]
            return False
        return True

    def remember(self, username: str, password: str, password_hash: str) -> None:
        key = self._entry_key(username, password)
        self._entries.pop(key, None)
        self._entries[key] = (password_hash, self._clock() + self._ttl)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)  # the oldest goes first

    def forget_all(self) -> None:
        self._entries.clear()


recent_passwords = RecentPasswords()


async def _off_the_loop(work: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_password_threads, work, *args)


async def hash_password(password: str) -> str:
    return await _off_the_loop(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(conn: Connection, username: str, password: str) -> User:
    if not USERNAME.fullmatch(username):
        raise Rejected(400, "invalid_username", "a user name is 1 to 100 letters, digits or _.@-")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Rejected(
            400, "weak_password", f"a password has at least {MIN_PASSWORD_LENGTH} characters"
        )
    user = await insert_user(conn, username, await hash_password(password))
    if user is None:
        raise Rejected(409, "user_exists", f"a user named {username!r} already exists")
    return user


async def find_user(conn: Connection, username: str) -> User | None:
    return await select_user(conn, username) if USERNAME.fullmatch(username) else None


async def password_matches(user: User | None, password: str) -> bool:
    """Whether the password is the user's (False for no user, after the same work)."""
    if user is not None and recent_passwords.matches(user.username, password, user.password_hash):
        return True
    matched = await _off_the_loop(_verify, user.password_hash if user else _DUMMY_HASH, password)
    if not matched or user is None:
        return False
    recent_passwords.remember(user.username, password, user.password_hash)
    return True


async def rehash_if_needed(conn: Connection, user: User, password: str) -> None:
    """Store a fresh hash when the hasher's parameters changed since this one was made."""
    if _hasher.check_needs_rehash(user.password_hash):
        password_hash = await hash_password(password)
        await update_password_hash(conn, user.id, password_hash)
        recent_passwords.remember(user.username, password, password_hash)


async def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user if the password is right, else None; rehashes when parameters changed."""
    user = await find_user(conn, username)
    if not await password_matches(user, password) or user is None:
        return None
    await rehash_if_needed(conn, user, password)
    return user


async def authenticate_pooled(pool: asyncpg.Pool, username: str, password: str) -> User | None:
    """authenticate(), holding a pooled connection only for the queries: a queue of argon2
    checks must not hold the pool's connections while it waits."""
    async with pool.acquire() as conn:
        user = await find_user(conn, username)
    if not await password_matches(user, password) or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        async with pool.acquire() as conn:
            await rehash_if_needed(conn, user, password)
    return user
