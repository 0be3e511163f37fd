"""Envelope rules every event obeys whatever the tracking plan: a name and a sane timestamp."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from web.core.validation.verdict import Issue

NAME_KEYS = ("eventName", "event", "event_name")
ID_KEYS = ("event_id", "messageId", "uuid")
MAX_NAME_LENGTH = 255

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)


def event_name_of(event: Mapping[str, Any]) -> Any:
    """The event's name as sent: the first of eventName, event, event_name present."""
    for key in NAME_KEYS:
        if key in event:
            return event[key]
    return None


def name_key_of(event: Mapping[str, Any]) -> str:
    # A plain loop: this runs for every event, and a generator costs more than the lookups.
    for key in NAME_KEYS:
        if key in event:
            return key
    return NAME_KEYS[0]


def check_envelope(event: Mapping[str, Any]) -> list[Issue]:
    """Issues with the event's name and timestamp; an empty list when both are fine."""
    issues: list[Issue] = []
    key = name_key_of(event)
    name = event.get(key)
    path = f"/{key}"
    if key not in event:
        issues.append(
            Issue(path, "required", "missing required property eventName (or event, event_name)")
        )
    elif not isinstance(name, str):
        issues.append(
            Issue(path, "type", f"{key} must be a string, got {describe(name)}", "string", name)
        )
    elif not name.strip():
        issues.append(Issue(path, "minLength", f"{key} must not be empty", 1, name))
    elif len(name) > MAX_NAME_LENGTH:
        issues.append(
            Issue(
                path,
                "maxLength",
                f"{key} must be at most {MAX_NAME_LENGTH} characters, got {len(name)}",
                MAX_NAME_LENGTH,
                len(name),
            )
        )
    if "timestamp" in event and not is_rfc3339(event["timestamp"]):
        value = event["timestamp"]
        issues.append(
            Issue(
                "/timestamp",
                "format",
                f"timestamp must be an RFC 3339 date-time such as 2025-12-10T15:45:00Z, "
                f"got {describe(value)}",
                "date-time",
                value,
            )
        )
    return issues


def is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:  # e.g. month 13 or February 30
        return False
    return True


# A JSON Schema type as a message names it.
TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
# Parsed JSON holds exactly these Python types (bool is not taken for an int here).
_JSON_TYPES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(value: Any) -> str:
    """The JSON Schema type of a parsed JSON value."""
    return _JSON_TYPES.get(type(value), "object")


def describe(value: Any) -> str:
    """A value as a person reads it in a message: its JSON type and, when short, the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'the string "{shown}"'
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    return "an object"
