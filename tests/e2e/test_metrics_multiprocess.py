"""`lvd web` with two processes: /metrics and the status figures agree whichever one answers.

Which process served a request is read from the operating system (psutil): the one holding
the server end of that TCP connection. Each test goes on until both processes have served.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    LiveServer,
    env_for,
    free_port,
    start_process,
    stop_process,
    wait_for_http,
)
from web.core.settings import Settings

from .helpers import LVD, quick_start_event, unique

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Requests sent at most while waiting for both processes to have served some.
MAX_ATTEMPTS = 200
_JSON = {"Content-Type": "application/json"}
INGEST_202 = ("lvd_ingest_requests_total", (("code", "202"), ("endpoint", "native.ingest")))


@dataclass
class WebServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}

    def serving(self, client_port: int) -> int:
        """The process holding the server end of the connection from client_port."""
        for pid in self.workers():
            with_connection = any(
                c.laddr and c.laddr.port == self.port and c.raddr and c.raddr.port == client_port
                for c in psutil.Process(pid).net_connections(kind="tcp")
            )
            if with_connection:
                return pid
        raise AssertionError(f"no process of the server holds the connection from {client_port}")


@dataclass
class Served:
    pid: int
    status: int
    body: bytes


def send(
    server: WebServer, method: str, path: str, body: bytes | None = None, **headers: str
) -> Served:
    """One request on a fresh connection; the serving process is found before it closes."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert conn.sock is not None  # kept alive after the answer: still held by the server
        return Served(server.serving(conn.sock.getsockname()[1]), response.status, data)
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass
class PerProcess:
    """How many requests each process served."""

    counts: dict[int, int] = field(default_factory=dict)

    def add(self, pid: int) -> None:
        self.counts[pid] = self.counts.get(pid, 0) + 1

    def each_at_least(self, count: int, processes: int = 2) -> bool:
        return len(self.counts) >= processes and min(self.counts.values()) >= count


def start_web(settings: Settings, log: Path, **env: str) -> WebServer:
    port = free_port()
    environ = env_for(settings, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2", **env)
    process = start_process([LVD, "web"], environ, log)
    server = WebServer(port, process, log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
    except BaseException:
        stop_process(process)
        raise
    return server


@pytest.fixture(scope="module")
def leftover_metrics_dir() -> Path:
    """What a web server no longer running left in the temporary folder."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    leftover = Path(tempfile.gettempdir()) / f"lvd-metrics-{process.pid}"
    leftover.mkdir(exist_ok=True)
    (leftover / "counter_1.db").write_bytes(b"")
    return leftover


@pytest.fixture(scope="module")
def two_processes(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory, leftover_metrics_dir: Path
) -> Iterator[WebServer]:
    """A second web server of two processes beside the live server (whose worker stores)."""
    log = tmp_path_factory.mktemp("two-processes") / "web.log"
    server = start_web(live_server.settings, log)
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture(scope="module")
def app_id(live_server: LiveServer) -> str:
    found = unique("mp")
    result = subprocess.run(
        [LVD, "create-app", found],
        env=env_for(live_server.settings),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return found


def test_metrics_ingest_totals_agree_whichever_process_answers(
    two_processes: WebServer, app_id: str
) -> None:
    ingested = PerProcess()
    for _ in range(MAX_ATTEMPTS):
        body = orjson.dumps(quick_start_event())
        served = send(two_processes, "POST", f"/api/logs/{app_id}", body, **_JSON)
        assert served.status == 202, served.body
        ingested.add(served.pid)
        if ingested.each_at_least(3):
            break
    assert ingested.each_at_least(3), f"one process took every request: {ingested.counts}"
    total = sum(ingested.counts.values())

    scraped = PerProcess()
    figures = []
    while not scraped.each_at_least(2) and len(figures) < MAX_ATTEMPTS:
        served = send(two_processes, "GET", "/metrics")
        assert served.status == 200
        scraped.add(served.pid)
        figures.append(samples(served.body.decode()))

    assert scraped.each_at_least(2), f"one process answered every scrape: {scraped.counts}"
    # Each process served fewer than `total`: only summing every process's file gives it.
    assert max(ingested.counts.values()) < total
    assert {f[INGEST_202] for f in figures} == {total}
    latency = ("lvd_ingest_latency_seconds_count", (("endpoint", "native.ingest"),))
    assert {f[latency] for f in figures} == {total}


def test_metrics_scrape_time_figures_agree_whichever_process_answers(
    live_server: LiveServer, two_processes: WebServer
) -> None:
    app_id = unique("mp")
    subprocess.run(
        [LVD, "create-app", app_id],
        env=env_for(live_server.settings),
        capture_output=True,
        check=True,
        timeout=30,
    )
    for _ in range(5):
        body = orjson.dumps(quick_start_event())
        assert send(two_processes, "POST", f"/api/logs/{app_id}", body, **_JSON).status == 202
    stored = ("lvd_events_total", (("app_id", app_id), ("status", "valid")))
    # The worker counts what it stored and reports every 2 s: wait for all five.
    deadline = time.monotonic() + 20
    while samples(send(two_processes, "GET", "/metrics").body.decode()).get(stored) != 5:
        assert time.monotonic() < deadline, "the worker did not report the five events"
        time.sleep(0.2)

    scraped = PerProcess()
    figures = []
    for _ in range(MAX_ATTEMPTS):
        served = send(two_processes, "GET", "/metrics")
        scraped.add(served.pid)
        figures.append(samples(served.body.decode()))
        if scraped.each_at_least(3):
            break

    assert scraped.each_at_least(3), scraped.counts
    assert {f.get(stored) for f in figures} == {5}
    for name in ("lvd_dead_letters_pending", "lvd_web_processes"):
        assert len({f[(name, ())] for f in figures}) == 1, name
    assert figures[0][("lvd_web_processes", ())] >= 3  # ours two, and the live server's
    alive = ("lvd_workers", (("state", "alive"),))
    assert {f[alive] for f in figures} == {figures[0][alive]} and figures[0][alive] >= 1


@contextlib.contextmanager
def held_streams(server: WebServer, app_id: str) -> Iterator[int]:
    """Dashboard streams held open until each process serves at least one; yields how many."""
    streams: list[http.client.HTTPConnection] = []
    holders = PerProcess()
    try:
        while not holders.each_at_least(1) or len(streams) < 4:
            assert len(streams) < 40, f"one process took every stream: {holders.counts}"
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            streams.append(conn)
            conn.request("GET", f"/apps/{app_id}/stream")
            assert conn.getresponse().status == 200
            assert conn.sock is not None
            holders.add(server.serving(conn.sock.getsockname()[1]))
        yield len(streams)
    finally:
        for conn in streams:
            conn.close()


def open_streams_shown(server: WebServer) -> tuple[int, int]:
    served = send(server, "GET", "/api/status")
    assert served.status == 200
    return served.pid, int(orjson.loads(served.body)["open_streams"])


def test_status_open_streams_total_whichever_process_answers(
    two_processes: WebServer, app_id: str
) -> None:
    _, before = open_streams_shown(two_processes)
    shown: dict[int, int] = {}
    with held_streams(two_processes, app_id) as opened:
        # Each process publishes its count every 2 s; give both a few beats to agree.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, count = open_streams_shown(two_processes)
            shown[pid] = count
            if len(shown) == 2 and set(shown.values()) == {before + opened}:
                break
            time.sleep(0.1)

    assert shown == dict.fromkeys(two_processes.workers() & shown.keys(), before + opened)
    assert len(shown) == 2


def test_lvd_web_default_metrics_dir_is_its_own_temporary_directory(
    two_processes: WebServer,
) -> None:
    # `lvd web` sets it before Hypercorn spawns its workers, which serve with it.
    [environ, *_] = [psutil.Process(pid).environ() for pid in two_processes.workers()]

    found = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
    assert found == Path(tempfile.gettempdir()) / f"lvd-metrics-{two_processes.process.pid}"
    assert {path.name.split("_")[-1] for path in found.glob("*.db")} <= {
        f"{pid}.db" for pid in two_processes.workers() | {two_processes.process.pid}
    }


def test_lvd_web_empties_the_metrics_dir_of_an_earlier_run(
    live_server: LiveServer, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # An earlier run's file: a process that counted a thousand accepted requests.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from web.metrics import INGEST_REQUESTS\n"
            "INGEST_REQUESTS.labels('native.ingest', '202').inc(1000)\n",
        ],
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PATH": ""},
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )
    [stale] = metrics_dir.glob("counter_*.db")

    server = start_web(
        live_server.settings, tmp_path / "web.log", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    try:
        served = send(server, "GET", "/metrics")
    finally:
        stop_process(server.process)

    assert not stale.exists()
    assert samples(served.body.decode()).get(INGEST_202, 0.0) == 0.0
    assert served.status == 200


def test_lvd_web_removes_the_metrics_dirs_of_servers_no_longer_running(
    two_processes: WebServer, leftover_metrics_dir: Path
) -> None:
    assert two_processes.process.poll() is None
    assert not leftover_metrics_dir.exists()
