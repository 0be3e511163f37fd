"""The API description's parity paths (web/parity.py): the JSON answer, Markdown and CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from typing_extensions import TypedDict

from web.api_types import Count, Timestamp
from web.core.parity import MAX_SESSION_LENGTH, MAX_SESSIONS, MIN_SESSIONS, JsonType
from web.openapi_operations import READ, answer, operation
from web.openapi_refs import Schema, ref_param


class ParitySession(TypedDict):
    """A session compared: its invalid and unnamed events, and whether its properties were
    read from its newest events only."""

    session: str
    invalid: Count
    unnamed: Count
    capped: bool


class ParityEventCell(TypedDict):
    """How many events of this name one session sent (0: missing in it)."""

    session: str
    events: Count
    invalid: Count


class ParityPropertyCell(TypedDict):
    """The JSON types a session sent a property with, per type the events carrying it."""

    session: str
    types: dict[JsonType, Count]
    present: Count
    events_read: Count


class ParityProperty(TypedDict):
    """A property path (properties.*, traits.*, one level into objects) among the sessions
    whose events of this name were read; `missing` when one of them never sent it."""

    path: str
    state: Literal["same", "missing", "type_differs", "mixed"]
    sessions: list[ParityPropertyCell]


class ParityEvent(TypedDict):
    event_name: str
    missing_in: list[str]
    sessions: list[ParityEventCell]
    properties: list[ParityProperty]


class ParityReport(TypedDict):
    """Test sessions side by side: the events each sent and their properties' types."""

    app_id: str
    generated_at: Timestamp
    sessions: Annotated[
        list[ParitySession], Field(min_length=MIN_SESSIONS, max_length=MAX_SESSIONS)
    ]
    events_read_per_session: Count
    in_parity: bool
    only_in_some: list[str]
    properties_differing: Count
    events: list[ParityEvent]


PARITY_TYPES = (ParityReport,)
_REFUSALS = {
    "400": ("too_few_sessions", "too_many_sessions", "invalid_session"),
    "404": ("unknown_session",),
}


def _sessions_param() -> Schema:
    return {
        "name": "session",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": f"A test session to compare; repeat it {MIN_SESSIONS} to"
        f" {MAX_SESSIONS} times. A session without stored events is 404 unknown_session.",
        "schema": {
            "type": "array",
            "minItems": MIN_SESSIONS,
            "maxItems": MAX_SESSIONS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_SESSION_LENGTH},
        },
    }


def parity_paths() -> dict[str, Schema]:
    """GET the parity of sessions as JSON, Markdown and CSV."""
    paths: dict[str, Schema] = {
        "/api/apps/{app_id}/parity": {
            "parameters": [ref_param("AppId")],
            "get": operation(
                "get",
                "getParity",
                "export",
                "Test sessions side by side: events sent and property types, differences",
                scope=READ,
                answer=answer("The comparison", "ParityReport"),
                refusals=_REFUSALS,
                parameters=[_sessions_param()],
            ),
        }
    }
    for extension, media_type in (("md", "text/markdown"), ("csv", "text/csv")):
        paths[f"/apps/{{app_id}}/parity.{extension}"] = {
            "parameters": [ref_param("AppId")],
            "get": operation(
                "get",
                f"exportParity{extension.title()}",
                "export",
                f"Test sessions side by side, as {extension.upper()}",
                scope=READ,
                answer={
                    "description": "The parity report",
                    "content": {media_type: {"schema": {"type": "string"}}},
                },
                refusals=_REFUSALS,
                parameters=[_sessions_param()],
            ),
        }
    return paths
