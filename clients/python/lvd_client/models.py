"""What the client reads and raises: stored events, their issues, waits, refusals, filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

SESSION_HEADER = "X-LVD-Session"


class LvdError(Exception):
    """The server refused a request (bad filter, unknown app, ...): not a test failure."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    rule: str
    message: str
    severity: str

    def __str__(self) -> str:
        return f"{self.path or '/'} [{self.rule}] {self.message}"


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event, as the query API returns it."""

    event_id: str
    event_name: str | None
    status: str
    errors: tuple[Issue, ...]
    payload: dict[str, Any]
    plan_version: int | None
    session: str | None
    received_at: datetime
    created_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            event_id=data["event_id"],
            event_name=data["event_name"],
            status=data["status"],
            errors=tuple(
                Issue(e.get("path", ""), e.get("rule", ""), e.get("message", ""), e["severity"])
                for e in data["errors"]
            ),
            payload=data["payload"],
            plan_version=data["plan_version"],
            session=data["session"],
            received_at=datetime.fromisoformat(data["received_at"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )

    def describe(self) -> str:
        """One line per event, then one per error: how assertion messages show it."""
        head = f"{self.event_name or '(no name)'} [{self.status}] id={self.event_id}"
        problems = [e for e in self.errors if e.severity == "error"] or list(self.errors)
        return "\n".join([head, *(f"      {issue}" for issue in problems)])


@dataclass(frozen=True, slots=True)
class WaitResult:
    reached: bool
    wanted: int
    events: list[Event]


class WaitFilters(TypedDict, total=False):
    """What a wait counts: events of this status, name (one or several) and broken rule."""

    status: str | None
    event_name: str | Iterable[str] | None
    rule: str | None


class EventFilters(WaitFilters, total=False):
    """The query API's filters: a wait's, and text in the payload and a time range."""

    text: str | None
    since: datetime | str | None
    until: datetime | str | None


def new_session_id(prefix: str = "test") -> str:
    """A session id no other test run will use."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"
