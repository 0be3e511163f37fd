"""Dashboard users: creating them and checking passwords (argon2id, never plain text)."""

from __future__ import annotations

import re

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


async def create_user(conn: Connection, username: str, password: str) -> User:
    if not USERNAME.fullmatch(username):
        raise Rejected(400, "invalid_username", "a user name is 1 to 100 letters, digits or _.@-")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Rejected(
            400, "weak_password", f"a password has at least {MIN_PASSWORD_LENGTH} characters"
        )
    user = await insert_user(conn, username, _hasher.hash(password))
    if user is None:
        raise Rejected(409, "user_exists", f"a user named {username!r} already exists")
    return user


async def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user if the password is right, else None; rehashes when parameters changed."""
    user = await select_user(conn, username) if USERNAME.fullmatch(username) else None
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        await update_password_hash(conn, user.id, _hasher.hash(password))
    return user
