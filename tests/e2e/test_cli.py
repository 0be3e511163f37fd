"""The lvd command line as an operator runs it: a real subprocess with the test settings."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import free_port
from web.core.queries.apps import select_app
from web.core.settings import Settings

from .helpers import run_lvd, run_lvd_sync, unique

pytestmark = pytest.mark.e2e

LVD = str(Path(sys.executable).parent / "lvd")
# Each pre-flight check gives up after 3 s; a quick exit is well within this.
QUICK_EXIT_SECONDS = 10.0


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


# (the setting pointed at a closed port, what the message must say, what it must not)
UNREACHABLE = {
    "redis": (
        "REDIS_URL",
        "redis://127.0.0.1:{port}/0",
        ("Redis", "redis://127.0.0.1:{port}/0", "redis-server"),  # how to start it, too
        ("PostgreSQL",),  # up, and not to be blamed
    ),
    "postgres": (
        "DATABASE_URL",
        "postgresql://127.0.0.1:{port}/lvd",
        ("PostgreSQL", "127.0.0.1:{port}", "Start it"),
        ("Redis",),
    ),
    "rabbitmq": (
        "BROKER_URL",
        "amqp://guest:guest@127.0.0.1:{port}/",
        ("RabbitMQ does not answer",),
        ("guest:guest", "Redis"),  # no password printed; Redis is not the broker here
    ),
}


@pytest.mark.parametrize("service", list(UNREACHABLE))
def test_worker_with_a_service_unreachable_exits_quickly_naming_it(
    settings: Settings, service: str
) -> None:
    variable, url, says, never = UNREACHABLE[service]
    port = free_port()
    started = time.monotonic()

    result = run_lvd_sync(settings, "worker", **{variable: url.format(port=port)})

    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < QUICK_EXIT_SECONDS, f"lvd worker took {elapsed:.1f} s to give up"
    for phrase in says:
        assert phrase.format(port=port) in result.stderr
    for phrase in never:
        assert phrase not in result.stderr
