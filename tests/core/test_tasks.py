"""web/core/tasks.py: background tasks stop even when one cancellation is swallowed."""

from __future__ import annotations

import asyncio
import time

from web.core.tasks import cancel_and_wait


async def swallows_the_first_cancellation(stopped: list[str]) -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        # What a library's asyncio.timeout does when a cancellation lands inside it.
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
    try:
        await asyncio.sleep(30)  # carries on, as the status publisher did
    finally:
        stopped.append("stopped")


async def test_a_swallowed_cancellation_is_sent_again() -> None:
    stopped: list[str] = []
    task = asyncio.create_task(swallows_the_first_cancellation(stopped))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    await cancel_and_wait(task)
    assert task.done() and task.cancelled()
    assert stopped == ["stopped"]
    assert time.monotonic() - started < 5  # not the 30 s sleep


async def test_finished_and_failed_tasks_are_collected_quietly() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fail())
    finished = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    await cancel_and_wait(failed, finished)  # nothing pending: returns at once, no raise
    assert isinstance(failed.exception(), ValueError)
    assert finished.done() and not finished.cancelled()
