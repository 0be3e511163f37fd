"""Helpers for the dashboard tests: stored events with any payload, and an EXPLAIN recorder."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import asyncpg
import orjson

from web.core.queries.base import NewLogEntry
from web.core.queries.events import insert_log_entries


def stored(
    app_id: str,
    *,
    name: str | None = "user_login",
    payload: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    status: str | None = None,
    session: str | None = None,
    plan_version: int | None = None,
    received_at: datetime | None = None,
    event_id: str | None = None,
) -> NewLogEntry:
    """One event as a worker stores it; invalid when any error has severity "error"."""
    errors = errors or []
    if status is None:
        status = "invalid" if any(e.get("severity") != "warning" for e in errors) else "valid"
    body = payload if payload is not None else {"eventName": name}
    return NewLogEntry(
        app_id=app_id,
        event_id=event_id or str(uuid.uuid4()),
        event_name=name,
        payload=orjson.dumps(body).decode(),
        status=status,
        errors=orjson.dumps(errors).decode(),
        plan_version=plan_version,
        session=session,
        received_at=received_at or datetime.now(UTC),
    )


def issue(path: str, rule: str, message: str = "", severity: str = "error") -> dict[str, Any]:
    return {
        "path": path,
        "rule": rule,
        "message": message or f"{path} breaks {rule}",
        "expected": None,
        "actual": None,
        "severity": severity,
    }


async def store(pool: asyncpg.Pool, entries: list[NewLogEntry]) -> list[int]:
    async with pool.acquire() as conn:
        return await insert_log_entries(conn, entries)


@dataclass
class Explaining:
    """A queries.Connection that EXPLAINs each statement on a real connection instead of
    running it, so a test sees the plan of exactly the SQL a query function sends."""

    conn: Any
    plans: list[str] = field(default_factory=list)

    async def _explain(self, query: str, *args: Any) -> None:
        rows = await self.conn.fetch(f"EXPLAIN {query}", *args)
        self.plans.append("\n".join(row[0] for row in rows))

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        await self._explain(query, *args)
        return []

    async def fetchrow(self, query: str, *args: Any) -> Any:
        await self._explain(query, *args)
        return None

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self._explain(query, *args)
        return 0

    async def execute(self, query: str, *args: Any) -> str:
        raise AssertionError("a read query executed a statement")

    def transaction(self) -> Any:
        raise AssertionError("a read query opened a transaction")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class _Collector(HTMLParser):
    def __init__(self, selector_tag: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tag = selector_tag
        self.found: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == self.tag:
            element = Element(tag, {k: v or "" for k, v in attrs})
            self.found.append(element)
            if tag not in ("input", "option"):
                self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == self.tag and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def elements(html: str, tag: str) -> list[Element]:
    """Every <tag> in the page with its attributes and its text (entities decoded)."""
    parser = _Collector(tag)
    parser.feed(html)
    parser.close()
    return parser.found
