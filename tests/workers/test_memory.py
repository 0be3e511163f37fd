"""workers/memory.py: the free heap pages handed back on a schedule, and only where glibc is."""

from __future__ import annotations

import ctypes
import platform
import threading
from typing import Any

import pytest

from workers.memory import ReturnFreeMemory, glibc_malloc_trim


def test_trims_on_its_interval_until_the_worker_stops() -> None:
    calls: list[int] = []
    three = threading.Event()

    def trim(pad: int) -> int:
        calls.append(pad)
        if len(calls) == 3:
            three.set()
        return 1

    middleware = ReturnFreeMemory(interval=0.01, trim=trim)
    middleware.after_worker_boot(None, None)  # type: ignore[arg-type]
    assert three.wait(5), "malloc_trim was not called three times"
    middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]
    stopped_at = len(calls)
    threading.Event().wait(0.05)
    assert len(calls) == stopped_at
    assert set(calls) == {0}  # no padding: every free page at the top goes back too


def test_a_failing_trim_stops_trimming_but_not_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    failed = threading.Event()

    def trim(pad: int) -> int:
        calls.append(pad)
        failed.set()
        raise OSError("no such function")

    middleware = ReturnFreeMemory(interval=0.01, trim=trim)
    middleware.after_worker_boot(None, None)  # type: ignore[arg-type]
    assert failed.wait(5)
    threading.Event().wait(0.05)
    middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]
    assert calls == [0]
    assert "malloc_trim failed" in caplog.text


def test_without_glibc_nothing_runs() -> None:
    middleware = ReturnFreeMemory(interval=0.01, trim=None)
    before = threading.active_count()
    middleware.after_worker_boot(None, None)  # type: ignore[arg-type]
    assert threading.active_count() == before
    middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]


def test_glibc_trim_is_found_and_callable_here() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    trim = glibc_malloc_trim()
    assert trim is not None
    blocks: list[Any] = [ctypes.create_string_buffer(200_000) for _ in range(50)]
    del blocks
    assert trim(0) in (0, 1)  # 1: memory was released, 0: there was none to release
