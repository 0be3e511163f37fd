"""Settings: the only module that reads os.environ; everything else receives a Settings."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from web.core.forwarded import DEFAULT_TRUSTED_PROXIES, TrustedProxies

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/lvd"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5001"
REDIS_SCHEMES = {"redis", "rediss", "unix"}
RABBITMQ_SCHEMES = {"amqp", "amqps"}


class SettingsError(ValueError):
    """A setting is missing or malformed: the process must not start."""


@dataclass(frozen=True)
class Limits:
    """Published ingest limits (README and OpenAPI quote these)."""

    max_event_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_events_per_request: int = 500
    max_json_depth: int = 64
    max_event_name_length: int = 255
    max_event_id_length: int = 100
    # A body that has not fully arrived by then is answered 408.
    body_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    host: str = "127.0.0.1"
    port: int = 5001
    limits: Limits = field(default_factory=Limits)
    # Seconds an ingest request waits for Redis before answering 503.
    enqueue_timeout: float = 2.0
    # Events coalesced into one queue message at most (one Redis round trip, one INSERT).
    enqueue_batch_size: int = 500
    # Under load, at most one queue message per this many ms per web process: requests
    # arriving meanwhile share it (fewer Redis round trips, worker messages, commits).
    enqueue_linger_ms: float = 8.0
    # Dramatiq: a dead worker's messages come back after this many ms without a heartbeat.
    heartbeat_timeout_ms: int = 5_000
    # Out of a million broker commands, how many run maintenance (requeue of dead workers' work).
    maintenance_chance: int = 100_000
    # Deliveries of one message that never finished (crashes) before it is parked.
    max_deliveries: int = 5
    # Messages waiting in the queue above which ingest answers 503 (backpressure).
    max_queue_depth: int = 20_000
    # Body bytes a web process parses, judges and enqueues at once; more wait their turn
    # for up to enqueue_timeout (web/core/ingest/budget.py).
    ingest_budget_bytes: int = 2 * 1024 * 1024
    # Rows the live page shows and the stream back-fills at most.
    page_size: int = 100
    log_json: bool = False
    log_level: str = "INFO"
    # One line per request (hypercorn.access), off by default.
    access_log: bool = False
    # Reverse proxies whose X-Forwarded-*/Forwarded headers are believed (web/core/forwarded.py).
    trusted_proxies: TrustedProxies = field(
        default_factory=lambda: TrustedProxies.parse(DEFAULT_TRUSTED_PROXIES)
    )
    # Sign-in for the dashboard and management API; on by default beyond loopback.
    require_login: bool = False
    # Ingest refuses events without the app's write key; on by default beyond loopback.
    require_write_keys: bool = False
    # Session cookies only over HTTPS; on by default beyond loopback.
    secure_cookies: bool = False
    # A fixed session-signing key; by default one is generated once and kept in the database.
    secret_key: str | None = None
    # Events per second one app may send to one web process (0: no limit), and the burst.
    rate_limit: int = 50_000
    rate_burst: int = 100_000
    # ---- issue 8: alternative broker, alerts, retention
    # BROKER_URL when it names RabbitMQ (amqp://); None: the broker is Redis at redis_url.
    rabbitmq_url: str | None = None
    # Where people reach the dashboard: alert e-mails and webhooks link there.
    public_url: str = DEFAULT_PUBLIC_URL
    # Outgoing mail for alerts; no host means e-mail alerts cannot be sent (they are recorded
    # as failed with that reason).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "lvd@localhost"
    smtp_starttls: bool = False
    # Seconds between two looks for new failures and invalid shares (one worker does it).
    alert_interval: float = 10.0
    # Days an app's events are kept unless the app sets its own.
    retention_days: int = 7
    # Seconds between two purges of expired events, rows deleted per transaction, and the
    # pause between two such transactions.
    purge_interval: float = 3600.0
    purge_batch_size: int = 5_000
    purge_pause_ms: int = 50
    # A worker without a heartbeat for this many seconds is shown as gone (status page, CLI).
    worker_gone_seconds: float = 15.0
    # prometheus_client's multiprocess directory: every web process's metrics are summed there.
    metrics_dir: str | None = None

    @property
    def exposed(self) -> bool:
        """Whether the server listens beyond this machine."""
        return not is_loopback(self.host)

    @property
    def broker_url(self) -> str:
        """The queue broker's URL: RabbitMQ's when BROKER_URL names it, else Redis's."""
        return self.rabbitmq_url or self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, failing fast on anything malformed."""
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        broker_env = env.get("BROKER_URL") or ""
        rabbitmq_url = broker_env if urlsplit(broker_env).scheme in RABBITMQ_SCHEMES else None
        # An amqp:// BROKER_URL selects RabbitMQ; any other BROKER_URL is Redis's, as before.
        redis_url = (
            env.get("REDIS_URL") or ("" if rabbitmq_url else broker_env) or DEFAULT_REDIS_URL
        )
        _require_scheme("DATABASE_URL", database_url, {"postgresql", "postgres"})
        _require_scheme("REDIS_URL", redis_url, REDIS_SCHEMES)
        public_url = (env.get("LVD_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
        _require_scheme("LVD_PUBLIC_URL", public_url, {"http", "https"})
        host = env.get("HOST") or "127.0.0.1"
        exposed = not is_loopback(host)
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            host=host,
            port=_port(env),
            enqueue_timeout=_float(env, "LVD_ENQUEUE_TIMEOUT", 2.0),
            enqueue_batch_size=_int(env, "LVD_ENQUEUE_BATCH_SIZE", 500),
            enqueue_linger_ms=_float(env, "LVD_ENQUEUE_LINGER_MS", 8.0, allow_zero=True),
            heartbeat_timeout_ms=_int(env, "LVD_HEARTBEAT_TIMEOUT_MS", 5_000),
            maintenance_chance=_int(env, "LVD_MAINTENANCE_CHANCE", 100_000),
            max_deliveries=_int(env, "LVD_MAX_DELIVERIES", 5),
            max_queue_depth=_int(env, "LVD_MAX_QUEUE_DEPTH", 20_000),
            ingest_budget_bytes=_int(env, "LVD_INGEST_BUDGET_BYTES", 2 * 1024 * 1024),
            page_size=_int(env, "LVD_PAGE_SIZE", 100),
            log_json=env.get("LVD_LOG_FORMAT", "text").lower() == "json",
            log_level=_log_level(env),
            access_log=_bool(env, "LVD_ACCESS_LOG", False),
            trusted_proxies=_trusted_proxies(env),
            require_login=_bool(env, "LVD_REQUIRE_LOGIN", exposed),
            require_write_keys=_bool(env, "LVD_REQUIRE_WRITE_KEYS", exposed),
            secure_cookies=_bool(env, "LVD_SECURE_COOKIES", exposed),
            secret_key=env.get("LVD_SECRET_KEY") or None,
            rate_limit=_int(env, "LVD_RATE_LIMIT", 50_000, allow_zero=True),
            rate_burst=_int(env, "LVD_RATE_BURST", 100_000),
            rabbitmq_url=rabbitmq_url,
            public_url=public_url,
            smtp_host=env.get("LVD_SMTP_HOST") or None,
            smtp_port=_smtp_port(env),
            smtp_user=env.get("LVD_SMTP_USER") or None,
            smtp_password=env.get("LVD_SMTP_PASSWORD") or None,
            smtp_from=env.get("LVD_SMTP_FROM") or "lvd@localhost",
            smtp_starttls=_bool(env, "LVD_SMTP_STARTTLS", False),
            alert_interval=_float(env, "LVD_ALERT_INTERVAL", 10.0),
            retention_days=_int(env, "LVD_RETENTION_DAYS", 7),
            purge_interval=_float(env, "LVD_PURGE_INTERVAL", 3600.0),
            purge_batch_size=_int(env, "LVD_PURGE_BATCH_SIZE", 5_000),
            purge_pause_ms=_int(env, "LVD_PURGE_PAUSE_MS", 50, allow_zero=True),
            worker_gone_seconds=_float(env, "LVD_WORKER_GONE_SECONDS", 15.0),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        )


def _require_scheme(name: str, url: str, schemes: set[str]) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise SettingsError(f"{name} must start with one of {sorted(schemes)}, got {scheme!r}")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "::1", "[::1]"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0: treat as exposed


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _trusted_proxies(env: Mapping[str, str]) -> TrustedProxies:
    raw = env.get("LVD_FORWARDED_ALLOW_IPS") or DEFAULT_TRUSTED_PROXIES
    try:
        return TrustedProxies.parse(raw)
    except ValueError as exc:
        raise SettingsError(f"LVD_FORWARDED_ALLOW_IPS: {exc}") from None


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("LVD_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"LVD_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


def _int(env: Mapping[str, str], name: str, default: int, *, allow_zero: bool = False) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _port(env: Mapping[str, str]) -> int:
    port = _int(env, "PORT", 5001)
    if port > 65535:
        raise SettingsError(f"PORT must be at most 65535, got {port}")
    return port


def _smtp_port(env: Mapping[str, str]) -> int:
    port = _int(env, "LVD_SMTP_PORT", 25)
    if port > 65535:
        raise SettingsError(f"LVD_SMTP_PORT must be at most 65535, got {port}")
    return port


def _float(env: Mapping[str, str], name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{name} must be a positive finite number, got {raw!r}")
    return value
