"""The ceilings: a trivial 202 endpoint served like the real one (same server, workers, loop).

`app` answers through Quart; `plain_app` answers as plain ASGI, the way the real ingest
path is served (web/ingest.py), so the ratio against it is the strict one.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, request

app = Quart(__name__)
_BODY = b'{"status":"valid","errors":[],"message":"Event queued for processing"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


@app.post("/api/logs/<app_id>")
async def accept(app_id: str) -> Response:
    await request.get_data()
    return Response(_BODY, status=202, mimetype="application/json")


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body", False):
        pass  # read the whole body, as the real endpoint does
    await send({"type": "http.response.start", "status": 202, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
