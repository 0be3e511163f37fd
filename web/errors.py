"""Every exception becomes an HTTP answer here, once: JSON under /api, HTML for pages."""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from web.core.errors import RETRY_AFTER_SECONDS, TOO_LARGE_MESSAGE, Rejected
from web.core.ingest.wire import error_document
from web.core.queue.enqueuer import EnqueueUnavailable

log = logging.getLogger(__name__)
# Paths whose errors are JSON whatever the client accepts: the APIs, Snowplow Micro's, and
# Segment's and the /batch SDK paths when asked with a method their route does not take
# (web/ingest.py answers the rest of an SDK path's requests itself, in front of Quart).
_API_PREFIXES = ("/api/", "/v1/", "/batch", "/snowplow/", "/micro/")


def wants_json() -> bool:
    return (
        request.path.startswith(_API_PREFIXES)
        or request.accept_mimetypes.best == "application/json"
    )


async def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    if wants_json():
        response = jsonify(error_document(code, message, details))
    else:
        html = await render_template("error.html", status=status, code=code, message=message)
        response = Response(html, mimetype="text/html")
    response.status_code = status
    return response


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(Rejected)
    async def rejected(exc: Rejected) -> Response:
        response = await error_response(exc.status, exc.code, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(EnqueueUnavailable)
    async def queue_unavailable(exc: EnqueueUnavailable) -> Response:
        response = await error_response(503, "queue_unavailable", str(exc))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
        message = _HTTP_MESSAGES.get(status, exc.description or exc.name or "error")
        return await error_response(status, code, message)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return await error_response(500, "internal_error", "an unexpected error occurred")


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
}
_HTTP_MESSAGES = {
    404: "no such page",
    413: TOO_LARGE_MESSAGE,
}
