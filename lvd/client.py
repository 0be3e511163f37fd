"""`lvd.client`, the client's old name: everything lvd_client exports, from the server package.

The client lives in lvd_client (clients/python/lvd_client), which the server's distribution
ships too and which installs on its own as `lvd-client`. Code written against this module
keeps working.
"""

from lvd_client import (
    DEFAULT_BASE_URL,
    SESSION_HEADER,
    AsyncLvdClient,
    Event,
    EventFilters,
    Issue,
    LvdClient,
    LvdError,
    WaitFilters,
    WaitResult,
    new_session_id,
)

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
