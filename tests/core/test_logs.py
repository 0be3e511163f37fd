"""The buffered log handler: every line arrives, in order, in few writes."""

from __future__ import annotations

import io
import logging
import time

from web.core.logs import BufferedStreamHandler, TextFormatter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_are_written_together_within_the_interval() -> None:
    stream = CountingStream()
    handler = BufferedStreamHandler(stream, interval=0.05)
    logger = logger_with(handler, "test.logs.batched")
    try:
        for index in range(100):
            logger.info("line %d", index)
        assert stream.getvalue() == ""  # nothing yet: buffered
        deadline = time.monotonic() + 2
        while stream.getvalue().count("\n") < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue().splitlines() == [f"line {i}" for i in range(100)]
        assert stream.writes <= 3
    finally:
        handler.close()


def test_a_warning_goes_out_at_once_with_what_came_before() -> None:
    stream = CountingStream()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = logger_with(handler, "test.logs.warning")
    try:
        logger.info("before")
        logger.warning("trouble")
        assert stream.getvalue().splitlines() == ["before", "trouble"]
    finally:
        handler.close()


def test_a_full_buffer_and_close_both_write_out() -> None:
    stream = CountingStream()
    handler = BufferedStreamHandler(stream, interval=60, max_buffered=100)
    logger = logger_with(handler, "test.logs.full")
    logger.info("x" * 150)  # over max_buffered: written now
    assert stream.getvalue() == "x" * 150 + "\n"
    logger.info("last")
    handler.close()
    assert stream.getvalue().endswith("last\n")


def test_a_text_line_escapes_control_characters_so_no_record_forges_another() -> None:
    # A request path or an event name may hold a line break (%0A in a URL).
    record = logging.LogRecord(
        "hypercorn.access", logging.INFO, __file__, 1, '"GET %s"', ("/x\n2026 INFO forged\r",), None
    )

    line = TextFormatter().format(record)

    assert "\n" not in line and "\r" not in line
    assert line.endswith('"GET /x\\x0a2026 INFO forged\\x0d"')
