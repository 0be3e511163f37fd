"""The one exception core code raises to refuse a request: an HTTP status and a code."""

from __future__ import annotations

from typing import Any

# Seconds a client should wait before retrying when the queue is unavailable.
RETRY_AFTER_SECONDS = 2
TOO_LARGE_MESSAGE = "the request body is over the size limit"


class Rejected(Exception):
    """The request cannot go on; web/errors.py turns this into the HTTP answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
