"""The ceiling: a trivial 202 endpoint served exactly like the real one (same server, same loop)."""

from __future__ import annotations

from quart import Quart, Response, request

app = Quart(__name__)
_BODY = b'{"status":"valid","errors":[],"message":"Event queued for processing"}'


@app.post("/api/logs/<app_id>")
async def accept(app_id: str) -> Response:
    await request.get_data()
    return Response(_BODY, status=202, mimetype="application/json")
