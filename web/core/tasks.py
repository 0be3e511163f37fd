"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
from typing import Any

# How long one cancellation is given before it is sent again.
RECANCEL_SECONDS = 0.5


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the tasks and wait until each has finished.

    One cancel() is not always enough: redis-py's asyncio client runs each command under
    asyncio.timeout, and a cancellation that arrives inside it can be consumed there, so the
    task carries on with its next sleep. A web process then never finished shutting down
    (seen in the suite: the status publisher, cancelled during its first heartbeat). The
    cancellation is repeated until the task is really done.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:  # retrieve outcomes, so asyncio does not log them as never seen
        if not task.cancelled():
            task.exception()
