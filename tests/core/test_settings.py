"""web/core/settings.py: defaults, parsing of the environment, and failing fast on bad values."""

from __future__ import annotations

import dataclasses

import pytest

from web.core.forwarded import TrustedProxies
from web.core.settings import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    Limits,
    Settings,
    SettingsError,
)


def env_id(value: object) -> str | None:
    if isinstance(value, dict):
        return ",".join(f"{key}={raw}" for key, raw in value.items())
    return None


def test_settings_from_empty_env_is_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "postgresql://127.0.0.1:5432/lvd"
    assert settings.redis_url == DEFAULT_REDIS_URL == "redis://127.0.0.1:6379/0"
    assert (settings.host, settings.port) == ("127.0.0.1", 5001)
    assert settings.enqueue_timeout == 2.0
    assert settings.enqueue_batch_size == 500
    assert settings.heartbeat_timeout_ms == 5_000
    assert settings.maintenance_chance == 100_000
    assert settings.page_size == 100
    assert settings.log_json is False
    assert settings.access_log is False
    # The proxy on the same machine is believed out of the box, nobody else.
    assert settings.trusted_proxies.trusts("127.0.0.1") and settings.trusted_proxies.trusts("::1")
    assert not settings.trusted_proxies.trusts("192.0.2.1")


def test_limits_defaults_are_the_published_ones() -> None:
    assert Limits() == Limits(
        max_event_bytes=32 * 1024,
        max_request_bytes=500 * 1024,
        max_events_per_request=500,
        max_json_depth=64,
        max_event_name_length=255,
        max_event_id_length=100,
    )
    assert Settings().limits == Limits()


@pytest.mark.parametrize("frozen", [Settings(), Limits()])
def test_settings_are_frozen(frozen: object) -> None:
    field = dataclasses.fields(frozen)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(frozen, field, "changed")


@pytest.mark.parametrize(
    ("env", "attribute", "value"),
    [
        (
            {"DATABASE_URL": "postgresql://u:p@db:5433/x"},
            "database_url",
            "postgresql://u:p@db:5433/x",
        ),
        ({"DATABASE_URL": "postgres://db/x"}, "database_url", "postgres://db/x"),
        ({"DATABASE_URL": ""}, "database_url", DEFAULT_DATABASE_URL),
        ({"REDIS_URL": "redis://r:6380/3"}, "redis_url", "redis://r:6380/3"),
        ({"REDIS_URL": "rediss://r:6380/3"}, "redis_url", "rediss://r:6380/3"),
        ({"REDIS_URL": "unix:///tmp/redis.sock"}, "redis_url", "unix:///tmp/redis.sock"),
        ({"BROKER_URL": "redis://broker:1/2"}, "redis_url", "redis://broker:1/2"),
        ({"REDIS_URL": "", "BROKER_URL": "redis://broker:1/2"}, "redis_url", "redis://broker:1/2"),
        (
            {"REDIS_URL": "redis://first:1/0", "BROKER_URL": "redis://second:1/0"},
            "redis_url",
            "redis://first:1/0",
        ),
        ({"HOST": "0.0.0.0"}, "host", "0.0.0.0"),
        ({"HOST": ""}, "host", "127.0.0.1"),
        ({"PORT": "8080"}, "port", 8080),
        ({"PORT": ""}, "port", 5001),
        ({"PORT": " 8080 "}, "port", 8080),
        ({"LVD_ENQUEUE_TIMEOUT": "0.5"}, "enqueue_timeout", 0.5),
        ({"LVD_ENQUEUE_TIMEOUT": "3"}, "enqueue_timeout", 3.0),
        ({"LVD_ENQUEUE_BATCH_SIZE": "50"}, "enqueue_batch_size", 50),
        ({"LVD_INGEST_BUDGET_BYTES": "65536"}, "ingest_budget_bytes", 65_536),
        ({"LVD_INGEST_BUDGET_BYTES": ""}, "ingest_budget_bytes", 2 * 1024 * 1024),
        ({"LVD_HEARTBEAT_TIMEOUT_MS": "5000"}, "heartbeat_timeout_ms", 5000),
        ({"LVD_MAINTENANCE_CHANCE": "1000000"}, "maintenance_chance", 1_000_000),
        ({"LVD_PAGE_SIZE": "25"}, "page_size", 25),
        ({"LVD_LOG_FORMAT": "json"}, "log_json", True),
        ({"LVD_LOG_FORMAT": "JSON"}, "log_json", True),
        ({"LVD_LOG_FORMAT": "text"}, "log_json", False),
        ({"LVD_ACCESS_LOG": "true"}, "access_log", True),
        ({"LVD_ACCESS_LOG": ""}, "access_log", False),
        ({"LVD_FORWARDED_ALLOW_IPS": "*"}, "trusted_proxies", TrustedProxies(everyone=True)),
        (
            {"LVD_FORWARDED_ALLOW_IPS": " 10.0.0.0/8, 192.0.2.7 "},
            "trusted_proxies",
            TrustedProxies.parse("10.0.0.0/8,192.0.2.7"),
        ),
        ({"LVD_FORWARDED_ALLOW_IPS": ""}, "trusted_proxies", TrustedProxies.parse("127.0.0.1,::1")),
        ({"UNRELATED": "x"}, "port", 5001),
    ],
    ids=env_id,
)
def test_settings_from_env_reads_each_variable(
    env: dict[str, str], attribute: str, value: object
) -> None:
    assert getattr(Settings.from_env(env), attribute) == value


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "db.example.com:5432/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "redis://127.0.0.1:6379/0"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://r:6379/0"}, "REDIS_URL"),
        ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL"),
        ({"BROKER_URL": "kafka://k:9092"}, "REDIS_URL"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "80.5"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"PORT": "0"}, "PORT"),
        # A TCP port is at most 65535; anything above cannot be bound.
        ({"PORT": "70000"}, "PORT"),
        ({"LVD_ENQUEUE_TIMEOUT": "soon"}, "LVD_ENQUEUE_TIMEOUT"),
        ({"LVD_ENQUEUE_TIMEOUT": "-2"}, "LVD_ENQUEUE_TIMEOUT"),
        ({"LVD_ENQUEUE_TIMEOUT": "0"}, "LVD_ENQUEUE_TIMEOUT"),
        # A timeout that is not a finite number is no bound at all: a hung Redis would hang us.
        ({"LVD_ENQUEUE_TIMEOUT": "nan"}, "LVD_ENQUEUE_TIMEOUT"),
        ({"LVD_ENQUEUE_TIMEOUT": "inf"}, "LVD_ENQUEUE_TIMEOUT"),
        ({"LVD_ENQUEUE_BATCH_SIZE": "many"}, "LVD_ENQUEUE_BATCH_SIZE"),
        ({"LVD_ENQUEUE_BATCH_SIZE": "-5"}, "LVD_ENQUEUE_BATCH_SIZE"),
        ({"LVD_HEARTBEAT_TIMEOUT_MS": "1e3"}, "LVD_HEARTBEAT_TIMEOUT_MS"),
        ({"LVD_MAINTENANCE_CHANCE": "0"}, "LVD_MAINTENANCE_CHANCE"),
        ({"LVD_PAGE_SIZE": "-100"}, "LVD_PAGE_SIZE"),
        ({"LVD_FORWARDED_ALLOW_IPS": "nginx"}, "LVD_FORWARDED_ALLOW_IPS"),
        ({"LVD_FORWARDED_ALLOW_IPS": "10.0.0.0/33"}, "LVD_FORWARDED_ALLOW_IPS"),
        ({"LVD_ACCESS_LOG": "maybe"}, "LVD_ACCESS_LOG"),
    ],
    ids=env_id,
)
def test_settings_from_env_bad_value_fails_fast(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("http", "PORT must be a whole number, got 'http'"),
        ("-1", "PORT must be positive, got -1"),
    ],
)
def test_settings_error_message_names_the_variable_and_value(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}$"):
        Settings.from_env({"PORT": raw})


def test_settings_from_env_without_argument_reads_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-environ/x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("BROKER_URL", "redis://broker-from-environ:6379/4")
    monkeypatch.setenv("PORT", "6123")
    settings = Settings.from_env()
    assert settings.database_url == "postgresql://from-environ/x"
    assert settings.redis_url == "redis://broker-from-environ:6379/4"
    assert settings.port == 6123


def test_settings_from_env_bad_os_environ_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memcached://cache:11211")
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env()
