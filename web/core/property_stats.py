"""Property statistics from sampled payloads: per event and property, types, missing, top values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from web.core.plans import ENVELOPE_KEYS
from web.core.validation.envelope import json_type

TOP_VALUES = 5
# A string value longer than this is counted under its first characters and an ellipsis.
MAX_VALUE_CHARS = 80


@dataclass(frozen=True, slots=True)
class TopValue:
    value: str | int | float | bool
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


@dataclass(frozen=True, slots=True)
class PropertyStats:
    """One property of one event across the sampled events of that name.

    `path` is the property's name, or `parent.child` one level into a nested object.
    """

    path: str
    present: int
    missing: int
    types: dict[str, int]
    top_values: tuple[TopValue, ...]

    @property
    def missing_share(self) -> float:
        total = self.present + self.missing
        return self.missing / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "present": self.present,
            "missing": self.missing,
            "missing_share": round(self.missing_share, 4),
            "types": self.types,
            "top_values": [top.as_dict() for top in self.top_values],
        }


@dataclass(frozen=True, slots=True)
class EventStats:
    event_name: str
    sampled: int
    properties: tuple[PropertyStats, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_name": self.event_name,
            "sampled": self.sampled,
            "properties": [prop.as_dict() for prop in self.properties],
        }


def _values(payload: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(path, value) of every top-level property and of each one's own properties."""
    for key, value in payload.items():
        if key in ENVELOPE_KEYS:
            continue
        yield key, value
        if isinstance(value, dict):
            for child, inner in value.items():
                yield f"{key}.{child}", inner


def _countable(value: Any) -> str | int | float | bool | None:
    """The value as counted among the top values: scalars only, long strings cut."""
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, bool | int | float):
        return value
    return None


def event_stats(name: str, payloads: Sequence[Mapping[str, Any]]) -> EventStats:
    """The statistics of one event name's sampled payloads."""
    types: dict[str, Counter[str]] = {}
    values: dict[str, Counter[bytes]] = {}
    for payload in payloads:
        for path, value in _values(payload):
            types.setdefault(path, Counter())[json_type(value)] += 1
            counted = _countable(value)
            if counted is not None:
                # Keyed by JSON so that 1, 1.0, true and "1" stay apart.
                values.setdefault(path, Counter())[orjson.dumps(counted)] += 1
    properties = []
    for path in sorted(types):
        present = sum(types[path].values())
        top = (values.get(path) or Counter()).most_common(TOP_VALUES)
        properties.append(
            PropertyStats(
                path=path,
                present=present,
                missing=len(payloads) - present,
                types=dict(types[path].most_common()),
                top_values=tuple(TopValue(orjson.loads(key), count) for key, count in top),
            )
        )
    return EventStats(name, len(payloads), tuple(properties))


def property_stats(samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[EventStats]:
    """Per event name (sorted), the statistics of its sampled payloads."""
    return [event_stats(name, samples[name]) for name in sorted(samples)]
