"""The worker's one event loop (Dramatiq's AsyncIO middleware), reached from its threads."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from dramatiq.asyncio import get_event_loop_thread

_T = TypeVar("_T")


def run_on_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on the worker's event loop and wait for it, from a worker thread.

    Synchronous actors use this so the broker calls they make (enqueueing the next
    messages) block their own thread, never the loop the async actors share.
    """
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        coroutine.close()
        raise RuntimeError("the AsyncIO middleware is not installed")
    result: _T = loop_thread.run_coroutine(coroutine)
    return result
