"""OutageLog: one warning per outage, and a line when it ends if asked for."""

from __future__ import annotations

import logging

import pytest

from web.core.outage_log import OutageLog

LOGGER = "lvd.test.outage"


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_outage_log_warns_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = OutageLog(logging.getLogger(LOGGER))
    for attempt in range(3):
        outage.failed("down: %s", attempt)
    outage.succeeded()
    outage.failed("down: %s", "again")
    assert records(caplog) == [("WARNING", "down: 0"), ("WARNING", "down: again")]


def test_outage_log_says_when_the_outage_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = OutageLog(logging.getLogger(LOGGER), recovered="back")
    outage.succeeded()  # no outage yet: nothing to say
    outage.failed("down")
    outage.failed("down")
    outage.succeeded()
    outage.succeeded()
    assert records(caplog) == [("WARNING", "down"), ("INFO", "back")]


def test_outage_log_can_attach_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = OutageLog(logging.getLogger(LOGGER))
    try:
        raise OSError("refused")
    except OSError:
        outage.failed("cannot schedule", exc_info=True)
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.exc_info is not None and record.exc_info[0] is OSError
