"""Pre-flight checks: does each service a process needs answer, and if not, what to do."""

from __future__ import annotations

import asyncio

import asyncpg
import redis

from web.core.settings import Settings

CHECK_TIMEOUT_SECONDS = 3.0


def check_services(settings: Settings) -> list[str]:
    """One readable sentence per service that does not answer; empty when all do."""
    problems = []
    broker_problem = (
        _check_rabbitmq(settings.rabbitmq_url)
        if settings.rabbitmq_url
        else _check_redis(settings.redis_url)
    )
    if broker_problem:
        problems.append(broker_problem)
    postgres_problem = asyncio.run(_check_postgres(settings.database_url))
    if postgres_problem:
        problems.append(postgres_problem)
    return problems


def _check_redis(url: str) -> str | None:
    from lvd.devservices.endpoints import redact_url

    client = redis.Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return (
            f"Redis does not answer at {redact_url(url)} ({exc}). Start it (for example"
            " `redis-server --port 6379`), set REDIS_URL, or use `make run`, which starts one."
        )
    finally:
        client.close()
    return None


def _check_rabbitmq(url: str) -> str | None:
    import pika
    import pika.exceptions

    from lvd.devservices.endpoints import redact_url

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = CHECK_TIMEOUT_SECONDS
    parameters.blocked_connection_timeout = CHECK_TIMEOUT_SECONDS
    try:
        pika.BlockingConnection(parameters).close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        return (
            f"RabbitMQ does not answer at {redact_url(url)} ({exc!r}). Start it (for example"
            " `rabbitmq-server -detached`), or fix BROKER_URL."
        )
    return None


async def _check_postgres(url: str) -> str | None:
    from lvd.devservices.endpoints import redact_url

    try:
        conn = await asyncpg.connect(url, timeout=CHECK_TIMEOUT_SECONDS)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return (
            f"PostgreSQL does not answer at {redact_url(url)} ({exc}). Start it, set"
            " DATABASE_URL, or use `make run`, which starts one; `lvd migrate` creates the"
            " database."
        )
    try:
        ready = await conn.fetchval("SELECT to_regclass('log_entries') IS NOT NULL")
    finally:
        await conn.close()
    if not ready:
        return f"the database at {redact_url(url)} has no tables yet: run `lvd migrate` first."
    return None
