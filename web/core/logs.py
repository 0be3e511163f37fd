"""Log setup for every process (web, worker, CLI): readable lines by default, JSON when asked."""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing.util
import os
import sys
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

# The id of the request being served (web/proxy.py sets it); log lines written meanwhile carry it.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a JSON access line keeps of Hypercorn's atoms (which also hold every environment
# variable, secrets included: never dump them whole).
_ACCESS_FIELDS = {
    "client": "h",
    "method": "m",
    "path": "U",
    "query": "q",
    "status": "s",
    "bytes": "b",
    "duration_ms": "D",
    "user_agent": "a",
    "request_id": "{x-request-id}o",
}


def utc_timestamp(created: float) -> str:
    """ISO 8601 in UTC to the millisecond: 2026-12-06T23:34:15.123Z."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Control characters in a message (a request path, an event name) are written escaped: a
# line break in one must not forge a log line of its own.
_ESCAPED_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


class TextFormatter(logging.Formatter):
    """Readable lines, timed in UTC like the JSON ones, one line a record."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_ESCAPED_CONTROLS)
        return super().formatMessage(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "hypercorn.access" and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        request_id = current_request_id.get()
        if request_id is not None:
            entry.setdefault("request_id", request_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, atom in _ACCESS_FIELDS.items():
        value = atoms.get(atom)
        if value not in (None, "", "-"):
            fields[field] = value
    if "status" in fields:
        fields["status"] = int(fields["status"])
    if "duration_ms" in fields:
        fields["duration_ms"] = round(int(fields["duration_ms"]) / 1000, 3)
    return fields


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
        # A multiprocessing child (Hypercorn's workers) ends with os._exit, skipping atexit
        # but running multiprocessing's finalizers: the last lines must not be lost there.
        multiprocessing.util.Finalize(None, self.flush, exitpriority=0)

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
    # Hypercorn's own loggers carry no handlers of theirs when web/server.py starts it, so
    # their lines come here and are formatted like every other (JSON included).
    if any(isinstance(handler, _LvdHandler) for handler in root.handlers):
        return
    handler = _LvdHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
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
