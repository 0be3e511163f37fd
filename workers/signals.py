"""One stop signal stops a worker process once, however many copies of it arrive.

A signal sent to the whole process group (systemd's default stop, supervisord's
stopasgroup, `kill -TERM -- -PGID`) reaches Dramatiq's worker process twice: directly, and
again when Dramatiq's main process passes it on. Dramatiq takes the second copy as "kill
now" and calls sys.exit in the main thread while its worker threads still run, so the
process hangs forever. Here copies that arrive within a moment of the first are dropped,
and a later, deliberate second signal exits at once (unfinished messages were never
acknowledged: the broker hands them to another worker).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import dramatiq

log = logging.getLogger(__name__)

# In-flight messages get this long to finish after a stop signal (`lvd worker` passes it to
# Dramatiq): with the rest of the shutdown, a worker is gone within 10 s.
SHUTDOWN_TIMEOUT_MS = 7_000
# A copy passed on by Dramatiq's main process arrives within milliseconds of the original.
DUPLICATE_WINDOW_SECONDS = 2.0
# Dramatiq's exit status for a killed worker process (dramatiq.cli.RET_KILLED).
EXIT_KILLED = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class OneStopPerSignal(dramatiq.Middleware):
    def __init__(self, shutdown_timeout_ms: int = SHUTDOWN_TIMEOUT_MS) -> None:
        self._shutdown_timeout_ms = shutdown_timeout_ms

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Dramatiq's handlers are in place by now; only the main thread may replace them
        # (a worker started inside a test runs in another thread and keeps its own).
        if threading.current_thread() is not threading.main_thread():
            return
        for stop_signal in STOP_SIGNALS:
            original = signal.getsignal(stop_signal)
            if callable(original):
                signal.signal(stop_signal, self._once(original))

    def _once(self, original: Any) -> Any:
        first_at: float | None = None

        def handle(signum: int, frame: FrameType | None) -> None:
            nonlocal first_at
            now = time.monotonic()
            if first_at is None:
                first_at = now
                log.info(
                    "Stopping on %s: finishing in-flight messages (at most %.0f s),"
                    " handing prefetched ones back to the queue",
                    signal.Signals(signum).name,
                    self._shutdown_timeout_ms / 1000,
                )
                original(signum, frame)
            elif now - first_at >= DUPLICATE_WINDOW_SECONDS:
                log.warning(
                    "Second %s: exiting now; unfinished messages go back to the queue",
                    signal.Signals(signum).name,
                )
                logging.shutdown()
                os._exit(EXIT_KILLED)

        return handle
