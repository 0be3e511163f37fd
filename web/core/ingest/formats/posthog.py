"""PostHog's capture API, as posthog-js, the mobile SDKs and the server libraries send it.

posthog-js posts gzip as text/plain with no Content-Encoding (`?compression=gzip-js`, or
nothing but the gzip magic bytes tells), older clients `data=<base64>` form bodies; the
project token (here: the app's write key) is `api_key` or `token` in the body, or each
event's `properties.token`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar
from urllib.parse import parse_qs

from web.core.errors import Rejected
from web.core.ingest.formats.segment import mirrored
from web.core.ingest.wire import (
    Answer,
    Delivery,
    Route,
    WireFormat,
    WireRequest,
    json_answer,
    text,
)
from web.core.parsing import ParseError, check_media_type, decompress, events_of_batch, parse_json
from web.core.settings import Limits

GZIP_MAGIC = b"\x1f\x8b"
FORM = "application/x-www-form-urlencoded"
# Where posthog-js, the mobile SDKs and the server libraries post events.
CAPTURE_PATHS = ("e", "i/v0/e", "capture", "batch", "track", "engage")
# Where the project token may be in the body, the first found wins.
KEY_FIELDS = ("api_key", "token", "$token")


def flags_document(request: WireRequest) -> Answer:
    """No feature flags, no remote config: what /flags and /decide answer so the SDK goes on."""
    return json_answer(
        200,
        {
            "flags": {},
            "featureFlags": {},
            "featureFlagPayloads": {},
            "errorsWhileComputingFlags": False,
            "quotaLimited": [],
            "config": {"enable_collect_everything": False},
            "supportedCompression": ["gzip", "gzip-js"],
            "sessionRecording": False,
            "autocapture_opt_out": True,
            "capturePerformance": False,
            "heatmaps": False,
            "surveys": False,
            "siteApps": [],
            "toolbarParams": {},
            "isAuthenticated": False,
        },
    )


def remote_config_document(request: WireRequest) -> Answer:
    """posthog-js's remote config (/array/<token>/config): nothing to load, gzip welcome."""
    return json_answer(
        200,
        {
            "token": request.path_params["token"],
            "supportedCompression": ["gzip", "gzip-js"],
            "hasFeatureFlags": False,
            "autocapture_opt_out": True,
            "capturePerformance": False,
            "sessionRecording": False,
            "heatmaps": False,
            "surveys": False,
            "siteApps": [],
        },
    )


def _routes() -> tuple[Route, ...]:
    routes = []
    for path in CAPTURE_PATHS:
        label = path.replace("/", "_")
        summary = f"PostHog capture ({path})"
        # The mobile SDKs leave the slash out; /batch is Amplitude's too (see recognises).
        routes.append(Route(label, f"/{path}/", summary=summary))
        routes.append(Route(f"{label}_bare", f"/{path}", summary=summary))
    for path in ("flags", "decide"):
        for suffix in ("/", ""):
            routes.append(
                Route(
                    f"{path}{'' if suffix else '_bare'}",
                    f"/{path}{suffix}",
                    methods=("GET", "POST"),
                    document=flags_document,
                    summary="PostHog feature flags: none, so the SDK carries on",
                )
            )
    routes.append(
        Route(
            "remote_config",
            "/array/<token>/config",
            methods=("GET",),
            document=remote_config_document,
            summary="posthog-js remote config: nothing to load",
        )
    )
    return tuple(routes)


class PostHogFormat(WireFormat):
    name = "posthog"
    title = "PostHog (posthog-js, mobile and server SDKs)"
    routes: ClassVar[tuple[Route, ...]] = _routes()
    description = (
        "The project token (api_key or token in the body, or each event's properties.token)"
        " is the app's write key; uuid is the event id; events are named by `event`. Bodies"
        " may be gzip (by Content-Encoding, ?compression=gzip-js or the magic bytes) or a"
        " data=<base64> form."
    )
    body_schema = "PostHogCapture"
    error_schema = "SdkError"

    def decode(self, request: WireRequest, limits: Limits) -> Any:
        media_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
        body = request.body
        compression = request.query.get("compression")
        if media_type == FORM:
            body, compression = _form_data(body, compression)
        else:
            check_media_type(request.header("content-type"))
            body = decompress(body, request.header("content-encoding"), limits)
        if compression == "gzip-js" or body.startswith(GZIP_MAGIC):
            body = decompress(body, "gzip", limits)
        return parse_json(body, limits)

    def recognises(self, value: Any) -> bool:
        return isinstance(value, list) or (isinstance(value, dict) and "events" not in value)

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        if isinstance(value, list):
            messages, key = value, None
        elif isinstance(value, dict):
            key = _key_in(value)
            if "batch" in value:
                messages = value["batch"]
                if not isinstance(messages, list):
                    raise Rejected(
                        400, "invalid_batch", 'the body must be {"api_key", "batch": [events]}'
                    )
            else:  # one event, as the capture endpoints take it
                messages = [{k: v for k, v in value.items() if k not in KEY_FIELDS}]
        else:
            raise Rejected(400, "invalid_top_level", "the body must be an event or an array")
        events = events_of_batch(messages, limits)
        key = key or _token_of_events(messages) or request.query.get("token")
        return Delivery(events, write_key=key or request.header("x-write-key"))

    def accepted(
        self, request: WireRequest, delivery: Delivery, results: list[dict[str, Any]]
    ) -> Answer:
        return json_answer(200, {"status": 1, "success": True, "results": results})

    def refused(self, error: Rejected, delivery: Delivery | None = None) -> Answer:
        # PostHog's clients read the reason from `detail`.
        document = {**mirrored(error), "detail": error.message}
        return json_answer(error.status, document, error.headers)


def _key_in(body: dict[str, Any]) -> str | None:
    for field in KEY_FIELDS:
        found = text(body.get(field))
        if found:
            return found
    return None


def _token_of_events(messages: list[Any]) -> str | None:
    """The token every event carries in its properties; 400 when they name different apps."""
    tokens = {
        token
        for message in messages
        if isinstance(message, dict)
        and isinstance(message.get("properties"), dict)
        and (token := text(message["properties"].get("token")))
    }
    if len(tokens) > 1:
        raise Rejected(400, "mixed_keys", "the events of one request carry different tokens")
    return tokens.pop() if tokens else None


def _form_data(body: bytes, compression: str | None) -> tuple[bytes, str | None]:
    """The base64 `data` field of a form body (posthog-js's older transport), decoded."""
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        raise ParseError(400, "invalid_form", "the form body is not ASCII") from None
    data = fields.get("data")
    if not data:
        raise ParseError(400, "invalid_form", "the form body has no data field")
    try:
        # A '+' the client left unescaped reads back as a space.
        decoded = base64.b64decode(data[0].replace(" ", "+"), validate=False)
    except (binascii.Error, ValueError):
        raise ParseError(400, "invalid_form", "the data field is not base64") from None
    in_form = fields.get("compression")
    return decoded, in_form[0] if in_form else compression
