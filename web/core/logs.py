"""Log setup for every process (web, worker, CLI): readable lines by default, JSON when asked."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from typing import TextIO

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class BufferedStreamHandler(logging.Handler):
    """Writes records to a stream in batches: one write a tenth of a second, not one a line.

    At 1 000 events/s the quick start's two log lines per event cost more CPU as separate
    write calls than judging the event. WARNING and above go out at once, with everything
    before them; a line is otherwise at most `interval` late.
    """

    def __init__(
        self, stream: TextIO, *, interval: float = 0.1, max_buffered: int = 64 * 1024
    ) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._max_buffered = max_buffered
        self._lines: list[str] = []
        self._buffered = 0
        self._stop_flushing = threading.Event()
        self._flusher_pid = 0  # a forked child needs a flusher thread of its own
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds self.lock around emit.
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        if self._flusher_pid != os.getpid():
            self._start_flusher()
        self._lines.append(line)
        self._buffered += len(line)
        if record.levelno >= logging.WARNING or self._buffered >= self._max_buffered:
            self._write_out()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._write_out()

    def close(self) -> None:
        self._stop_flushing.set()
        self.flush()
        super().close()

    def _write_out(self) -> None:
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._buffered = 0
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
            self._stream.write(text)
            self._stream.flush()

    def _start_flusher(self) -> None:
        self._flusher_pid = os.getpid()
        thread = threading.Thread(target=self._flush_periodically, name="log-flush", daemon=True)
        thread.start()

    def _flush_periodically(self) -> None:
        while not self._stop_flushing.wait(self._interval):
            self.flush()


class _LvdHandler(BufferedStreamHandler):
    """Marks the handler this module installed, so a second call does not add another."""


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    """Send `level` and above to stderr; handlers others installed (pytest's) stay in place."""
    root = logging.getLogger()
    root.setLevel(level)
    # Our formats use none of these, and collecting them is most of a record's cost: the
    # logging HOWTO's "Optimization" switches (no caller frame walk, thread, process names).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Hypercorn writes its own lines with its own handlers; passing them up would double them.
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).propagate = False
    if any(isinstance(handler, _LvdHandler) for handler in root.handlers):
        return
    handler = _LvdHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def configure_worker_logging(*, json: bool, level: str = "INFO") -> None:
    """A Dramatiq worker's logs: JSON lines when asked; otherwise Dramatiq's readable lines stay.

    Dramatiq's CLI has already configured logging in this process (unless --skip-logging),
    so its handlers are switched to JSON rather than a second handler added.
    """
    if not json:
        return
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        configure_logging(json=True, level=level)
        return
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
