"""workers/actors/: importing an actor module builds the global broker from the environment."""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import PROJECT_ROOT, last_json_line, run_fresh_python, run_in_project
from web.core.settings import Settings

INSPECT = """
import json, dramatiq, workers.actors.events
broker = dramatiq.get_broker()
actor = broker.get_actor("store_events")
kwargs = broker.client.connection_pool.connection_kwargs
print(json.dumps({
    "broker": type(broker).__name__,
    "is_actors_broker": broker is workers.actors.events.store_events.broker,
    "host": kwargs.get("host"),
    "port": kwargs.get("port"),
    "db": kwargs.get("db"),
    "socket_timeout": kwargs.get("socket_timeout"),
    "heartbeat_timeout": broker.heartbeat_timeout,
    "maintenance_chance": broker.maintenance_chance,
    "queues": sorted(broker.get_declared_queues()),
    "middleware": [type(m).__name__ for m in broker.middleware],
    "actor": actor.actor_name,
    "queue": actor.queue_name,
    "retry_when": getattr(actor.options.get("retry_when"), "__qualname__", None),
    "min_backoff": actor.options.get("min_backoff"),
    "max_backoff": actor.options.get("max_backoff"),
    "encoder": type(dramatiq.get_encoder()).__name__,
}))
"""


def inspect_actors(settings: Settings, **extra: str) -> dict[str, Any]:
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, **extra}
    found: dict[str, Any] = last_json_line(run_fresh_python(INSPECT, env))
    return found


@pytest.fixture(scope="module")
def actors_default(settings: Settings) -> dict[str, Any]:
    return inspect_actors(settings)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("broker", "EventsFirstRedisBroker"),
        ("is_actors_broker", True),
        ("actor", "store_events"),
        ("queue", "events"),
        ("queues", ["events"]),
        ("retry_when", "should_retry"),
        ("min_backoff", 200),
        ("max_backoff", 30_000),
        ("encoder", "OrjsonEncoder"),
        ("heartbeat_timeout", 5_000),
        ("maintenance_chance", 100_000),
        ("socket_timeout", None),  # workers wait out a hung Redis (see build_broker)
    ],
)
def test_actors_import_registers_store_events(
    actors_default: dict[str, Any], key: str, expected: object
) -> None:
    assert actors_default[key] == expected


def test_actors_import_builds_the_broker_from_redis_url(
    actors_default: dict[str, Any], settings: Settings
) -> None:
    url = urlsplit(settings.redis_url)
    assert (actors_default["host"], actors_default["port"]) == (url.hostname, url.port)
    assert actors_default["db"] == int(url.path.lstrip("/") or 0)


def test_actors_import_installs_the_worker_middleware(actors_default: dict[str, Any]) -> None:
    middleware = actors_default["middleware"]
    for name in ("AsyncIO", "CurrentMessage", "DatabasePool", "DeadLetters", "Retries"):
        assert name in middleware
    # The pool is opened on the AsyncIO loop, so that middleware must run first.
    assert middleware.index("AsyncIO") < middleware.index("DatabasePool")


def test_actors_import_reads_tuning_from_env(settings: Settings) -> None:
    found = inspect_actors(settings, LVD_HEARTBEAT_TIMEOUT_MS="4321", LVD_MAINTENANCE_CHANCE="77")
    assert (found["heartbeat_timeout"], found["maintenance_chance"]) == (4321, 77)


def test_actors_import_falls_back_to_broker_url(settings: Settings) -> None:
    url = urlsplit(settings.redis_url)
    broker_url = f"redis://{url.hostname}:{url.port}/9"
    found = inspect_actors(settings, REDIS_URL="", BROKER_URL=broker_url)
    assert (found["host"], found["port"], found["db"]) == (url.hostname, url.port, 9)


def test_actors_import_with_bad_env_fails_fast(settings: Settings) -> None:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": "http://x"}
    result = run_in_project([sys.executable, "-c", "import workers.actors.events"], env)
    assert result.returncode != 0
    assert "SettingsError: REDIS_URL must start with one of" in result.stderr


LOAD_ALL = """
import json, dramatiq
from workers.actors import actor_modules, load_actors
from workers.scheduler import periodic_jobs
load_actors()
broker = dramatiq.get_broker()
print(json.dumps({
    "modules": actor_modules(),
    "actors": sorted(broker.actors),
    "queues": sorted(broker.get_declared_queues()),
    "periodic": {job.actor_name: job.interval for job in periodic_jobs(broker)},
}))
"""


def load_all_actors(settings: Settings, **extra: str) -> dict[str, Any]:
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, **extra}
    found: dict[str, Any] = last_json_line(run_fresh_python(LOAD_ALL, env))
    return found


def test_actors_load_actors_declares_every_actor_and_queue(settings: Settings) -> None:
    found = load_all_actors(settings)
    assert found["modules"] == [
        "workers.actors.alerts",
        "workers.actors.events",
        "workers.actors.maintenance",
    ]
    assert found["actors"] == ["check_alerts", "purge_expired_events", "send_alert", "store_events"]
    assert found["queues"] == ["emails", "events", "maintenance"]


def test_actors_periodic_jobs_are_declared_beside_their_actors(settings: Settings) -> None:
    found = load_all_actors(settings, LVD_ALERT_INTERVAL="7", LVD_PURGE_INTERVAL="600")
    assert found["periodic"] == {"check_alerts": 7.0, "purge_expired_events": 600.0}


def test_actors_every_actor_module_declares_an_actor() -> None:
    # A module in workers/actors/ is handed to `dramatiq` by `lvd worker`: only actors live there.
    for path in sorted((PROJECT_ROOT / "workers" / "actors").glob("*.py")):
        if path.name != "__init__.py":
            assert "@dramatiq.actor(" in path.read_text(encoding="utf-8"), path
