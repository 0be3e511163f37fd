"""Naming conventions: warnings (never errors) for event and property names that break them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from web.core.validation.envelope import ID_KEYS, NAME_KEYS
from web.core.validation.messages import pointer
from web.core.validation.verdict import Issue

Convention = Literal["snake_case", "camelCase", "Title Case"]
CONVENTIONS: tuple[Convention, ...] = ("snake_case", "camelCase", "Title Case")

_PATTERNS: dict[str, re.Pattern[str]] = {
    "snake_case": re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$"),
    "camelCase": re.compile(r"^[a-z][a-zA-Z0-9]*$"),
    "Title Case": re.compile(r"^[A-Z][A-Za-z0-9]*(?: [A-Z0-9][A-Za-z0-9]*)*$"),
}
# Keys the envelope or the SDKs define; their spelling is not the app's to choose.
_RESERVED = frozenset(
    {
        *NAME_KEYS,
        *ID_KEYS,
        "timestamp",
        "type",
        "userId",
        "anonymousId",
        "context",
        "properties",
        "traits",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "integrations",
        "writeKey",
        "distinct_id",
        "api_key",
        "session",
    }
)


def check_naming(event: Mapping[str, Any], name: str | None, convention: Convention) -> list[Issue]:
    pattern = _PATTERNS[convention]
    issues = []
    if name and not pattern.match(name):
        key = next((k for k in NAME_KEYS if k in event), NAME_KEYS[0])
        issues.append(_warning([key], f"event name {name!r}", convention, name))
    for parts in _property_paths(event):
        prop = str(parts[-1])
        if not pattern.match(prop):
            issues.append(_warning(parts, f"property name {prop!r}", convention, prop))
    return issues


def _property_paths(event: Mapping[str, Any]) -> list[list[str | int]]:
    paths: list[list[str | int]] = [[key] for key in event if key not in _RESERVED]
    nested = event.get("properties")
    if isinstance(nested, Mapping):
        paths += [["properties", key] for key in nested]
    return paths


def _warning(parts: list[str | int], what: str, convention: str, actual: str) -> Issue:
    return Issue(
        pointer(parts),
        "naming",
        f"{what} does not follow the plan's {convention} convention",
        convention,
        actual,
        severity="warning",
    )
