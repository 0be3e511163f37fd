"""Shapes the JSON API's bodies share (times, ids, counts; text without U+0000), as types."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeGuard

from pydantic import Field, WithJsonSchema

from web.core.apps import APP_ID_PATTERN
from web.core.errors import Rejected

# An ISO 8601 time with its offset, as datetime.isoformat() writes it.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
# An app's id, as web/core/apps.py requires it.
AppId = Annotated[str, Field(pattern=APP_ID_PATTERN.pattern)]
# PostgreSQL's integer and bigint: a number beyond them names no row.
MAX_INT4 = 2**31 - 1
MAX_INT8 = 2**63 - 1
Int4 = Annotated[int, Field(ge=1, le=MAX_INT4)]
Int8 = Annotated[int, Field(ge=1, le=MAX_INT8)]
Count = Annotated[int, Field(ge=0)]
EventStatus = Literal["valid", "invalid"]


def whole_number(value: Any) -> TypeGuard[int]:
    """Whether a JSON value is a whole number (a bool is an int in Python, but not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def refuse_null_characters(value: Any) -> None:
    """Rejected (400 null_character) if any string or key in `value` holds U+0000, which
    PostgreSQL's text and jsonb cannot store (ingest refuses it with the same code)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "\x00" in item:
            raise Rejected(400, "null_character", "strings must not contain the character U+0000")
