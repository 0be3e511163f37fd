"""The lvd command line as an operator runs it: a real subprocess with the test settings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import env_for, free_port
from web.core.queries.apps import select_app
from web.core.settings import Settings

from .helpers import run_lvd, unique

pytestmark = pytest.mark.e2e

LVD = str(Path(sys.executable).parent / "lvd")
# Each pre-flight check gives up after 3 s; a quick exit is well within this.
QUICK_EXIT_SECONDS = 10.0


def run_lvd_sync(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LVD, *args],
        env=env_for(settings, **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_create_app_prints_write_key_and_stores_app(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    app_id = unique("cli")

    code, stdout, stderr = await run_lvd(settings, "create-app", app_id, "--name", "CLI app")

    assert code == 0, stderr
    async with pool.acquire() as conn:
        app = await select_app(conn, app_id)
    assert app is not None, f"lvd create-app said {stdout!r} but the app is not in the database"
    assert app.name == "CLI app"
    assert f"Write key: {app.write_key}" in stdout


async def test_create_app_existing_id_exits_1_with_message(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    app_id = unique("cli")
    first, _, first_err = await run_lvd(settings, "create-app", app_id)
    assert first == 0, first_err

    code, stdout, stderr = await run_lvd(settings, "create-app", app_id)

    assert code == 1
    assert "already exists" in stderr
    assert app_id in stderr
    assert "Write key" not in stdout
    async with pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM apps WHERE id = $1", app_id)
    assert count == 1


def test_migrate_migrated_database_says_up_to_date(settings: Settings) -> None:
    result = run_lvd_sync(settings, "migrate")

    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_worker_redis_unreachable_exits_quickly_naming_redis(settings: Settings) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()

    result = run_lvd_sync(settings, "worker", REDIS_URL=closed)

    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < QUICK_EXIT_SECONDS, f"lvd worker took {elapsed:.1f} s to give up"
    assert "Redis" in result.stderr
    assert closed in result.stderr
    assert "redis-server" in result.stderr, "the message should say how to start Redis"
    assert "PostgreSQL" not in result.stderr, "PostgreSQL is up and should not be blamed"


def test_worker_postgres_unreachable_exits_quickly_naming_postgres(settings: Settings) -> None:
    closed = f"postgresql://127.0.0.1:{free_port()}/lvd"
    started = time.monotonic()

    result = run_lvd_sync(settings, "worker", DATABASE_URL=closed)

    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < QUICK_EXIT_SECONDS, f"lvd worker took {elapsed:.1f} s to give up"
    assert "PostgreSQL" in result.stderr
    assert f"127.0.0.1:{closed.rsplit(':', 1)[1].split('/')[0]}" in result.stderr
    assert "Start it" in result.stderr, "the message should say how to start PostgreSQL"
    assert "Redis" not in result.stderr, "Redis is up and should not be blamed"


def test_worker_rabbitmq_unreachable_exits_quickly_naming_rabbitmq(settings: Settings) -> None:
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    started = time.monotonic()

    result = run_lvd_sync(settings, "worker", BROKER_URL=closed)

    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < QUICK_EXIT_SECONDS, f"lvd worker took {elapsed:.1f} s to give up"
    assert "RabbitMQ does not answer" in result.stderr
    assert "guest:guest" not in result.stderr, "the password must not be printed"
    assert "Redis" not in result.stderr, "Redis is not the broker here and should not be blamed"
