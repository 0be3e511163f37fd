"""Shared fixtures: real PostgreSQL and Redis (found or started), a throwaway database per run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
import pytest
import redis

from lvd.devservices.services import DevServices
from web.core.apps import add_app
from web.core.db import create_pool, drop_database, prepare_database, with_database
from web.core.queries.apps import select_app
from web.core.queries.base import App, LogEntry
from web.core.queries.events import select_log_entries
from web.core.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
# Redis database index the tests own; it is flushed at the start of a run.
TEST_REDIS_DB = 13


def skip_or_fail(reason: str) -> None:
    """Missing tools skip a test on a laptop, but fail it in CI, where they must exist."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def unfrozen_heap() -> Iterator[None]:
    """A web app started in this process freezes what exists (web.core.heap); undo it after
    each test, so one test's objects do not outlive it for the rest of the run."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def service_urls() -> Iterator[tuple[str, str]]:
    """The PostgreSQL server and Redis the suite uses: from the environment, found, or started."""
    with DevServices(PROJECT_ROOT / ".lvd" / "test-services") as services:
        endpoints = services.start()
        yield endpoints.database_url, endpoints.redis_url


@pytest.fixture(scope="session")
def settings(service_urls: tuple[str, str]) -> Iterator[Settings]:
    server_url, redis_url = service_urls
    database_url = with_database(server_url, f"lvd_test_{os.getpid()}")
    asyncio.run(prepare_database(database_url))
    parts = urlsplit(redis_url)
    redis_url = urlunsplit(parts._replace(path=f"/{TEST_REDIS_DB}"))
    redis.Redis.from_url(redis_url).flushdb()
    yield Settings(database_url=database_url, redis_url=redis_url)
    asyncio.run(_drop_database(server_url, database_url))


async def _drop_database(server_url: str, database_url: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        name = urlsplit(database_url).path.lstrip("/")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    db_pool = await create_pool(settings.database_url, min_size=1, max_size=5)
    yield db_pool
    await db_pool.close()


@contextlib.asynccontextmanager
async def private_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A freshly migrated database of its own, dropped afterwards: for tests that need
    history nobody else writes to (or truncates). Yields its URL."""
    url = with_database(server_url, f"lvd_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    await prepare_database(url)
    try:
        yield url
    finally:
        await drop_database(url)


@contextlib.asynccontextmanager
async def private_pool(
    server_url: str, label: str, *, max_size: int
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a private_database."""
    async with private_database(server_url, label) as url:
        db_pool = await create_pool(url, min_size=1, max_size=max_size)
        try:
            yield db_pool
        finally:
            await db_pool.close()


@pytest.fixture
async def clean_db(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE log_entries, apps CASCADE")
        # Running web processes cache apps: tell them all to forget (an empty payload).
        await conn.execute("SELECT pg_notify('lvd_plans', '')")


@pytest.fixture
async def test_app_row(pool: asyncpg.Pool, clean_db: None) -> App:
    async with pool.acquire() as conn:
        return await add_app(conn, "test-app", "Test app")


def run_in_project(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`args` run to the end in the project folder, with `env` over this process's environment,
    its output captured as text."""
    return subprocess.run(
        args,
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_fresh_python(code: str, env: dict[str, str]) -> str:
    """What a fresh interpreter running `code` printed; fails the test if it failed."""
    result = run_in_project([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def last_json_line(output: str) -> Any:
    """The JSON value a child printed last (anything it logged before is skipped)."""
    return orjson.loads(output.strip().splitlines()[-1])


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass
class LiveServer:
    """A real web process (hypercorn) and a real worker process (dramatiq) for this run."""

    base_url: str
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    log_dir: Path
    settings: Settings

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def start_process(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    # The child keeps its own descriptor of the log; the parent's copy is closed at once.
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            args, env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )


def wait_for_log(
    path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{path.name}: the process exited with {process.returncode}")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{path.name} did not say {text!r} within {timeout} s")


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log_dir = tmp_path_factory.mktemp("live-server")
    port = free_port()
    env = env_for(settings, HOST="127.0.0.1", PORT=str(port))
    lvd = str(Path(sys.executable).parent / "lvd")
    worker = start_process([lvd, "worker", "--threads", "4"], env, log_dir / "worker.log")
    web = start_process([lvd, "web"], env, log_dir / "web.log")
    server = LiveServer(f"http://127.0.0.1:{port}", web, worker, log_dir, replace(settings))
    try:
        wait_for_http(f"{server.base_url}/healthz", web)
        wait_for_log(log_dir / "worker.log", "Worker process is ready for action", worker)
        yield server
    finally:
        stop_process(web)
        stop_process(worker)


async def wait_for_rows(
    pool: asyncpg.Pool, app_id: str, count: int, within: float = 10.0
) -> list[LogEntry]:
    """Poll until the app has at least `count` stored events (tests only: the product pushes)."""
    deadline = time.monotonic() + within
    while True:
        async with pool.acquire() as conn:
            rows = await select_log_entries(conn, app_id, limit=max(count, 100))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def new_app(pool: asyncpg.Pool, prefix: str = "plans") -> str:
    """A fresh app without a plan; its id. Compiled plans are cached by (app, version) for
    good, so a test that saves plans wants an app of its own."""
    app_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await add_app(conn, app_id, None)
    return app_id


async def current_plan_version(pool: asyncpg.Pool, app_id: str) -> int | None:
    """The plan version the app's row points at (None: no plan)."""
    async with pool.acquire() as conn:
        app = await select_app(conn, app_id)
    assert app is not None
    return app.plan_version
