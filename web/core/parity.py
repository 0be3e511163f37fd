"""Parity across platforms: which events and property types each test session sent, compared.

Pure: the callers read each session's per-name counts and (a capped number of) its events'
properties and hand them in. A property is a path into the event: `properties.<key>` and
`traits.<key>` (the containers the wire formats put an event's data in) and, one level
down, `properties.<key>.<key>` inside an object; arrays are typed as arrays, never entered.
A key that is not a plain word is quoted: `properties["a.b"]`. Types are JSON Schema's,
as the validator names them: a whole number as sent (`3`) is an integer, `3.5` or `3.0` a
number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

from web.core.errors import Rejected
from web.core.validation.envelope import json_type

MIN_SESSIONS = 2
MAX_SESSIONS = 6
MAX_SESSION_LENGTH = 100
# The containers whose keys are an event's properties, in the order rows show them.
CONTAINERS = ("properties", "traits")
# The types a property can be sent with, in the order a cell lists them.
JsonType = Literal["string", "integer", "number", "boolean", "null", "object", "array"]
TYPE_ORDER: tuple[str, ...] = get_args(JsonType)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$@-]+")

PropertyState = Literal["same", "missing", "type_differs", "mixed"]
STATE_LABELS: dict[str, str] = {
    "same": "same",
    "missing": "missing in a session",
    "type_differs": "type differs",
    "mixed": "mixed types",
}


def read_sessions(values: Sequence[str]) -> list[str]:
    """The sessions to compare, in the order given, each once; Rejected (400) unless there
    are MIN_SESSIONS to MAX_SESSIONS of them, each at most MAX_SESSION_LENGTH characters."""
    sessions = list(dict.fromkeys(value.strip() for value in values if value.strip()))
    for session in sessions:
        if len(session) > MAX_SESSION_LENGTH or "\x00" in session:
            raise Rejected(
                400,
                "invalid_session",
                f"a session id is at most {MAX_SESSION_LENGTH} characters, without U+0000",
                {"session": session[:MAX_SESSION_LENGTH]},
            )
    if len(sessions) < MIN_SESSIONS:
        raise Rejected(
            400,
            "too_few_sessions",
            f"pick at least {MIN_SESSIONS} different sessions to compare (session=A&session=B)",
        )
    if len(sessions) > MAX_SESSIONS:
        raise Rejected(400, "too_many_sessions", f"compare at most {MAX_SESSIONS} sessions")
    return sessions


def property_types(event: Mapping[str, Any]) -> dict[str, str]:
    """Each property path of one event (its properties and traits) and the JSON type sent."""
    found: dict[str, str] = {}
    for container in CONTAINERS:
        values = event.get(container)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            path = _join(container, key)
            found[path] = json_type(value)
            if isinstance(value, dict):
                for inner, nested in value.items():
                    found[_join(path, inner)] = json_type(nested)
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{orjson.dumps(key).decode()}]"


@dataclass(frozen=True, slots=True)
class NameCounts:
    """How many events of one name a session sent, and how many were invalid."""

    total: int
    invalid: int


@dataclass
class SessionTally:
    """One session: its events per name (all of them) and the property types of the events
    read (the newest `read`; `capped` when the session has more)."""

    session: str
    counts: dict[str | None, NameCounts] = field(default_factory=dict)
    types: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)  # events read, per name
    capped: bool = False

    def add(self, event_name: str | None, event: Mapping[str, Any]) -> None:
        """Count the property types of one event read."""
        if event_name is None:
            return
        self.read[event_name] = self.read.get(event_name, 0) + 1
        paths = self.types.setdefault(event_name, {})
        for path, kind in property_types(event).items():
            seen = paths.setdefault(path, {})
            seen[kind] = seen.get(kind, 0) + 1


def tally(
    session: str,
    counts: Mapping[str | None, NameCounts],
    events: Iterable[tuple[str | None, Mapping[str, Any]]],
    *,
    capped: bool,
) -> SessionTally:
    """A session's tally from its counts per name and the events read, (name, event) pairs."""
    found = SessionTally(session, dict(counts), capped=capped)
    for name, event in events:
        found.add(name, event)
    return found


@dataclass(frozen=True, slots=True)
class EventCell:
    session: str
    total: int
    invalid: int

    @property
    def sent(self) -> bool:
        return self.total > 0


@dataclass(frozen=True, slots=True)
class PropertyCell:
    """One session's view of a property: the types it was sent with and how often."""

    session: str
    types: dict[str, int]  # in TYPE_ORDER
    events_read: int  # events of this name read in the session

    @property
    def present(self) -> int:
        return sum(self.types.values())

    @property
    def label(self) -> str:
        return " | ".join(self.types) if self.types else "missing"


@dataclass(frozen=True, slots=True)
class PropertyRow:
    path: str
    cells: tuple[PropertyCell, ...]  # the sessions that sent the event only
    state: PropertyState

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def differs(self) -> bool:
        return self.state != "same"


@dataclass(frozen=True, slots=True)
class EventRow:
    event_name: str
    cells: tuple[EventCell, ...]  # one per session, in the sessions' order
    properties: tuple[PropertyRow, ...]

    @property
    def missing_in(self) -> list[str]:
        return [cell.session for cell in self.cells if not cell.sent]

    @property
    def differing(self) -> list[PropertyRow]:
        return [row for row in self.properties if row.differs]


@dataclass(frozen=True)
class Parity:
    sessions: tuple[str, ...]
    events: tuple[EventRow, ...]
    capped: tuple[str, ...]  # sessions whose properties come from their newest events only
    unnamed: dict[str, int]  # events without a name, per session (when any)

    @property
    def only_in_some(self) -> list[EventRow]:
        """Events some session sent and another did not."""
        return [row for row in self.events if row.missing_in]

    @property
    def differing_properties(self) -> list[tuple[EventRow, PropertyRow]]:
        return [(row, prop) for row in self.events for prop in row.differing]

    @property
    def invalid(self) -> dict[str, int]:
        """Invalid events per session (named ones)."""
        return {
            session: sum(row.cells[i].invalid for row in self.events)
            for i, session in enumerate(self.sessions)
        }

    @property
    def in_parity(self) -> bool:
        return not self.only_in_some and not self.differing_properties


def compare(tallies: Sequence[SessionTally]) -> Parity:
    """The sessions side by side: every event name any sent, and each event's properties."""
    names = sorted({name for t in tallies for name in t.counts if name is not None})
    rows = []
    for name in names:
        cells = tuple(EventCell(t.session, *_counts(t.counts.get(name))) for t in tallies)
        senders = [t for t in tallies if name in t.read]
        rows.append(EventRow(name, cells, _properties(name, senders)))
    unnamed = {t.session: t.counts[None].total for t in tallies if None in t.counts}
    capped = tuple(t.session for t in tallies if t.capped)
    return Parity(tuple(t.session for t in tallies), tuple(rows), capped, unnamed)


def _counts(counts: NameCounts | None) -> tuple[int, int]:
    return (counts.total, counts.invalid) if counts else (0, 0)


def _properties(name: str, senders: Sequence[SessionTally]) -> tuple[PropertyRow, ...]:
    """The event's property rows among the sessions whose events of it were read."""
    paths = sorted({path for t in senders for path in t.types.get(name, {})}, key=_path_order)
    rows = []
    for path in paths:
        cells = tuple(
            PropertyCell(
                t.session,
                _ordered(t.types.get(name, {}).get(path, {})),
                t.read.get(name, 0),
            )
            for t in senders
        )
        rows.append(PropertyRow(path, cells, _state(cells)))
    return tuple(rows)


def _state(cells: Sequence[PropertyCell]) -> PropertyState:
    """Missing beats a type difference, which beats one session's mixed types."""
    if any(not cell.types for cell in cells):
        return "missing"
    if len({tuple(cell.types) for cell in cells}) > 1:
        return "type_differs"
    if any(len(cell.types) > 1 for cell in cells):
        return "mixed"
    return "same"


def _ordered(types: Mapping[str, int]) -> dict[str, int]:
    return {kind: types[kind] for kind in TYPE_ORDER if kind in types}


def _path_order(path: str) -> tuple[int, str]:
    container = path.split(".", 1)[0].split("[", 1)[0]
    return (CONTAINERS.index(container) if container in CONTAINERS else len(CONTAINERS), path)
