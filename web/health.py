"""Probes: /healthz (the process answers) and /readyz (the database and the broker answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from quart import Blueprint, Response, jsonify

from web.context import services

# Each dependency gets this long to answer a readiness probe.
READY_TIMEOUT_SECONDS = 2.0

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
async def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
async def readyz() -> Response:
    svc = services()
    checks = {
        "database": await _check(_database_answers()),
        "broker": await _check(asyncio.to_thread(svc.enqueuer.ping)),
    }
    ready = all(value == "ok" for value in checks.values())
    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


async def _database_answers() -> None:
    async with services().pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means not ready; say which
        return f"error: {type(exc).__name__}: {exc}"[:200]
    return "ok"
