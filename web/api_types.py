"""Shapes the JSON API's bodies share (times, ids, counts); /openapi.json is generated from them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from web.core.apps import APP_ID_PATTERN

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
