"""The native format: POST /api/logs/<app_id> with one event object or an array of them."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from web.core.ingest.wire import (
    Answer,
    Delivery,
    Route,
    WireFormat,
    WireRequest,
)
from web.core.parsing import ParsedBody, parse_events
from web.core.settings import Limits


class NativeFormat(WireFormat):
    name = "native"
    title = "Native (curl, sendBeacon, the Python client)"
    routes: ClassVar[tuple[Route, ...]] = (
        Route(
            "ingest",
            "/api/logs/<app_id>",
            summary="Send one event, or an array of events, to be judged and stored",
        ),
    )
    cors_headers = ("X-Write-Key",)
    accepted_status = 202
    basic_auth = True

    def decode(self, request: WireRequest, limits: Limits) -> ParsedBody:
        # parse_events checks an array's events one by one, on their own text, which is
        # cheaper than checking the whole body's nesting first.
        return parse_events(
            request.body,
            content_type=request.header("content-type"),
            content_encoding=request.header("content-encoding"),
            limits=limits,
        )

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        body: ParsedBody = value
        return Delivery(
            body.events,
            app_id=request.path_params["app_id"],
            write_key=request.header("x-write-key"),
            authorization=request.header("authorization"),
            is_batch=body.is_batch,
        )

    def accepted(
        self, request: WireRequest, delivery: Delivery, results: list[dict[str, Any]]
    ) -> Answer:
        document: Any = {"results": results} if delivery.is_batch else results[0]
        return Answer(self.accepted_status, orjson.dumps(document))
