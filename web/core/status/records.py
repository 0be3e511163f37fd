"""The status records: heartbeats that processes write, and the figures that readers return."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson

from web.core.queries.status import LatestStored

# Worker and web processes write their heartbeat this often (seconds).
HEARTBEAT_SECONDS = 2.0
# Heartbeat records silent this long are deleted by the processes that write them.
FORGET_AFTER_SECONDS = 3600.0
# Ingest rate and share invalid are taken over this window.
RECENT_WINDOW = timedelta(minutes=1)


def text_of(value: bytes | str) -> str:
    """A Redis field or value as text (a record's id, a totals field)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# ---- what processes write about themselves


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat:
    """A worker process's record, rewritten every HEARTBEAT_SECONDS. Times are Unix seconds."""

    worker_id: str
    hostname: str
    pid: int
    started_at: float
    seen_at: float
    messages: int  # finished, successfully or not
    events: int  # in successfully processed messages
    failed: int  # messages that raised (each retry counts) or were skipped
    events_per_second: float  # over the last minute
    stopped: bool = False  # shut down cleanly

    def encode(self) -> bytes:
        record = asdict(self)
        del record["worker_id"]
        return orjson.dumps(record)

    @classmethod
    def decode(cls, worker_id: str, raw: bytes | str) -> WorkerHeartbeat | None:
        """None for a record this version cannot read (another version wrote it)."""
        try:
            data = orjson.loads(raw)
            return cls(
                worker_id=worker_id,
                hostname=str(data["hostname"]),
                pid=int(data["pid"]),
                started_at=float(data["started_at"]),
                seen_at=float(data["seen_at"]),
                messages=int(data["messages"]),
                events=int(data["events"]),
                failed=int(data["failed"]),
                events_per_second=float(data["events_per_second"]),
                stopped=bool(data.get("stopped", False)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class WebHeartbeat:
    """A web process's record: how many dashboard streams it serves right now."""

    process_id: str
    hostname: str
    pid: int
    streams: int
    seen_at: float

    def encode(self) -> bytes:
        record = asdict(self)
        del record["process_id"]
        return orjson.dumps(record)

    @classmethod
    def decode(cls, process_id: str, raw: bytes | str) -> WebHeartbeat | None:
        try:
            data = orjson.loads(raw)
            return cls(
                process_id=process_id,
                hostname=str(data["hostname"]),
                pid=int(data["pid"]),
                streams=int(data["streams"]),
                seen_at=float(data["seen_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


# ---- what the readers see


@dataclass(frozen=True, slots=True)
class QueueDepths:
    waiting: int  # in the queue, not yet fetched by a worker
    in_flight: int  # fetched by a worker (running or prefetched), not yet acknowledged
    delayed: int  # waiting for a retry
    dead: int  # in Dramatiq's own dead-letter set
    oldest_waiting_seconds: float  # age of the oldest waiting message: the workers' lag


@dataclass(frozen=True, slots=True)
class WorkerState:
    worker_id: str
    hostname: str
    pid: int
    state: str  # alive, gone (no heartbeat for gone_after seconds) or stopped (cleanly)
    started_at: datetime
    last_seen: datetime
    silent_seconds: float
    messages: int
    events: int
    failed: int
    events_per_second: float  # 0 unless alive: a silent worker processes nothing we know of

    @property
    def alive(self) -> bool:
        return self.state == "alive"


@dataclass(frozen=True, slots=True)
class WebFigures:
    processes: tuple[WebHeartbeat, ...]

    @property
    def open_streams(self) -> int:
        return sum(process.streams for process in self.processes)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    events_last_minute: int
    invalid_last_minute: int
    dead_letters_pending: int
    database_bytes: int
    latest: LatestStored | None

    @property
    def events_per_second(self) -> float:
        return self.events_last_minute / RECENT_WINDOW.total_seconds()

    @property
    def invalid_share(self) -> float | None:
        if not self.events_last_minute:
            return None
        return self.invalid_last_minute / self.events_last_minute

    @property
    def store_delay_seconds(self) -> float | None:
        """How long the newest stored event took from ingest to its row."""
        if self.latest is None:
            return None
        return max(0.0, (self.latest.created_at - self.latest.received_at).total_seconds())


@dataclass(frozen=True, slots=True)
class EventTotal:
    app_id: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """One reading of the whole pipeline; a part that could not be read is None, with a problem."""

    taken_at: datetime
    queue: QueueDepths | None
    workers: tuple[WorkerState, ...]
    web: WebFigures | None
    store: StoreFigures | None
    problems: tuple[str, ...]

    @property
    def alive_workers(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)

    @property
    def workers_events_per_second(self) -> float:
        return sum(worker.events_per_second for worker in self.workers)


class Heartbeat(Protocol):
    @property
    def seen_at(self) -> float: ...


FieldName = TypeVar("FieldName", bytes, str, bytes | str)


def forgotten_ids(
    records: Mapping[FieldName, Any],
    decode: Callable[[str, Any], Heartbeat | None],
    *,
    now: float,
) -> list[FieldName]:
    """The fields of a heartbeat hash to delete: records this version cannot read, and
    those of processes silent for FORGET_AFTER_SECONDS. Web and worker prune with it."""
    return [
        raw_id
        for raw_id, raw in records.items()
        if (beat := decode(text_of(raw_id), raw)) is None
        or now - beat.seen_at > FORGET_AFTER_SECONDS
    ]
