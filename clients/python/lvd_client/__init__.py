"""The LVD Python client: sync and async clients for the query API, and a pytest plugin."""

from .aio import AsyncLvdClient
from .calls import DEFAULT_BASE_URL
from .models import (
    SESSION_HEADER,
    Event,
    EventFilters,
    Issue,
    LvdError,
    WaitFilters,
    WaitResult,
    new_session_id,
)
from .sync import LvdClient

__all__ = [
    "DEFAULT_BASE_URL",
    "SESSION_HEADER",
    "AsyncLvdClient",
    "Event",
    "EventFilters",
    "Issue",
    "LvdClient",
    "LvdError",
    "WaitFilters",
    "WaitResult",
    "new_session_id",
]
