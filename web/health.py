"""Liveness: /healthz answers whenever the process does, whatever Redis or PostgreSQL do."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
async def healthz() -> Response:
    return jsonify({"status": "ok"})
