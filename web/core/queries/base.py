"""Row types every query module shares, and the connection protocol queries take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol


class Connection(Protocol):
    """What queries need of an asyncpg connection or pooled proxy (asyncpg ships no types)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    def transaction(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class App:
    id: str
    name: str
    write_key: str
    require_write_key: bool
    created_at: datetime
    plan_version: int | None = None
    # Hygiene checks (personal data, sizes) add warnings to its events' verdicts (0014).
    hygiene_checks: bool = True


@dataclass(frozen=True, slots=True)
class PlanVersion:
    app_id: str
    version: int
    document: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppSummary:
    app: App
    total: int
    invalid: int


class NewLogEntry(NamedTuple):
    """One judged event as a worker writes it; payload and errors are JSON text here.

    A tuple, because the insert sends it as a PostgreSQL record of the type new_log_entry
    (migration 0007), whose fields are these, in this order.
    """

    app_id: str
    event_id: str
    event_name: str | None
    payload: str
    status: str  # valid or invalid: the column validation_status
    errors: str
    plan_version: int | None
    session: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    app_id: str
    event_id: str
    event_name: str | None
    payload: dict[str, Any]
    status: str  # valid or invalid: the column validation_status
    errors: list[dict[str, Any]]
    plan_version: int | None
    session: str | None
    received_at: datetime
    created_at: datetime


_APP_COLUMNS = "id, name, write_key, require_write_key, created_at, plan_version, hygiene_checks"


_ENTRY_COLUMNS = (
    "id, app_id, event_id, event_name, payload, validation_status AS status, errors, plan_version,"
    " session, received_at, created_at"
)
