"""Log setup shared by every process: readable lines by default, JSON when asked."""

from __future__ import annotations

import logging
import sys

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


class _LvdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so a second call does not add another."""


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    """Send `level` and above to stderr; handlers others installed (pytest's) stay in place."""
    root = logging.getLogger()
    root.setLevel(level)
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
