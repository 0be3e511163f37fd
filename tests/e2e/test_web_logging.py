"""`lvd web`'s own log lines: no logging traceback at start, Hypercorn's lines in our format,
JSON with ISO-8601 UTC times and request ids, an access log only when asked for."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import env_for, free_port, start_process, stop_process, wait_for_http
from web.core.settings import Settings

pytestmark = pytest.mark.e2e

LVD = str(Path(sys.executable).parent / "lvd")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def serve_and_ask(
    settings: Settings, log_path: Path, *, trusted_id: str, **env: str
) -> tuple[str, str]:
    """Start `lvd web`, make two requests, stop it; (its log, the generated request id)."""
    port = free_port()
    web = start_process([LVD, "web"], env_for(settings, PORT=str(port), **env), log_path)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", web)
        generated = httpx.get(f"{base}/healthz").headers["x-request-id"]
        # From loopback, a trusted proxy by default: its request id is kept.
        kept = httpx.get(f"{base}/", headers={"X-Request-ID": trusted_id})
        assert kept.headers["x-request-id"] == trusted_id
    finally:
        stop_process(web)
    assert web.returncode == 0
    return log_path.read_text(errors="replace"), generated


def test_text_logs_start_without_a_logging_error_and_carry_hypercorns_lines(
    settings: Settings, tmp_path: Path
) -> None:
    log, generated = serve_and_ask(settings, tmp_path / "web.log", trusted_id="proxy-id-1")

    assert "Logging error" not in log and "Traceback" not in log, log[-3000:]
    assert re.search(r"Z INFO hypercorn\.error: Running on http://127\.0\.0\.1:\d+", log), log
    assert "Web server stopped (exit 0)" in log
    # No access log unless asked for.
    assert "hypercorn.access" not in log and generated not in log


def test_json_logs_every_line_with_utc_times_and_access_lines_with_request_ids(
    settings: Settings, tmp_path: Path
) -> None:
    log, generated = serve_and_ask(
        settings,
        tmp_path / "web.log",
        trusted_id="proxy-id-2",
        LVD_LOG_FORMAT="json",
        LVD_ACCESS_LOG="true",
    )

    lines: list[dict[str, Any]] = [orjson.loads(line) for line in log.splitlines() if line]
    assert all(ISO_UTC.match(line["time"]) for line in lines), log[-3000:]
    assert all(datetime.fromisoformat(line["time"]).utcoffset() is not None for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"hypercorn.error", "hypercorn.access", "web.lifespan", "lvd.web"} <= loggers
    access = {line["request_id"]: line for line in lines if line["logger"] == "hypercorn.access"}
    assert access[generated]["path"] == "/healthz" and access[generated]["status"] == 200
    assert access["proxy-id-2"]["path"] == "/" and access["proxy-id-2"]["client"]
    assert isinstance(access["proxy-id-2"]["duration_ms"], float)
    # Hypercorn's atoms carry every environment variable: none may reach the log.
    assert settings.database_url not in log
