"""Startup objects frozen out of the garbage collector's sweeps, in the web and the worker.

tests/conftest.py unfreezes after every test."""

from __future__ import annotations

import gc
import weakref

from web.core.heap import freeze_startup_objects
from workers.memory import FreezeStartupObjects


class Held:
    """An object the collector tracks (it has a __dict__)."""


def is_tracked_by_a_generation(obj: object) -> bool:
    # gc.get_objects lists generations 0-2, never the frozen (permanent) one.
    return any(each is obj for each in gc.get_objects())


def test_objects_alive_at_the_call_are_frozen_and_later_ones_are_not() -> None:
    before = Held()
    assert is_tracked_by_a_generation(before)
    assert freeze_startup_objects() > 0
    after = Held()
    assert not is_tracked_by_a_generation(before)
    assert is_tracked_by_a_generation(after)


def test_garbage_is_collected_first_not_frozen() -> None:
    cycle = Held()
    cycle.itself = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle
    freeze_startup_objects()
    assert gone() is None  # frozen, the cycle would live as long as the process


def test_the_worker_freezes_once_booted() -> None:
    booted_with = Held()
    FreezeStartupObjects().after_worker_boot(broker=None, worker=None)  # type: ignore[arg-type]
    assert not is_tracked_by_a_generation(booted_with)
