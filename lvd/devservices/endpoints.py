"""Where the app finds its services, and their URLs shown without passwords."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEndpoints:
    """Where the app finds its services, and how they were obtained."""

    database_url: str
    redis_url: str
    descriptions: tuple[str, ...]


def redact_url(url: str) -> str:
    """Return `url` without any password (in the user info or a `password=` query item)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # A libpq key=value DSN rather than a URL.
        return re.sub(r"(?i)\bpassword\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+)\s*", "", url).strip()
    cut = len(rest)
    for ch in "/?#":
        idx = rest.find(ch)
        if idx != -1:
            cut = min(cut, idx)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{hostport}" if user else hostport
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_sep, fragment = query.partition("#")
        kept = [item for item in query.split("&") if item.split("=", 1)[0].lower() != "password"]
        tail = path + ("?" + "&".join(kept) if kept else "") + hash_sep + fragment
    return f"{scheme}://{netloc}{tail}"
