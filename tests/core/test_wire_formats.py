"""The wire formats as pure functions: requests built by hand, decoded, delivered, answered.

No I/O here: each test builds the WireRequest the web edge would have read and calls the
format's decode / recognises / deliver / accepted / refused, or the router, directly.
"""

from __future__ import annotations

import base64
import gzip
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from web.core.errors import Rejected
from web.core.ingest.formats.amplitude import AmplitudeFormat
from web.core.ingest.formats.native import NativeFormat
from web.core.ingest.formats.posthog import PostHogFormat
from web.core.ingest.formats.segment import SegmentFormat
from web.core.ingest.formats.snowplow import PIXEL, SnowplowFormat
from web.core.ingest.registry import ALLOWED_HEADERS, ROUTER, WIRE_FORMATS, Match
from web.core.ingest.wire import Delivery, WireFormat, WireRequest
from web.core.settings import Limits
from web.core.snowplow_micro import MicroFilter
from web.core.validation.envelope import event_name_of

LIMITS = Limits()
BASE_URL = "http://lvd.test:5001"

NATIVE = next(fmt for fmt in WIRE_FORMATS if isinstance(fmt, NativeFormat))
SEGMENT = next(fmt for fmt in WIRE_FORMATS if isinstance(fmt, SegmentFormat))
POSTHOG = next(fmt for fmt in WIRE_FORMATS if isinstance(fmt, PostHogFormat))
AMPLITUDE = next(fmt for fmt in WIRE_FORMATS if isinstance(fmt, AmplitudeFormat))
SNOWPLOW = next(fmt for fmt in WIRE_FORMATS if isinstance(fmt, SnowplowFormat))

TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TP2 = "/com.snowplowanalytics.snowplow/tp2"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
CHECKOUT = "iglu:com.acme/checkout_started/jsonschema/1-0-0"
WEB_PAGE = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
# 1733500000123 ms after the epoch.
DTM = "1733500000123"
DTM_RFC3339 = "2024-12-06T15:46:40.123Z"


# --- helpers ------------------------------------------------------------------------------


def matched(path: str) -> Match:
    match = ROUTER.match(path)
    assert match is not None, f"no route for {path}"
    return match


def wire(
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    base_url: str = BASE_URL,
) -> WireRequest:
    """The request the web edge would read for `path`: route, parameters, session."""
    match = matched(path)
    return WireRequest(
        method=method,
        route=match.route.name,
        path_params=match.params,
        query=dict(query or {}),
        headers={name.lower(): value for name, value in (headers or {}).items()},
        body=body,
        base_url=base_url,
        path_session=match.session,
    )


def deliver(fmt: WireFormat, request: WireRequest) -> Delivery:
    """Decode and deliver as accept() does, under the format's own limits."""
    limits = fmt.limits(LIMITS)
    return fmt.deliver(fmt.decode(request, limits), request, limits)


def refusal(fmt: WireFormat, request: WireRequest) -> Rejected:
    """The refusal decoding or delivering the request raises; fails when it is accepted."""
    with pytest.raises(Rejected) as caught:
        deliver(fmt, request)
    return caught.value


def judged_names(delivery: Delivery) -> list[Any]:
    """Each event's name as it is judged (and listed)."""
    views = [
        delivery.judged_as(parsed.event) if delivery.judged_as else parsed.event
        for parsed in delivery.events
    ]
    return [event_name_of(view) for view in views]


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def answer_json(body: bytes) -> Any:
    return orjson.loads(body)


def result(event_id: str, name: str | None) -> dict[str, Any]:
    """One result as judge_and_enqueue makes it."""
    return {
        "event_id": event_id,
        "event_name": name,
        "status": "valid",
        "errors": [],
        "task_id": "task-1",
        "message": "Event queued for processing",
    }


# --- Segment ------------------------------------------------------------------------------


def ajs_message(kind: str, **fields: Any) -> dict[str, Any]:
    """A message as Analytics.js (analytics-next) posts it to a short path."""
    message: dict[str, Any] = {
        "type": kind,
        "messageId": f"ajs-next-{uuid.uuid4().hex}",
        "anonymousId": "anon-1",
        "timestamp": "2025-12-10T15:45:00.000Z",
        "context": {"library": {"name": "analytics.js", "version": "next-1.70.0"}},
        "integrations": {},
        "sentAt": "2025-12-10T15:45:00.100Z",
    }
    if kind == "track":
        message.update(event="Order Completed", properties={"total": 12.5})
    return {**message, **fields}


@pytest.mark.parametrize(
    ("short", "kind", "name"),
    [
        ("t", "track", "Order Completed"),
        ("i", "identify", "identify"),
        ("p", "page", "page"),
        ("s", "screen", "screen"),
        ("g", "group", "group"),
        ("a", "alias", "alias"),
    ],
)
def test_segment_short_path_names_the_call_by_its_path(short: str, kind: str, name: str) -> None:
    message = ajs_message(kind)
    del message["type"]  # the path alone says what the call is
    request = wire(f"/v1/{short}", orjson.dumps({**message, "writeKey": "wk_body"}), headers=TEXT)

    delivery = deliver(SEGMENT, request)

    assert request.route == short
    assert judged_names(delivery) == [name]
    assert [parsed.event for parsed in delivery.events] == [message]  # writeKey left out
    assert [parsed.event_id for parsed in delivery.events] == [message["messageId"]]
    assert delivery.write_key == "wk_body"
    assert (delivery.app_id, delivery.app_alias) == (None, None)


@pytest.mark.parametrize("short", ["t", "i", "p", "s", "g", "a"])
def test_segment_short_path_type_in_the_body_names_the_call(short: str) -> None:
    message = ajs_message("identify", traits={"email": "a@example.com"})

    delivery = deliver(SEGMENT, wire(f"/v1/{short}", orjson.dumps(message), headers=TEXT))

    assert judged_names(delivery) == ["identify"]


def test_segment_short_batch_path_reads_every_message() -> None:
    track, identify, page = ajs_message("track"), ajs_message("identify"), ajs_message("page")
    body = {"writeKey": "wk_batch", "batch": [track, identify, page], "sentAt": "x"}

    delivery = deliver(SEGMENT, wire("/v1/b", orjson.dumps(body), headers=TEXT))

    assert judged_names(delivery) == ["Order Completed", "identify", "page"]
    assert [parsed.event_id for parsed in delivery.events] == [
        track["messageId"],
        identify["messageId"],
        page["messageId"],
    ]
    assert [parsed.event for parsed in delivery.events] == [track, identify, page]
    assert delivery.write_key == "wk_batch"


def test_segment_short_batch_path_without_a_list_is_400_invalid_batch() -> None:
    error = refusal(
        SEGMENT, wire("/v1/b", orjson.dumps({"batch": {"type": "track"}}), headers=TEXT)
    )

    assert (error.status, error.code) == (400, "invalid_batch")


def test_segment_judging_names_leaves_the_stored_event_as_sent() -> None:
    message = ajs_message("identify")
    sent = dict(message)

    delivery = deliver(SEGMENT, wire("/v1/i", orjson.dumps(message), headers=TEXT))
    assert delivery.judged_as is not None
    judged = delivery.judged_as(delivery.events[0].event)

    assert judged["event"] == "identify"
    assert delivery.events[0].event == sent
    assert orjson.loads(delivery.events[0].json) == sent


def test_segment_write_key_is_the_basic_user_before_the_body() -> None:
    request = wire(
        "/v1/t",
        orjson.dumps({**ajs_message("track"), "writeKey": "wk_body"}),
        headers={**JSON, "Authorization": basic("wk_basic")},
    )

    assert deliver(SEGMENT, request).write_key == "wk_basic"


def test_segment_write_key_from_the_body_when_basic_has_no_user() -> None:
    request = wire(
        "/v1/batch",
        orjson.dumps({"batch": [ajs_message("track")], "writeKey": "wk_body"}),
        headers={**JSON, "Authorization": basic("", "secret")},
    )

    assert deliver(SEGMENT, request).write_key == "wk_body"


def test_segment_no_write_key_delivers_none() -> None:
    request = wire("/v1/t", orjson.dumps(ajs_message("track")), headers=JSON)

    assert deliver(SEGMENT, request).write_key is None


def test_segment_malformed_basic_is_401_invalid_write_key() -> None:
    request = wire(
        "/v1/t",
        orjson.dumps(ajs_message("track")),
        headers={**JSON, "Authorization": "Basic %%%"},
    )

    error = refusal(SEGMENT, request)

    assert (error.status, error.code) == (401, "invalid_write_key")


def test_segment_accepted_is_200_success_with_results() -> None:
    request = wire("/v1/t", orjson.dumps(ajs_message("track")), headers=TEXT)
    delivery = deliver(SEGMENT, request)
    results = [result("m-1", "Order Completed")]

    answer = SEGMENT.accepted(request, delivery, results)

    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer_json(answer.body) == {"success": True, "results": results}


def test_segment_refused_mirrors_code_and_message_at_the_top_level() -> None:
    error = Rejected(401, "invalid_write_key", "no app has that write key")

    answer = SEGMENT.refused(error)

    assert answer.status == 401
    assert answer_json(answer.body) == {
        "error": {"code": "invalid_write_key", "message": "no app has that write key"},
        "code": "invalid_write_key",
        "message": "no app has that write key",
    }


def test_segment_refused_keeps_the_headers_of_the_refusal() -> None:
    error = Rejected(429, "rate_limited", "slow down", headers={"Retry-After": "3"})

    answer = SEGMENT.refused(error)

    assert (answer.status, dict(answer.headers)) == (429, {"Retry-After": "3"})


def settings_of(path: str, base_url: str = BASE_URL) -> dict[str, Any]:
    match = matched(path)
    assert match.route.document is not None
    answer = match.route.document(wire(path, method="GET", base_url=base_url))
    assert (answer.status, answer.content_type) == (200, "application/json")
    document: dict[str, Any] = answer_json(answer.body)
    return document


def test_segment_settings_document_points_analytics_js_back_here() -> None:
    document = settings_of("/v1/projects/wk_abc/settings")

    assert document["integrations"] == {
        "Segment.io": {
            "apiKey": "wk_abc",
            "apiHost": "lvd.test:5001/v1",
            "protocol": "http",
            "unbundledIntegrations": [],
            "addBundledMetadata": True,
            "maybeBundledConfigIds": {},
        }
    }
    # Analytics.js would report its own metrics to Segment at any other rate.
    assert document["metrics"] == {"sampleRate": 0}
    assert document["plan"] == {"track": {"__default": {"enabled": True, "integrations": {}}}}


def test_segment_settings_document_keeps_the_scheme_and_root_path() -> None:
    document = settings_of("/v1/projects/wk_abc/settings", base_url="https://lvd.example/lvd")

    segment_io = document["integrations"]["Segment.io"]
    assert (segment_io["apiHost"], segment_io["protocol"]) == ("lvd.example/lvd/v1", "https")


def test_segment_settings_document_under_a_session_host_keeps_the_session() -> None:
    document = settings_of("/v1/session/run-7/v1/projects/wk_abc/settings")

    segment_io = document["integrations"]["Segment.io"]
    assert segment_io["apiHost"] == "lvd.test:5001/v1/session/run-7/v1"
    assert segment_io["apiKey"] == "wk_abc"


def test_segment_settings_document_without_a_scheme_says_http() -> None:
    document = settings_of("/v1/projects/wk_abc/settings", base_url="")

    assert document["integrations"]["Segment.io"]["protocol"] == "http"


def test_segment_settings_route_answers_get_only() -> None:
    match = matched("/v1/projects/wk_abc/settings")

    assert (match.route.name, match.route.methods) == ("settings", ("GET",))
    assert match.params == {"write_key": "wk_abc"}


def test_segment_mobile_batch_route_answers_a_401_as_a_final_400() -> None:
    # analytics-swift drops a batch only on a 400 and resends any other refusal for ever.
    assert matched("/v1/b").route.final_statuses == {401: 400}
    assert matched("/v1/batch").route.final_statuses == {}
    assert matched("/v1/t").route.final_statuses == {}


def rudder_config(path: str, **kwargs: Any) -> dict[str, Any]:
    match = matched(path)
    assert match.route.document is not None
    answer = match.route.document(wire(path, method="GET", **kwargs))
    assert (answer.status, answer.content_type) == (200, "application/json")
    document: dict[str, Any] = answer_json(answer.body)
    return document


@pytest.mark.parametrize("path", ["/sourceConfig", "/sourceConfig/"])
def test_segment_rudderstack_source_config_names_the_key_and_no_destination(path: str) -> None:
    document = rudder_config(path, query={"writeKey": "wk_rudder", "p": "npm"})

    assert document == {
        "isHosted": False,
        "source": {
            "id": "lvd-wk_rudder",
            "name": "Live Validation Dashboard",
            "writeKey": "wk_rudder",
            "workspaceId": "lvd",
            "enabled": True,
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            "destinations": [],
        },
    }


def test_segment_rudderstack_source_config_never_echoes_the_authorization_header() -> None:
    # A browser may attach a person's cached Basic credentials: they must not be read back.
    document = rudder_config("/sourceConfig/", headers={"Authorization": basic("alice")})

    assert "alice" not in orjson.dumps(document).decode()


# --- PostHog ------------------------------------------------------------------------------


def posthog_event(**fields: Any) -> dict[str, Any]:
    """An event as posthog-js captures it."""
    return {
        "event": "$pageview",
        "properties": {"$lib": "web", "$current_url": "https://shop.example/", "token": "phc_k"},
        "timestamp": "2025-12-10T15:45:00.123Z",
        "uuid": str(uuid.uuid4()),
        **fields,
    }


def test_posthog_gzip_body_without_content_encoding_is_read_by_its_magic_bytes() -> None:
    events = [posthog_event(), posthog_event(event="clicked")]
    body = gzip.compress(orjson.dumps(events))
    assert body.startswith(b"\x1f\x8b")

    delivery = deliver(POSTHOG, wire("/e/", body, headers=TEXT))

    assert [parsed.event for parsed in delivery.events] == events
    assert [parsed.event_id for parsed in delivery.events] == [e["uuid"] for e in events]
    assert judged_names(delivery) == ["$pageview", "clicked"]
    assert delivery.write_key == "phc_k"


def test_posthog_compression_gzip_js_query_is_gunzipped() -> None:
    events = [posthog_event()]
    request = wire(
        "/e/",
        gzip.compress(orjson.dumps(events)),
        headers=TEXT,
        query={"compression": "gzip-js", "ver": "1.200.0"},
    )

    assert POSTHOG.decode(request, LIMITS) == events


def test_posthog_content_encoding_gzip_is_gunzipped() -> None:
    body = {"api_key": "phc_k", "batch": [posthog_event()]}
    request = wire(
        "/batch/",
        gzip.compress(orjson.dumps(body)),
        headers={**JSON, "Content-Encoding": "gzip"},
    )

    assert POSTHOG.decode(request, LIMITS) == body


def test_posthog_compression_gzip_js_on_a_body_that_is_not_gzip_is_400() -> None:
    request = wire("/e/", b"[]", headers=TEXT, query={"compression": "gzip-js"})

    error = refusal(POSTHOG, request)

    assert (error.status, error.code) == (400, "invalid_encoding")


def test_posthog_form_data_with_an_unescaped_plus_is_decoded() -> None:
    # "???>>>" makes base64 with both '+' and '/'; a form reads a bare '+' as a space.
    events = [posthog_event(properties={"token": "phc_k", "query": "???>>>"})]
    encoded = base64.b64encode(orjson.dumps(events)).decode()
    assert "+" in encoded

    request = wire("/e/", f"data={encoded}".encode(), headers=FORM)

    assert POSTHOG.decode(request, LIMITS) == events


def test_posthog_form_data_url_encoded_is_decoded() -> None:
    events = [posthog_event(properties={"token": "phc_k", "query": "???>>>"})]
    encoded = quote(base64.b64encode(orjson.dumps(events)).decode(), safe="")
    assert "%2B" in encoded and "%2F" in encoded

    request = wire(
        "/e/",
        f"data={encoded}&compression=base64".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    delivery = deliver(POSTHOG, request)

    assert [parsed.event for parsed in delivery.events] == events
    assert delivery.write_key == "phc_k"


def test_posthog_form_data_of_gzip_js_is_gunzipped() -> None:
    events = [posthog_event()]
    encoded = quote(base64.b64encode(gzip.compress(orjson.dumps(events))).decode(), safe="")

    request = wire("/e/", f"data={encoded}&compression=gzip-js".encode(), headers=FORM)

    assert POSTHOG.decode(request, LIMITS) == events


@pytest.mark.parametrize(
    "body", [b"compression=base64", "data=é".encode(), b""], ids=["no-data", "not-ascii", "empty"]
)
def test_posthog_form_without_readable_data_is_400_invalid_form(body: bytes) -> None:
    error = refusal(POSTHOG, wire("/e/", body, headers=FORM))

    assert (error.status, error.code) == (400, "invalid_form")


def test_posthog_array_body_takes_the_key_from_properties_token() -> None:
    events = [posthog_event(), posthog_event(event="clicked")]

    delivery = deliver(POSTHOG, wire("/e/", orjson.dumps(events), headers=TEXT))

    assert delivery.write_key == "phc_k"
    assert [parsed.event for parsed in delivery.events] == events


def test_posthog_api_key_batch_body_is_read() -> None:
    events = [posthog_event(properties={"$lib": "posthog-ios"}), posthog_event(event="opened")]
    body = {"api_key": "phc_batch", "batch": events, "sent_at": "2025-12-10T15:45:01Z"}

    delivery = deliver(POSTHOG, wire("/batch", orjson.dumps(body), headers=JSON))

    assert delivery.write_key == "phc_batch"
    assert [parsed.event for parsed in delivery.events] == events
    assert judged_names(delivery) == ["$pageview", "opened"]


def test_posthog_api_key_wins_over_the_events_tokens() -> None:
    events = [posthog_event(), posthog_event(properties={"token": "phc_other"})]
    body = {"api_key": "phc_batch", "batch": events}

    delivery = deliver(POSTHOG, wire("/batch/", orjson.dumps(body), headers=JSON))

    assert delivery.write_key == "phc_batch"


@pytest.mark.parametrize("field", ["api_key", "token", "$token"])
def test_posthog_single_event_body_takes_its_key_and_stores_the_event_without_it(
    field: str,
) -> None:
    event = posthog_event(properties={"$lib": "posthog-node"})

    delivery = deliver(
        POSTHOG, wire("/capture/", orjson.dumps({**event, field: "phc_one"}), headers=JSON)
    )

    assert delivery.write_key == "phc_one"
    assert [parsed.event for parsed in delivery.events] == [event]
    assert [parsed.event_id for parsed in delivery.events] == [event["uuid"]]


def test_posthog_events_with_different_tokens_are_400_mixed_keys() -> None:
    events = [posthog_event(), posthog_event(properties={"token": "phc_other"})]

    error = refusal(POSTHOG, wire("/e/", orjson.dumps(events), headers=TEXT))

    assert (error.status, error.code) == (400, "mixed_keys")


def test_posthog_key_falls_back_to_the_token_query_then_the_header() -> None:
    events = [posthog_event(properties={"$lib": "web"})]
    by_query = wire("/e/", orjson.dumps(events), headers=TEXT, query={"token": "phc_query"})
    by_header = wire("/e/", orjson.dumps(events), headers={**TEXT, "X-Write-Key": "wk_header"})

    assert deliver(POSTHOG, by_query).write_key == "phc_query"
    assert deliver(POSTHOG, by_header).write_key == "wk_header"


def test_posthog_batch_that_is_not_a_list_is_400_invalid_batch() -> None:
    body = orjson.dumps({"api_key": "phc_k", "batch": "nope"})

    error = refusal(POSTHOG, wire("/batch/", body, headers=JSON))

    assert (error.status, error.code) == (400, "invalid_batch")


def test_posthog_scalar_body_is_400_invalid_top_level() -> None:
    error = refusal(POSTHOG, wire("/e/", b'"event"', headers=TEXT))

    assert (error.status, error.code) == (400, "invalid_top_level")


def test_posthog_accepted_is_200_status_1_with_results() -> None:
    request = wire("/e/", orjson.dumps([posthog_event()]), headers=TEXT)
    delivery = deliver(POSTHOG, request)
    results = [result("u-1", "$pageview")]

    answer = POSTHOG.accepted(request, delivery, results)

    assert answer.status == 200
    assert answer_json(answer.body) == {"status": 1, "success": True, "results": results}


def test_posthog_refused_carries_detail_and_the_mirrored_code() -> None:
    answer = POSTHOG.refused(Rejected(401, "invalid_write_key", "no app has that write key"))

    assert answer.status == 401
    assert answer_json(answer.body) == {
        "error": {"code": "invalid_write_key", "message": "no app has that write key"},
        "code": "invalid_write_key",
        "message": "no app has that write key",
        "detail": "no app has that write key",
    }


@pytest.mark.parametrize("path", ["/flags", "/flags/", "/decide", "/decide/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_posthog_flags_document_has_no_flags(path: str, method: str) -> None:
    match = matched(path)
    assert match.formats == (POSTHOG,)
    assert method in match.route.methods
    assert match.route.document is not None

    answer = match.route.document(wire(path, b"{}", method=method, headers=JSON))

    document = answer_json(answer.body)
    assert answer.status == 200
    assert (document["flags"], document["featureFlags"], document["featureFlagPayloads"]) == (
        {},
        {},
        {},
    )
    assert document["errorsWhileComputingFlags"] is False
    assert document["supportedCompression"] == ["gzip", "gzip-js"]
    assert document["sessionRecording"] is False


@pytest.mark.parametrize(
    ("value", "recognised"),
    [
        ([{"event": "x"}], True),
        ({"api_key": "k", "batch": []}, True),
        ({"event": "x", "api_key": "k"}, True),
        ({"api_key": "k", "events": []}, False),
        ("text", False),
    ],
)
def test_posthog_recognises_everything_but_an_events_body(value: Any, recognised: bool) -> None:
    assert POSTHOG.recognises(value) is recognised


# --- Amplitude ----------------------------------------------------------------------------


def amplitude_event(**fields: Any) -> dict[str, Any]:
    """An event as the Amplitude browser SDK 2 uploads it."""
    return {
        "event_type": "Song Played",
        "device_id": "device-1",
        "session_id": 1733500000000,
        "time": 1733500000123,
        "event_id": 7,  # a per-device counter, not an id of the event
        "insert_id": str(uuid.uuid4()),
        "library": "amplitude-ts/2.11.0",
        "event_properties": {"title": "Bohemian Rhapsody"},
        **fields,
    }


def amplitude_upload(*events: dict[str, Any], api_key: str = "amp_key") -> bytes:
    return orjson.dumps({"api_key": api_key, "events": list(events), "options": {}})


def test_amplitude_insert_id_is_the_event_id_not_event_id() -> None:
    first, second = amplitude_event(event_id=1), amplitude_event(event_id=2)

    delivery = deliver(AMPLITUDE, wire("/2/httpapi", amplitude_upload(first, second), headers=JSON))

    assert [parsed.event_id for parsed in delivery.events] == [
        first["insert_id"],
        second["insert_id"],
    ]
    assert delivery.write_key == "amp_key"


def test_amplitude_event_without_insert_id_has_no_client_id() -> None:
    event = amplitude_event()
    del event["insert_id"]

    delivery = deliver(AMPLITUDE, wire("/2/httpapi", amplitude_upload(event), headers=JSON))

    assert [parsed.event_id for parsed in delivery.events] == [None]


def test_amplitude_event_type_names_the_event_and_the_stored_event_stays_as_sent() -> None:
    event = amplitude_event()

    delivery = deliver(AMPLITUDE, wire("/2/httpapi", amplitude_upload(event), headers=JSON))

    assert judged_names(delivery) == ["Song Played"]
    assert delivery.events[0].event == event
    assert "event" not in orjson.loads(delivery.events[0].json)


def test_amplitude_limits_are_2000_events_and_a_million_bytes() -> None:
    limits = AMPLITUDE.limits(LIMITS)

    assert (limits.max_events_per_request, limits.max_request_bytes) == (2000, 1_000_000)
    assert limits.max_event_bytes == LIMITS.max_event_bytes


def test_amplitude_2000_events_are_delivered() -> None:
    events = [amplitude_event(insert_id=f"i-{n}") for n in range(2000)]

    delivery = deliver(AMPLITUDE, wire("/2/httpapi", amplitude_upload(*events), headers=JSON))

    assert len(delivery.events) == 2000
    assert delivery.events[-1].event_id == "i-1999"


def test_amplitude_2001_events_are_413_too_many_events() -> None:
    events = [amplitude_event(insert_id=f"i-{n}") for n in range(2001)]

    error = refusal(AMPLITUDE, wire("/2/httpapi", amplitude_upload(*events), headers=JSON))

    assert (error.status, error.code) == (413, "too_many_events")


def test_amplitude_body_over_the_native_limit_but_under_a_million_bytes_is_read() -> None:
    events = [amplitude_event(event_properties={"blob": "x" * 20_000}) for _ in range(40)]
    body = amplitude_upload(*events)
    assert LIMITS.max_request_bytes < len(body) < 1_000_000

    delivery = deliver(AMPLITUDE, wire("/2/httpapi", body, headers=JSON))

    assert len(delivery.events) == 40


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"api_key": "k", "events": {}}', 400, "invalid_batch"),
        (b'{"api_key": "k"}', 400, "invalid_batch"),
        (b"[]", 400, "invalid_top_level"),
        (b'{"api_key": "k", "events": []}', 400, "empty_batch"),
    ],
)
def test_amplitude_bad_upload_is_refused_with_its_code(body: bytes, status: int, code: str) -> None:
    error = refusal(AMPLITUDE, wire("/2/httpapi", body, headers=JSON))

    assert (error.status, error.code) == (status, code)


@pytest.mark.parametrize(
    ("api_key", "error", "status", "headers", "document"),
    [
        pytest.param(
            " amp wrong",
            Rejected(401, "invalid_write_key", "no app"),
            400,
            {},
            {
                "code": 400,
                "error": "Invalid API key:  amp wrong",
                "error_code": "invalid_write_key",
            },
            id="401-is-400-invalid-api-key-with-the-key-as-sent",
        ),
        pytest.param(
            None,
            Rejected(401, "write_key_required", "send it"),
            400,
            {},
            {"code": 400, "error": "Invalid API key: ", "error_code": "write_key_required"},
            id="401-without-a-key-names-none",
        ),
        pytest.param(
            None,
            Rejected(429, "rate_limited", "too fast", headers={"Retry-After": "4"}),
            429,
            {"Retry-After": "4"},
            {"code": 429, "error": "too fast", "error_code": "rate_limited"},
            id="other-statuses-keep-them-and-their-headers",
        ),
    ],
)
def test_amplitude_refused_answers_in_amplitudes_shape(
    api_key: str | None,
    error: Rejected,
    status: int,
    headers: dict[str, str],
    document: dict[str, Any],
) -> None:
    delivery = None
    if api_key is not None:
        body = amplitude_upload(amplitude_event(), api_key=api_key)
        delivery = deliver(AMPLITUDE, wire("/2/httpapi", body, headers=JSON))

    answer = AMPLITUDE.refused(error, delivery)

    assert (answer.status, dict(answer.headers)) == (status, headers)
    assert answer_json(answer.body) == document


def test_amplitude_accepted_answers_in_amplitudes_shape() -> None:
    events = [amplitude_event(), amplitude_event(event_type="Song Paused")]
    request = wire("/2/httpapi", amplitude_upload(*events), headers=JSON)
    delivery = deliver(AMPLITUDE, request)
    results = [result(e["insert_id"], e["event_type"]) for e in events]
    before = int(time.time() * 1000)

    answer = AMPLITUDE.accepted(request, delivery, results)

    after = int(time.time() * 1000)
    document = answer_json(answer.body)
    assert answer.status == 200
    assert set(document) == {
        "code",
        "events_ingested",
        "payload_size_bytes",
        "server_upload_time",
        "results",
    }
    assert (document["code"], document["events_ingested"], document["results"]) == (
        200,
        2,
        results,
    )
    assert document["payload_size_bytes"] == len(request.body)
    assert before <= document["server_upload_time"] <= after


def test_amplitude_payload_size_counts_bytes_not_characters() -> None:
    event = amplitude_event(event_type="Café ☕", event_properties={"title": "Für Elise"})
    upload = amplitude_upload(event)
    request = wire("/2/httpapi", upload, headers=JSON)
    delivery = deliver(AMPLITUDE, request)

    answer = AMPLITUDE.accepted(request, delivery, [result(event["insert_id"], "Café ☕")])

    size = answer_json(answer.body)["payload_size_bytes"]
    assert size == len(upload) > len(upload.decode())


@pytest.mark.parametrize(
    ("value", "recognised"),
    [
        ({"api_key": "k", "events": []}, True),
        ({"api_key": "k", "batch": []}, False),
        ([{"event_type": "x"}], False),
    ],
)
def test_amplitude_recognises_a_body_with_events(value: Any, recognised: bool) -> None:
    assert AMPLITUDE.recognises(value) is recognised


@pytest.mark.parametrize(
    ("body", "chosen"),
    [
        ({"api_key": "k", "events": [{"event_type": "x"}]}, "amplitude"),
        ({"api_key": "k", "batch": [{"event": "x"}]}, "posthog"),
        ([{"event": "x", "properties": {"token": "k"}}], "posthog"),
    ],
)
def test_shared_batch_path_is_read_by_the_format_that_recognises_the_body(
    body: Any, chosen: str
) -> None:
    match = matched("/batch")
    request = wire("/batch", gzip.compress(orjson.dumps(body)), headers=JSON)
    value = match.formats[0].decode(request, LIMITS)

    fmt = next(f for f in match.formats if f.recognises(value))
    delivery = fmt.deliver(value, request, fmt.limits(LIMITS))

    assert fmt.name == chosen
    assert delivery.write_key == "k"
    assert match.served_by(fmt).endpoint == f"{chosen}.batch" + (
        "_bare" if chosen == "posthog" else ""
    )


# --- Snowplow -----------------------------------------------------------------------------


def self_describing(data: dict[str, Any], schema: str = CHECKOUT) -> bytes:
    return orjson.dumps({"schema": UNSTRUCT, "data": {"schema": schema, "data": data}})


def contexts_json() -> bytes:
    return orjson.dumps(
        {"schema": CONTEXTS, "data": [{"schema": WEB_PAGE, "data": {"id": "page-1"}}]}
    )


def tracker_payload(**fields: Any) -> dict[str, Any]:
    """A tracker payload as the browser tracker posts it: every value a string."""
    return {
        "e": "ue",
        "eid": str(uuid.uuid4()),
        "aid": "shop",
        "p": "web",
        "tv": "js-3.24.0",
        "tna": "sp",
        "dtm": DTM,
        "stm": "1733500000999",
        "duid": "duid-1",
        **fields,
    }


def envelope(*events: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": list(events),
        }
    )


def snowplow_one(event: dict[str, Any], path: str = TP2) -> Delivery:
    return deliver(SNOWPLOW, wire(path, envelope(event), headers=JSON))


def test_snowplow_ue_pr_is_named_by_its_schema_with_its_data_as_properties() -> None:
    data = {"sku": "A-1", "price": 12.5}
    event = tracker_payload(ue_pr=self_describing(data).decode())

    delivery = snowplow_one(event)

    [parsed] = delivery.events
    assert parsed.event == {
        **event,
        "event": "com.acme/checkout_started",
        "schema": CHECKOUT,
        "properties": data,
        "timestamp": DTM_RFC3339,
    }
    assert parsed.event_id == event["eid"]
    assert judged_names(delivery) == ["com.acme/checkout_started"]
    assert orjson.loads(parsed.json) == parsed.event  # what is stored is the readable view


# "???>>>" at this offset makes base64 with '+', '/' and padding, and base64url with '-', '_'.
ALPHABET_DATA = {"sku": "???>>>", "price": 12.5}


def test_snowplow_ue_px_in_standard_base64_with_padding_is_read() -> None:
    encoded = base64.b64encode(self_describing(ALPHABET_DATA)).decode()
    assert "+" in encoded and "/" in encoded and encoded.endswith("=")  # as Android writes it

    [parsed] = snowplow_one(tracker_payload(ue_px=encoded)).events

    assert parsed.event["properties"] == ALPHABET_DATA
    assert parsed.event["event"] == "com.acme/checkout_started"
    assert parsed.event["schema"] == CHECKOUT


def test_snowplow_ue_px_in_url_safe_base64_without_padding_is_read() -> None:
    encoded = base64.urlsafe_b64encode(self_describing(ALPHABET_DATA)).decode().rstrip("=")
    assert "-" in encoded and "_" in encoded and len(encoded) % 4  # as iOS and browsers write it

    [parsed] = snowplow_one(tracker_payload(ue_px=encoded)).events

    assert parsed.event["properties"] == ALPHABET_DATA
    assert parsed.event["schema"] == CHECKOUT


@pytest.mark.parametrize(
    "fields",
    [
        {"ue_px": "!!!not base64!!!"},
        {"ue_px": "abcde"},  # a length no base64 has
        {"ue_px": base64.urlsafe_b64encode(b"{not json").decode()},
        {"ue_pr": "{not json"},
        {"ue_pr": orjson.dumps({"schema": UNSTRUCT, "data": {"data": {}}}).decode()},
        {"ue_pr": "[]"},
        {},
    ],
    ids=[
        "bad-base64",
        "bad-length",
        "base64-not-json",
        "pr-not-json",
        "no-schema",
        "array",
        "none",
    ],
)
def test_snowplow_unreadable_self_describing_event_is_400_invalid_event(
    fields: dict[str, Any],
) -> None:
    error = refusal(SNOWPLOW, wire(TP2, envelope(tracker_payload(**fields)), headers=JSON))

    assert (error.status, error.code) == (400, "invalid_event")


@pytest.mark.parametrize(
    ("fields", "name", "properties"),
    [
        pytest.param(
            {
                "e": "se",
                "se_ca": "checkout",
                "se_ac": "add_to_cart",
                "se_la": "sku-1",
                "se_pr": "red",
                "se_va": "2.5",
            },
            "checkout/add_to_cart",
            {
                "category": "checkout",
                "action": "add_to_cart",
                "label": "sku-1",
                "property": "red",
                "value": "2.5",
            },
            id="structured-event-is-category-slash-action",
        ),
        pytest.param(
            {"e": "se", "se_ca": "video", "se_ac": "play"},
            "video/play",
            {"category": "video", "action": "play"},
            id="structured-event-keeps-only-the-fields-sent",
        ),
        pytest.param(
            {
                "e": "pv",
                "url": "https://shop.example/cart",
                "page": "Cart",
                "refr": "https://shop.example/",
            },
            "page_view",
            {
                "url": "https://shop.example/cart",
                "title": "Cart",
                "referrer": "https://shop.example/",
            },
            id="page-view-is-named-page-view",
        ),
    ],
)
def test_snowplow_tracker_event_is_named_with_its_properties(
    fields: dict[str, str], name: str, properties: dict[str, str]
) -> None:
    [parsed] = snowplow_one(tracker_payload(**fields)).events

    assert parsed.event["event"] == name
    assert parsed.event["properties"] == properties
    assert "schema" not in parsed.event


@pytest.mark.parametrize(
    ("kind", "name"),
    [("pp", "page_ping"), ("tr", "transaction"), ("ti", "transaction_item"), ("zz", "zz")],
)
def test_snowplow_built_in_types_are_named(kind: str, name: str) -> None:
    [parsed] = snowplow_one(tracker_payload(e=kind)).events

    assert parsed.event["event"] == name


def test_snowplow_co_contexts_are_decoded() -> None:
    event = tracker_payload(e="pv", co=contexts_json().decode())

    [parsed] = snowplow_one(event).events

    assert parsed.event["contexts"] == [{"schema": WEB_PAGE, "data": {"id": "page-1"}}]
    assert parsed.event["co"] == event["co"]  # the tracker's own field stays


def test_snowplow_cx_contexts_are_decoded_from_base64url() -> None:
    encoded = base64.urlsafe_b64encode(contexts_json()).decode().rstrip("=")

    [parsed] = snowplow_one(tracker_payload(e="pv", cx=encoded)).events

    assert parsed.event["contexts"] == [{"schema": WEB_PAGE, "data": {"id": "page-1"}}]


def test_snowplow_unreadable_cx_is_400_invalid_event() -> None:
    event = tracker_payload(e="pv", cx="%%%")

    error = refusal(SNOWPLOW, wire(TP2, envelope(event), headers=JSON))

    assert (error.status, error.code) == (400, "invalid_event")


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"dtm": DTM}, DTM_RFC3339),
        ({"dtm": None, "ttm": "1733500000000"}, "2024-12-06T15:46:40.000Z"),
        ({"dtm": None, "stm": "0"}, "1970-01-01T00:00:00.000Z"),
        ({"dtm": "soon", "stm": None}, None),
    ],
)
def test_snowplow_tracker_milliseconds_become_an_rfc3339_timestamp(
    times: dict[str, Any], expected: str | None
) -> None:
    event = {k: v for k, v in tracker_payload(e="pv", **times).items() if v is not None}

    [parsed] = snowplow_one(event).events

    assert parsed.event.get("timestamp") == expected


def test_snowplow_eid_is_the_event_id_for_every_event() -> None:
    events = [tracker_payload(e="pv"), tracker_payload(e="pp")]

    delivery = deliver(SNOWPLOW, wire(TP2, envelope(*events), headers=JSON))

    assert [parsed.event_id for parsed in delivery.events] == [e["eid"] for e in events]


def test_snowplow_app_is_the_aid_at_the_root() -> None:
    delivery = snowplow_one(tracker_payload(e="pv", aid="shop-web"))

    assert (delivery.app_alias, delivery.app_id, delivery.write_key) == ("shop-web", None, None)


def test_snowplow_app_in_the_path_wins_over_the_aid() -> None:
    events = [tracker_payload(e="pv", aid="one"), tracker_payload(e="pv", aid="two")]

    delivery = deliver(SNOWPLOW, wire(f"/snowplow/wk_path{TP2}", envelope(*events), headers=JSON))

    assert delivery.app_alias == "wk_path"


def test_snowplow_events_with_different_aid_are_400_mixed_apps() -> None:
    events = [tracker_payload(e="pv", aid="one"), tracker_payload(e="pv", aid="two")]

    error = refusal(SNOWPLOW, wire(TP2, envelope(*events), headers=JSON))

    assert (error.status, error.code) == (400, "mixed_apps")


def test_snowplow_without_aid_or_app_in_the_path_is_404_unknown_app() -> None:
    event = tracker_payload(e="pv")
    del event["aid"]

    error = refusal(SNOWPLOW, wire(TP2, envelope(event), headers=JSON))

    assert (error.status, error.code) == (404, "unknown_app")


def test_snowplow_bare_event_without_an_envelope_is_delivered() -> None:
    event = tracker_payload(e="pv")

    delivery = deliver(SNOWPLOW, wire(TP2, orjson.dumps(event), headers=JSON))

    assert [parsed.event_id for parsed in delivery.events] == [event["eid"]]
    assert judged_names(delivery) == ["page_view"]
    assert delivery.app_alias == "shop"


@pytest.mark.parametrize(
    "body",
    [b'{"schema": "x"}', b'{"data": {}}', b"[]", b'"e"'],
    ids=["no-data", "data-not-list", "array", "string"],
)
def test_snowplow_body_that_is_no_envelope_is_400_invalid_batch(body: bytes) -> None:
    error = refusal(SNOWPLOW, wire(TP2, body, headers=JSON))

    assert (error.status, error.code) == (400, "invalid_batch")


def test_snowplow_event_that_is_not_an_object_is_400_invalid_event() -> None:
    error = refusal(SNOWPLOW, wire(TP2, b'{"data": ["e=pv"]}', headers=JSON))

    assert (error.status, error.code) == (400, "invalid_event")


def test_snowplow_pixel_reads_the_event_from_the_query() -> None:
    query = {"e": "pv", "aid": "shop", "eid": "pixel-1", "tv": "js-3", "url": "https://x/"}
    request = wire("/i", method="GET", query=query)

    delivery = deliver(SNOWPLOW, request)

    [parsed] = delivery.events
    assert parsed.event_id == "pixel-1"
    assert parsed.event == {
        **query,
        "event": "page_view",
        "properties": {"url": "https://x/"},
    }
    assert delivery.app_alias == "shop"


def test_snowplow_pixel_is_answered_with_a_gif() -> None:
    request = wire("/snowplow/shop/i", method="GET", query={"e": "pv", "eid": "p-1"})
    delivery = deliver(SNOWPLOW, request)

    answer = SNOWPLOW.accepted(request, delivery, [result("p-1", "page_view")])

    assert (answer.status, answer.content_type, answer.body) == (200, "image/gif", PIXEL)
    assert answer.body.startswith(b"GIF89a")
    assert dict(answer.headers) == {"Cache-Control": "no-store"}


def test_snowplow_post_is_answered_with_json_results() -> None:
    request = wire(TP2, envelope(tracker_payload(e="pv", eid="p-2")), headers=JSON)
    delivery = deliver(SNOWPLOW, request)
    results = [result("p-2", "page_view")]

    answer = SNOWPLOW.accepted(request, delivery, results)

    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer_json(answer.body) == {"success": True, "results": results}


@pytest.mark.parametrize("path", [TP2, "/i", f"/snowplow/shop{TP2}", "/snowplow/shop/i"])
def test_snowplow_routes_answer_an_unknown_app_as_a_final_403(path: str) -> None:
    # The trackers retry every refusal but 400, 401, 403, 410 and 422.
    assert matched(path).route.final_statuses == {404: 403}


def test_snowplow_refused_is_the_standard_error_document() -> None:
    answer = SNOWPLOW.refused(Rejected(404, "unknown_app", "no such app"))

    assert answer.status == 404
    assert answer_json(answer.body) == {"error": {"code": "unknown_app", "message": "no such app"}}


def test_snowplow_post_with_charset_content_type_is_read() -> None:
    request = wire(
        TP2,
        envelope(tracker_payload(e="pv")),
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )

    assert len(deliver(SNOWPLOW, request).events) == 1


# --- the router ---------------------------------------------------------------------------

ROUTES = [
    ("/api/logs/shop", "native", "ingest", {"app_id": "shop"}),
    ("/v1/batch", "segment", "batch", {}),
    ("/v1/b", "segment", "b", {}),
    ("/v1/track", "segment", "track", {}),
    ("/v1/t", "segment", "t", {}),
    ("/v1/i", "segment", "i", {}),
    ("/v1/projects/wk_1/settings", "segment", "settings", {"write_key": "wk_1"}),
    ("/sourceConfig", "segment", "rudder_config", {}),
    ("/sourceConfig/", "segment", "rudder_config_slash", {}),
    ("/e/", "posthog", "e", {}),
    ("/i/v0/e/", "posthog", "i_v0_e", {}),
    ("/capture", "posthog", "capture_bare", {}),
    ("/batch/", "posthog", "batch", {}),
    ("/flags/", "posthog", "flags", {}),
    ("/decide", "posthog", "decide_bare", {}),
    ("/2/httpapi", "amplitude", "httpapi", {}),
    (TP2, "snowplow", "tp2", {}),
    ("/i", "snowplow", "pixel", {}),
    (f"/snowplow/shop{TP2}", "snowplow", "app_tp2", {"app": "shop"}),
    ("/snowplow/wk_1/i", "snowplow", "app_pixel", {"app": "wk_1"}),
]


@pytest.mark.parametrize(("path", "fmt", "route", "params"), ROUTES)
def test_router_matches_each_formats_paths(
    path: str, fmt: str, route: str, params: dict[str, str]
) -> None:
    match = matched(path)

    assert ([f.name for f in match.formats], match.route.name) == ([fmt], route)
    assert (match.params, match.session) == (params, None)
    assert match.served_by(match.formats[0]).endpoint == f"{fmt}.{route}"


@pytest.mark.parametrize(("path", "fmt", "route", "params"), ROUTES)
def test_router_session_prefix_reaches_every_formats_paths(
    path: str, fmt: str, route: str, params: dict[str, str]
) -> None:
    match = matched(f"/v1/session/ci-job-7{path}")

    assert ([f.name for f in match.formats], match.route.name) == ([fmt], route)
    assert (match.params, match.session) == (params, "ci-job-7")


def test_router_batch_is_posthogs_then_amplitudes() -> None:
    for path in ("/batch", "/v1/session/s-1/batch"):
        match = matched(path)

        assert [(s.fmt.name, s.route.name) for s in match.served] == [
            ("posthog", "batch_bare"),
            ("amplitude", "batch"),
        ]
        assert match.formats == (POSTHOG, AMPLITUDE)
        assert match.served_by(AMPLITUDE).endpoint == "amplitude.batch"
        assert match.served_by(POSTHOG).endpoint == "posthog.batch_bare"
        assert match.max_request_bytes(LIMITS) == 1_000_000


def test_router_max_request_bytes_is_the_formats_own() -> None:
    assert matched("/v1/batch").max_request_bytes(LIMITS) == LIMITS.max_request_bytes
    assert matched("/2/httpapi").max_request_bytes(LIMITS) == 1_000_000


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v1/unknown",
        "/v1/x",
        "/v1/batch/",
        "/api/logs/",
        "/api/logs/shop/",
        "/api/logs/a/b",
        "/batchx",
        "/2/httpapi/",
        "/micro/all",
        "/snowplow/shop/micro/all",
        "/snowplow//i",
        f"/snowplow/a/b{TP2}",
        "/v1/projects//settings",
        "/v1/session/s-1",
        "/v1/session/s-1/",
        "/v1/session/s-1/v1/unknown",
        "/v1/session//v1/t",
        "/v1/session/a/v1/session/b/v1/t",
    ],
)
def test_router_unknown_paths_match_nothing(path: str) -> None:
    assert ROUTER.match(path) is None


def test_router_allowed_headers_include_every_sdks_own() -> None:
    assert set(ALLOWED_HEADERS) >= {
        "Content-Type",
        "Content-Encoding",
        "Authorization",
        "X-LVD-Session",
        "X-Write-Key",
        "X-Retry-Count",
        "AnonymousId",
        "SentAt",
        "SP-Anonymous",
    }
    assert len(ALLOWED_HEADERS) == len(set(ALLOWED_HEADERS))


def test_router_native_path_needs_its_app_id_in_the_delivery() -> None:
    request = wire("/api/logs/shop", b'{"eventName": "x"}', headers={**JSON, "X-Write-Key": "wk_n"})

    delivery = deliver(NATIVE, request)

    assert (delivery.app_id, delivery.write_key, delivery.is_batch) == ("shop", "wk_n", False)


IGLU_SP = "iglu:com.snowplowanalytics.snowplow"
ACME_X = "iglu:com.acme/x/jsonschema/1-0-0"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, (None, None, None)),
        ({"event_type": "struct"}, ("se", None, None)),
        (
            {"schema": "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0"},
            ("pv", None, None),
        ),
        (
            {"schema": "iglu:com.acme/x/jsonschema/1-0-0"},
            ("ue", "iglu:com.acme/x/jsonschema/1-0-0", None),
        ),
        (
            {"contexts": ["iglu:c/d/jsonschema/1-0-0"]},
            (None, None, [{"schema": "iglu:c/d/jsonschema/1-0-0"}]),
        ),
    ],
)
def test_micro_good_filter_becomes_query_conditions(
    filters: dict[str, Any], expected: tuple[Any, Any, Any]
) -> None:
    conditions = MicroFilter.parse(filters).good_conditions()

    assert conditions is not None
    assert (conditions.event_code, conditions.schema, conditions.contexts) == expected


@pytest.mark.parametrize(
    "filters",
    [
        {"event_type": "struct", "schema": "iglu:com.acme/x/jsonschema/1-0-0"},
        {"event_type": "page_view", "schema": "iglu:com.google.analytics/event/jsonschema/1-0-0"},
        {"event_type": "no_such_type"},
    ],
)
def test_micro_good_filter_no_event_can_match_is_none(filters: dict[str, Any]) -> None:
    assert MicroFilter.parse(filters).good_conditions() is None


@pytest.mark.parametrize(
    "filters",
    [{"contexts": 5}, {"contexts": True}, {"contexts": {"a": 1}}, {"schema": "iglu:a\x00b"}],
)
def test_micro_filter_refuses_contexts_of_the_wrong_type_and_nul_characters(
    filters: dict[str, object],
) -> None:
    with pytest.raises(Rejected) as caught:
        MicroFilter.parse(filters)
    assert (caught.value.status, caught.value.code) == (400, "invalid_filter")
