"""`lvd token` against the database, and the CLI's API commands with --token / LVD_TOKEN
against a real web process that requires sign-in (and write keys)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.conftest import (
    LiveServer,
    env_for,
    free_port,
    start_process,
    stop_process,
    wait_for_http,
)
from web.core.apps import add_app
from web.core.settings import Settings
from web.core.tokens import TOKEN_PATTERN

from .helpers import run_lvd_sync, unique

pytestmark = pytest.mark.e2e

PLAN = {"events": {"user_login": {"type": "object"}}, "allow_unplanned": True}


@pytest.fixture(scope="module")
def locked_server(
    live_server: LiveServer, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second web process on the live server's database and Redis (so its worker stores
    what this one accepts), as an exposed server runs: sign-in and write keys required."""
    log_dir = tmp_path_factory.mktemp("locked-web")
    port = free_port()
    env = env_for(
        settings,
        HOST="127.0.0.1",
        PORT=str(port),
        LVD_REQUIRE_LOGIN="true",
        LVD_REQUIRE_WRITE_KEYS="true",
    )
    lvd = str(Path(sys.executable).parent / "lvd")
    web = start_process([lvd, "web"], env, log_dir / "web.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/healthz", web)
        yield base_url
    finally:
        stop_process(web)


async def an_app(pool: asyncpg.Pool) -> str:
    app_id = unique("tok")
    async with pool.acquire() as conn:
        await add_app(conn, app_id, None)
    return app_id


def create_token(settings: Settings, *args: str) -> str:
    created = run_lvd_sync(settings, "token", "create", *args)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert TOKEN_PATTERN.fullmatch(token), created.stdout
    return token


async def test_token_cli_creates_lists_and_revokes(settings: Settings, pool: asyncpg.Pool) -> None:
    app_id = await an_app(pool)
    name = unique("ci")
    created = run_lvd_sync(
        settings, "token", "create", "--name", name, "--app", app_id, "--read-only"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert TOKEN_PATTERN.fullmatch(token)  # stdout is the token alone: $(lvd token create)
    assert "shown this once" in created.stderr
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, scope, app_id, created_by FROM api_tokens WHERE token_hash = $1",
            hashlib.sha256(token.encode()).hexdigest(),
        )
    assert (row["scope"], row["app_id"], row["created_by"]) == ("read", app_id, "cli")

    listed = run_lvd_sync(settings, "token", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if name in line)
    assert f"lvd_{token[4:12]}..." in line and "read" in line and app_id in line
    assert token not in listed.stdout

    revoked = run_lvd_sync(settings, "token", "revoke", str(row["id"]))
    assert revoked.returncode == 0, revoked.stderr
    as_json = orjson.loads(run_lvd_sync(settings, "token", "list", "--json").stdout)
    mine = [t for t in as_json["tokens"] if t["id"] == row["id"]]
    assert mine[0]["revoked_at"] is not None


def test_token_cli_refuses_bad_input(settings: Settings) -> None:
    unknown_app = run_lvd_sync(settings, "token", "create", "--name", "ci", "--app", "nope-x")
    assert unknown_app.returncode == 1
    assert "no app with id 'nope-x'" in unknown_app.stderr
    long_name = run_lvd_sync(settings, "token", "create", "--name", "x" * 101)
    assert long_name.returncode == 1
    assert "at most 100 characters" in long_name.stderr
    unknown_token = run_lvd_sync(settings, "token", "revoke", "987654321")
    assert unknown_token.returncode == 1
    assert "no token with id 987654321" in unknown_token.stderr
    both = run_lvd_sync(
        settings, "token", "create", "--name", "ci", "--read-only", "--scope", "admin"
    )
    assert both.returncode == 2  # argparse: not allowed together


async def test_token_cli_plan_and_alerts_need_a_token_where_sign_in_is_required(
    locked_server: str, settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    app_id = await an_app(pool)
    plan = tmp_path / "plan.json"
    plan.write_bytes(orjson.dumps(PLAN))
    push = ("plan", "push", app_id, str(plan), "--url", locked_server)

    refused = run_lvd_sync(settings, *push)
    assert refused.returncode == 1
    assert "sign in" in refused.stderr

    write = create_token(settings, "--name", unique("ci"), "--app", app_id)
    pushed = run_lvd_sync(settings, *push, "--token", write)
    assert pushed.returncode == 0, pushed.stderr
    assert "as version 1" in pushed.stdout

    pulled = run_lvd_sync(settings, "plan", "pull", app_id, "--url", locked_server, LVD_TOKEN=write)
    assert pulled.returncode == 0, pulled.stderr
    assert orjson.loads(pulled.stdout)["events"] == PLAN["events"]

    shown = run_lvd_sync(
        settings, "alerts", "show", app_id, "--url", locked_server, LVD_TOKEN=write
    )
    assert shown.returncode == 0, shown.stderr
    changed = run_lvd_sync(
        settings,
        "alerts",
        "set",
        app_id,
        "--window",
        "120",
        "--url",
        locked_server,
        "--token",
        write,
    )
    assert changed.returncode == 0, changed.stderr
    assert orjson.loads(changed.stdout)["invalid_share"]["window_seconds"] == 120

    read = create_token(settings, "--name", unique("ci"), "--read-only")
    not_allowed = run_lvd_sync(settings, *push, "--token", read)
    assert not_allowed.returncode == 1
    assert "scope write" in not_allowed.stderr


async def test_token_cli_loadtest_finds_the_write_key_with_a_token(
    locked_server: str, settings: Settings, pool: asyncpg.Pool
) -> None:
    app_id = await an_app(pool)
    token = create_token(settings, "--name", unique("load"), "--read-only", "--app", app_id)
    load = ("loadtest", "--url", locked_server, "--app", app_id, "--rate", "20/s")
    ran = run_lvd_sync(settings, *load, "--duration", "1", "--json", LVD_TOKEN=token)
    assert ran.returncode == 0, ran.stderr
    summary = orjson.loads(ran.stdout)
    assert summary["status_counts"] == {"202": 20}
    assert summary["stored_once"] == 20 and summary["lost"] == 0

    without = run_lvd_sync(
        settings, *load, "--duration", "0.5", "--json", "--no-verify", LVD_TOKEN=""
    )
    assert orjson.loads(without.stdout)["status_counts"] == {"401": 10}
