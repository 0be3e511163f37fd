"""Logging a dependency's outage once: a warning when it starts, a line when it ends."""

from __future__ import annotations

import logging


class OutageLog:
    """For a loop that retries forever: warns at an outage's first failure, not at every try.

    One per loop (it remembers whether the last try failed); not shared between threads.
    """

    def __init__(self, log: logging.Logger, *, recovered: str | None = None) -> None:
        self._log = log
        self._recovered = recovered
        self._failing = False

    def failed(self, message: str, *args: object, exc_info: bool = False) -> None:
        """A try failed: log `message % args` as a warning if the outage is new."""
        if not self._failing:
            self._log.warning(message, *args, exc_info=exc_info)
        self._failing = True

    def succeeded(self) -> None:
        """A try worked: the outage, if there was one, is over (logged if `recovered` is set)."""
        if self._failing and self._recovered is not None:
            self._log.info(self._recovered)
        self._failing = False
