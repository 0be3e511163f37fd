"""Snowplow's tracker protocol: POST .../tp2 with a payload_data envelope, or GET .../i.

Every field of a tracker payload is a string; a self-describing event's data and the
contexts come as JSON text (`ue_pr`, `co`) or base64url (`ue_px`, `cx`). An event is
stored and judged as the tracker sent it plus a readable view: `event` (its name),
`properties` (the self-describing data, or a structured event's or page view's fields),
`contexts` and `timestamp`. The app is the one named in the path (/snowplow/<app>/...) or
by the tracker's `aid`, either as an app id or as its write key.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from web.core.errors import Rejected
from web.core.ingest.wire import Answer, Delivery, Route, WireFormat, WireRequest, text
from web.core.parsing import ParseError, events_of_batch
from web.core.settings import Limits

TP2 = "/com.snowplowanalytics.snowplow/tp2"
# What readable() adds beside the tracker's own fields (none of which has these names).
READABLE_KEYS = ("event", "schema", "properties", "contexts", "timestamp")
APP_PREFIX = "/snowplow/<app>"
ID_KEYS = ("eid",)
# The trackers retry every refusal but 400, 401, 403, 410 and 422: an unknown app is final.
FINAL = {404: 403}
# The names of the tracker's built-in event types (`e`); ue and se are named by content.
EVENT_TYPES = {
    "pv": "page_view",
    "pp": "page_ping",
    "tr": "transaction",
    "ti": "transaction_item",
    "ad": "ad_impression",
}
STRUCTURED_FIELDS = {
    "se_ca": "category",
    "se_ac": "action",
    "se_la": "label",
    "se_pr": "property",
    "se_va": "value",
}
PAGE_FIELDS = {"url": "url", "page": "title", "refr": "referrer"}
# A transparent 1x1 GIF: what a collector answers the pixel (GET /i) with.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class SnowplowFormat(WireFormat):
    name = "snowplow"
    title = "Snowplow (browser, mobile and server trackers)"
    routes: ClassVar[tuple[Route, ...]] = (
        Route("tp2", TP2, summary="Tracker protocol, POST (app by aid)", final_statuses=FINAL),
        Route(
            "pixel",
            "/i",
            methods=("GET",),
            summary="Pixel, GET (app by aid)",
            final_statuses=FINAL,
        ),
        Route(
            "app_tp2", f"{APP_PREFIX}{TP2}", summary="Tracker protocol, POST", final_statuses=FINAL
        ),
        Route(
            "app_pixel",
            f"{APP_PREFIX}/i",
            methods=("GET",),
            summary="Pixel, GET",
            final_statuses=FINAL,
        ),
    )
    # The browser tracker sends this when anonymous tracking is on.
    cors_headers = ("SP-Anonymous",)
    description = (
        "The app is named in the path (/snowplow/<app>/..., its id or write key) or by the"
        " tracker's aid; eid is the event id. Self-describing events are named vendor/name"
        " by their schema, structured events category/action, page views page_view."
    )
    body_schema = "SnowplowPayload"
    credentials = True

    def decode(self, request: WireRequest, limits: Limits) -> Any:
        if request.method == "GET":
            return {"data": [dict(request.query)]}
        return super().decode(request, limits)

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        # The mobile trackers post an event too large to batch bare, without the envelope.
        bare = isinstance(value, dict) and "data" not in value and "e" in value
        items = [value] if bare else value.get("data") if isinstance(value, dict) else None
        if not isinstance(items, list):
            raise Rejected(
                400, "invalid_batch", 'the body must be a payload_data envelope {"data": [...]}'
            )
        views = [readable(item, index) for index, item in enumerate(items)]
        events = events_of_batch(views, limits, ID_KEYS)
        alias = request.path_params.get("app") or _single_aid(views)
        if alias is None:
            raise Rejected(
                404,
                "unknown_app",
                "name the app in the path (/snowplow/<app>/...) or as the tracker's appId",
            )
        return Delivery(events, app_alias=alias)

    def accepted(
        self, request: WireRequest, delivery: Delivery, results: list[dict[str, Any]]
    ) -> Answer:
        if request.method == "GET":
            return Answer(200, PIXEL, "image/gif", {"Cache-Control": "no-store"})
        return super().accepted(request, delivery, results)


def readable(item: Any, index: int) -> dict[str, Any]:
    """A tracker payload with its name, data, contexts and time made readable beside it."""
    if not isinstance(item, dict):
        raise ParseError(400, "invalid_event", f"event {index} must be an object")
    view = dict(item)
    kind = item.get("e")
    if kind == "ue":
        envelope = _json_field(item, "ue_pr", "ue_px", index)
        inner = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("schema"), str):
            raise ParseError(
                400, "invalid_event", f"event {index}: a self-describing event needs a schema"
            )
        view["event"] = schema_name(inner["schema"])
        view["schema"] = inner["schema"]
        view["properties"] = inner.get("data")
    elif kind == "se":
        view["event"] = f"{item.get('se_ca', '')}/{item.get('se_ac', '')}"
        view["properties"] = _renamed(item, STRUCTURED_FIELDS)
    elif isinstance(kind, str) and kind:
        view["event"] = EVENT_TYPES.get(kind, kind)
        view["properties"] = _renamed(item, PAGE_FIELDS)
    contexts = _json_field(item, "co", "cx", index)
    if isinstance(contexts, dict) and isinstance(contexts.get("data"), list):
        view["contexts"] = contexts["data"]
    stamp = _timestamp(item.get("dtm") or item.get("ttm") or item.get("stm"))
    if stamp is not None:
        view["timestamp"] = stamp
    return view


def schema_name(schema: str) -> str:
    """iglu:com.acme/checkout_started/jsonschema/1-0-0 -> com.acme/checkout_started."""
    parts = schema.removeprefix("iglu:").split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else schema


def _single_aid(views: list[dict[str, Any]]) -> str | None:
    aids = {aid for view in views if (aid := text(view.get("aid")))}
    if len(aids) > 1:
        raise Rejected(400, "mixed_apps", "the events of one request name different aid values")
    return aids.pop() if aids else None


def _json_field(item: dict[str, Any], plain: str, encoded: str, index: int) -> Any:
    """A JSON-valued field, from its plain text form or its base64 form.

    The Android tracker writes standard base64 with padding, iOS and the browser URL-safe
    base64 without: urlsafe_b64decode reads both once the padding is restored.
    """
    raw = item.get(plain)
    try:
        if isinstance(raw, str):
            return orjson.loads(raw)
        raw = item.get(encoded)
        if isinstance(raw, str):
            padded = raw + "=" * (-len(raw) % 4)
            return orjson.loads(base64.urlsafe_b64decode(padded))
    except (orjson.JSONDecodeError, binascii.Error, ValueError):
        raise ParseError(
            400, "invalid_event", f"event {index}: {plain}/{encoded} is not valid JSON"
        ) from None
    return None


def _renamed(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {name: item[field] for field, name in names.items() if field in item}


def _timestamp(millis: Any) -> str | None:
    """A tracker's epoch milliseconds (a string) as RFC 3339, or None when not a number."""
    try:
        moment = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
