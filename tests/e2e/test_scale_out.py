"""Scale-out: two web processes and two worker processes sharing one broker and one database.

The live view works whichever web process a browser reaches (an SSE client on one sees the
rows of events posted to the other: PostgreSQL NOTIFY reaches every process's hub), and
every accepted event is stored exactly once (lvd.loadtest's oracle). The stack here is
private: its own Redis server and its own database (PrivateStack, which the alert and
RabbitMQ tests use too), so no other worker of this or another run takes its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from lvd.devservices.services import DevServices
from lvd.loadtest import format_report, send_load, verify_storage
from tests.conftest import (
    env_for,
    free_port,
    start_process,
    stop_process,
    wait_for_http,
    wait_for_log,
)
from web.core.db import drop_database, prepare_database, with_database
from web.core.settings import Settings

LVD = str(Path(sys.executable).parent / "lvd")
# Requests per second sent to each web process (2 events each): on a 2-core machine the
# load generator shares the CPU with two web, two worker, PostgreSQL and Redis processes.
RATE = 80.0
_ROW_ID = re.compile(r'data-event-id="([^"]*)"')


@dataclass
class PrivateStack:
    """A database and a broker of its own, and the web and worker processes started on them."""

    database_url: str
    broker_env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        settings = Settings(database_url=self.database_url)
        return {**env_for(settings), **self.broker_env, **extra}

    def start_web(self, name: str, **extra: str) -> str:
        port = free_port()
        web = start_process(
            [LVD, "web"],
            self.env(HOST="127.0.0.1", PORT=str(port), **extra),
            self.log_dir / f"{name}.log",
        )
        self.processes.append(web)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", web)
        return f"http://127.0.0.1:{port}"

    def start_worker(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"{name}.log"
        worker = start_process([LVD, "worker", "--threads", "4"], self.env(**extra), log_path)
        self.processes.append(worker)
        wait_for_log(log_path, "Worker process is ready for action", worker)
        return worker

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        stop_process(process)
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@contextlib.contextmanager
def private_stack(
    server_url: str, log_dir: Path, label: str, broker_env: dict[str, str] | None = None
) -> Iterator[PrivateStack]:
    """A migrated database of its own and, unless broker_env names one, a Redis of its own."""
    name = f"lvd_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    database_url = with_database(server_url, name)
    asyncio.run(prepare_database(database_url))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(asyncio.run, drop_database(database_url))
        if broker_env is None:
            services = DevServices(
                log_dir / "services", env={"DATABASE_URL": database_url}, probe_defaults=False
            )
            cleanup.enter_context(services)
            broker_env = {"REDIS_URL": services.start().redis_url, "BROKER_URL": ""}
        stack = PrivateStack(database_url, broker_env, log_dir)
        cleanup.callback(stack.stop_all)
        yield stack


async def create_app_over(base_url: str, app_id: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.post("/api/apps", json={"id": app_id})
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------- the tests


@dataclass
class TwoByTwo:
    stack: PrivateStack
    web_a: str
    web_b: str
    workers: list[subprocess.Popen[bytes]]
    app_id: str


@pytest.fixture(scope="module")
def two_by_two(
    service_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwoByTwo]:
    log_dir = tmp_path_factory.mktemp("scale-out")
    with private_stack(service_urls[0], log_dir, "scale") as stack:
        try:
            workers = [stack.start_worker(f"worker-{n}") for n in (1, 2)]
            web_a, web_b = stack.start_web("web-a"), stack.start_web("web-b")
            app_id = f"scale-{uuid.uuid4().hex[:8]}"
            asyncio.run(create_app_over(web_a, app_id))
            yield TwoByTwo(stack, web_a, web_b, workers, app_id)
        except BaseException:
            print(stack.logs())
            raise


async def first_row_ids(
    base_url: str, app_id: str, wanted: set[str], *, ready: asyncio.Event, within: float
) -> set[str]:
    """Read an app's SSE stream on one web process until every wanted event id shows up."""
    seen: set[str] = set()
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=within) as client,
        client.stream("GET", f"/apps/{app_id}/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ready.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for line in response.aiter_lines():
                    seen.update(set(_ROW_ID.findall(line)) & wanted)
                    if seen == wanted:
                        break
    return seen


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
async def test_scale_out_stream_on_one_web_process_shows_events_posted_to_the_other(
    two_by_two: TwoByTwo, direction: str
) -> None:
    watch, post = (
        (two_by_two.web_a, two_by_two.web_b)
        if direction == "a-to-b"
        else (two_by_two.web_b, two_by_two.web_a)
    )
    event_ids = {f"sse-{direction}-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)}
    ready = asyncio.Event()
    reader = asyncio.create_task(
        first_row_ids(watch, two_by_two.app_id, event_ids, ready=ready, within=15.0)
    )
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.2)  # the stream has subscribed to its process's hub
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=post, timeout=10) as client:
        for event_id in sorted(event_ids):
            response = await client.post(
                f"/api/logs/{two_by_two.app_id}",
                json={"eventName": "cross_process", "event_id": event_id},
            )
            assert response.status_code == 202, response.text
    seen = await reader
    assert seen == event_ids, two_by_two.stack.logs()
    print(
        f"FIGURE: scale-out: post on one web process to row on another's stream"
        f" = {1000 * (time.monotonic() - started):.0f} ms for 3 events",
        flush=True,
    )


async def test_scale_out_load_through_both_web_processes_is_stored_exactly_once(
    two_by_two: TwoByTwo,
) -> None:
    run = uuid.uuid4().hex[:8]
    database_url = two_by_two.stack.database_url
    reports = await asyncio.gather(
        *(
            send_load(
                url,
                two_by_two.app_id,
                RATE,
                4.0,
                batch=2,
                invalid_share=0.1,
                connections=16,
                progress=False,
                run_id=f"{run}-{label}",
            )
            for label, url in (("a", two_by_two.web_a), ("b", two_by_two.web_b))
        )
    )
    for report in reports:
        await verify_storage(report, database_url, two_by_two.app_id, drain_limit=30.0)
    summaries = [report.summary() for report in reports]
    for label, summary in zip("ab", summaries, strict=True):
        print(f"FIGURE: scale-out: web {label}: " + format_report(summary).replace("\n", "; "))
    for summary in summaries:
        assert summary["status_counts"] == {"202": summary["requests"]}, summary
        assert summary["stored_once"] == summary["accepted_events"] == 2 * summary["requests"]
        assert (summary["lost"], summary["doubled"], summary["stored_but_refused"]) == (0, 0, 0)
    # Both workers took messages: the queue is shared, not owned by one of them.
    for n in (1, 2):
        log = (two_by_two.stack.log_dir / f"worker-{n}.log").read_text(errors="replace")
        assert re.search(r"stored [1-9]\d* of \d+ events", log), f"worker-{n} stored nothing"
