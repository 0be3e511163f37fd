"""Row types every query module shares, and the connection protocol queries take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from web.core.filters import EventFilter


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


_APP_COLUMNS = "id, name, write_key, require_write_key, created_at, plan_version"


_ENTRY_COLUMNS = (
    "id, app_id, event_id, event_name, payload, validation_status AS status, errors, plan_version,"
    " session, received_at, created_at"
)


NO_FILTER = EventFilter()


# The filter's clauses; parameters $2..$8 come from EventFilter.sql_args(), in this order.
FILTER_SQL = (
    " AND ($2::text IS NULL OR validation_status = $2)"
    " AND (cardinality($3::text[]) = 0 OR event_name = ANY($3::text[]))"
    " AND ($4::text IS NULL OR payload::text ILIKE $4)"
    " AND ($5::jsonb IS NULL OR errors @> $5::jsonb)"
    " AND ($6::text IS NULL OR session = $6)"
    " AND ($7::timestamptz IS NULL OR received_at >= $7)"
    " AND ($8::timestamptz IS NULL OR received_at < $8)"
)
