"""Reading JSON request bodies for the management API, with the same error codes as ingest."""

from __future__ import annotations

from typing import Any

import orjson
from quart import request

from web.core.errors import Rejected


async def json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object; Rejected (400) for anything else."""
    raw = await request.get_data(cache=False, as_text=False)
    assert isinstance(raw, bytes)
    if allow_empty and not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Rejected(400, "invalid_top_level", "the body must be a JSON object")
    return body
