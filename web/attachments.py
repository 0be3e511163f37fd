"""Files the dashboard hands out: exports and reports named <what>-<UTC time>.<extension>."""

from __future__ import annotations

from datetime import datetime

from quart import Response


def as_attachment(response: Response, stem: str, made_at: datetime, extension: str) -> Response:
    """Have the browser save the answer as `<stem>-<made_at, UTC>.<extension>`. Stems are made
    of app ids and scenario names, [a-z0-9_-] (checked when made): no quoting needed."""
    stamp = made_at.strftime("%Y%m%dT%H%M%SZ")
    response.headers["Content-Disposition"] = f'attachment; filename="{stem}-{stamp}.{extension}"'
    return response


def text_file(text: str, mimetype: str, stem: str, made_at: datetime, extension: str) -> Response:
    """A report written in full (Markdown, CSV), as a file to save."""
    response = Response(text, content_type=f"{mimetype}; charset=utf-8")
    return as_attachment(response, stem, made_at, extension)
