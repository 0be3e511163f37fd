"""Amplitude's HTTP V2 and Batch APIs, as its browser, mobile and server SDKs send them.

`{"api_key": <write key>, "events": [{"event_type", "insert_id", ...}]}`. Amplitude promises
2 000 events and 1 MB per request, and its SDKs read `code` and `error` from an answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from web.core.errors import Rejected
from web.core.ingest.wire import (
    Answer,
    Delivery,
    Route,
    WireFormat,
    WireRequest,
    json_answer,
    json_object,
    text,
)
from web.core.parsing import events_of_batch
from web.core.settings import Limits
from web.core.validation.envelope import NAME_KEYS

MAX_EVENTS = 2_000
MAX_REQUEST_BYTES = 1_000_000
# Amplitude's own event id is a per-device counter: the dedupe key is insert_id.
ID_KEYS = ("insert_id",)
FINAL = {401: 400}


class AmplitudeFormat(WireFormat):
    name = "amplitude"
    title = "Amplitude (browser, mobile and server SDKs)"
    # A bad key is answered 400 "Invalid API key: <key>" (see refused), as Amplitude does.
    routes: ClassVar[tuple[Route, ...]] = (
        Route("httpapi", "/2/httpapi", summary="Amplitude HTTP V2 API", final_statuses=FINAL),
        Route(
            "batch",
            "/batch",
            summary="Amplitude Batch API (PostHog's mobile /batch too)",
            final_statuses=FINAL,
        ),
    )
    description = (
        f"api_key (the app's write key) selects the app; insert_id is the event id; events"
        f" are named by event_type. At most {MAX_EVENTS} events and {MAX_REQUEST_BYTES} bytes."
    )
    body_schema = "AmplitudeUpload"
    result_schema = "AmplitudeResult"
    error_schema = "AmplitudeError"

    def limits(self, limits: Limits) -> Limits:
        return replace(
            limits, max_events_per_request=MAX_EVENTS, max_request_bytes=MAX_REQUEST_BYTES
        )

    def recognises(self, value: Any) -> bool:
        return isinstance(value, dict) and "events" in value

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        body = json_object(value, '{"api_key", "events": [...]}')
        messages = body.get("events")
        if not isinstance(messages, list):
            raise Rejected(400, "invalid_batch", 'the body must be {"api_key", "events": [...]}')
        events = events_of_batch(messages, limits, ID_KEYS)
        return Delivery(events, write_key=text(body.get("api_key")), judged_as=named_by_event_type)

    def accepted(
        self, request: WireRequest, delivery: Delivery, results: list[dict[str, Any]]
    ) -> Answer:
        document = {
            "code": 200,
            "events_ingested": len(results),
            "payload_size_bytes": len(request.body),
            "server_upload_time": int(time.time() * 1000),
            "results": results,
        }
        return json_answer(200, document)

    def refused(self, error: Rejected, delivery: Delivery | None = None) -> Answer:
        status = FINAL.get(error.status, error.status)
        message = error.message
        if error.status == 401:
            # Amplitude's SDKs take exactly these words as final (Amplitude-Swift compares the
            # whole string); a refusal in any other words they would retry.
            key = delivery.write_key if delivery is not None and delivery.write_key else ""
            message = f"Invalid API key: {key}"
        document = {"code": status, "error": message, "error_code": error.code, **error.details}
        return json_answer(status, document, error.headers)


def named_by_event_type(event: dict[str, Any]) -> Mapping[str, Any]:
    """Amplitude names an event by event_type; judged (and listed) under that name."""
    if any(key in event for key in NAME_KEYS) or "event_type" not in event:
        return event
    return {**event, "event": event["event_type"]}
