"""Every wire format through the web edge, as its SDKs send it; CORS; Snowplow Micro; outages.

Requests go through the Quart test client, so through the ASGI edge (web/ingest.py) in front
of Quart. Events land in Redis db 14, where no worker runs: each test reads the queued
message back, and the Snowplow Micro tests store it as the worker would.
"""

from __future__ import annotations

import base64
import gzip
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

import web.core.directory as directory_module
from tests.core.test_wire_formats import (
    CHECKOUT,
    DTM_RFC3339,
    TP2,
    UNSTRUCT,
    WEB_PAGE,
    ajs_message,
    amplitude_event,
    contexts_json,
    envelope,
    self_describing,
    tracker_payload,
)
from tests.web.conftest import MakeApp
from tests.web.support import (
    QUEUE_MESSAGES_KEY,
    assert_error,
    json_of,
    queued_event,
    queued_message,
)
from web.context import Services
from web.core.directory import AppDirectory
from web.core.errors import Rejected
from web.core.ingest.formats.snowplow import PIXEL
from web.core.queries.apps import select_app
from web.core.queries.base import App
from web.core.ratelimit import RateLimiter
from web.core.settings import Settings
from workers.store import store_events

ORIGIN = "https://shop.example"
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SNOWPLOW_JSON = {"Content-Type": "application/json; charset=UTF-8"}
# The schema Micro 3 lists an enriched event's contexts under (trackers send 1-0-1 or 1-0-0).
ENRICHED_CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
RESULT_KEYS = {"event_id", "event_name", "status", "errors", "task_id", "message"}
UNKNOWN_WRITE_KEY = {
    "error": {"code": "invalid_write_key", "message": "no app has that write key"},
    "code": "invalid_write_key",
    "message": "no app has that write key",
}


# --- helpers ------------------------------------------------------------------------------


async def post(
    client: Client,
    path: str,
    body: bytes,
    headers: dict[str, str],
    query: dict[str, str] | None = None,
) -> WerkzeugResponse:
    return await client.post(path, data=body, headers=headers, query_string=query)


async def put_plan(client: Client, app_id: str, events: dict[str, Any]) -> None:
    response = await client.put(f"/api/apps/{app_id}/plan", json={"events": events})
    assert response.status_code == 200, await response.get_data(as_text=True)


def requiring(event_name: str, parent: str, key: str) -> dict[str, Any]:
    """A plan's events: `event_name`, whose object under `parent` must hold `key`."""
    return {
        event_name: {
            "type": "object",
            "required": [parent],
            "properties": {parent: {"type": "object", "required": [key]}},
        }
    }


async def success(response: WerkzeugResponse, status: int = 200) -> dict[str, Any]:
    """A JSON success answer; its results each have the standard keys."""
    body: dict[str, Any] = await json_of(response)
    assert response.status_code == status, body
    assert all(set(result) == RESULT_KEYS for result in body["results"]), body
    return body


async def queued(settings: Settings, result: dict[str, Any]) -> dict[str, Any]:
    return await queued_event(settings.redis_url, result["task_id"], result["event_id"])


def verdicts(results: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(r["event_id"], r["event_name"], r["status"]) for r in results]


def stored_row(stored: dict[str, Any]) -> tuple[str, str, str, str]:
    """A queued event's (app_id, event_id, event_name, status)."""
    return (stored["app_id"], stored["event_id"], stored["event_name"], stored["status"])


def ajs_body(message: dict[str, Any], write_key: str) -> bytes:
    """A message as Analytics.js posts it: its write key in the body."""
    return orjson.dumps({**message, "writeKey": write_key})


async def post_ajs(
    client: Client,
    path: str,
    message: dict[str, Any],
    write_key: str,
    headers: dict[str, str] | None = None,
) -> WerkzeugResponse:
    """Post a message as Analytics.js does: text/plain, its write key in the body."""
    return await post(client, path, ajs_body(message, write_key), {**TEXT, **(headers or {})})


def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def posthog_js_event(token: str, **fields: Any) -> dict[str, Any]:
    """An event as posthog-js batches it to /e/."""
    return {
        "uuid": str(uuid.uuid4()),
        "event": "$pageview",
        "properties": {"$lib": "web", "$current_url": "https://shop.example/", "token": token},
        "timestamp": "2025-12-10T15:45:00.123Z",
        **fields,
    }


def amplitude_upload(api_key: str, *events: dict[str, Any]) -> bytes:
    return orjson.dumps({"api_key": api_key, "events": list(events), "options": {}})


def checkout(app_alias: str, **data: Any) -> dict[str, Any]:
    """A self-describing checkout_started event as the browser tracker posts it."""
    return tracker_payload(
        aid=app_alias,
        ue_px=base64.urlsafe_b64encode(self_describing(data)).decode().rstrip("="),
        cx=base64.urlsafe_b64encode(contexts_json()).decode().rstrip("="),
    )


SNOWPLOW_PLAN = {
    **requiring("com.acme/checkout_started", "properties", "sku"),
    "page_view": {"type": "object"},
    "checkout/add_to_cart": {"type": "object"},
}


# --- Segment: Analytics.js ----------------------------------------------------------------


async def test_segment_analytics_js_short_track_is_answered_200_and_queued(
    client: Client, app: App, web_settings: Settings
) -> None:
    message = ajs_message("track")

    response = await post_ajs(client, "/v1/t", message, app.write_key, {"Origin": ORIGIN})

    body = await success(response)
    assert body["success"] is True
    assert verdicts(body["results"]) == [(message["messageId"], "Order Completed", "valid")]
    assert (
        response.headers["Access-Control-Allow-Origin"] == "*"
    )  # Analytics.js sends no credentials
    stored = await queued(web_settings, body["results"][0])
    assert stored_row(stored) == (app.id, message["messageId"], "Order Completed", "valid")
    assert orjson.loads(stored["payload"]) == message  # the write key is not stored


async def test_segment_analytics_js_identify_is_judged_by_the_plan_as_identify(
    client: Client, app: App, web_settings: Settings
) -> None:
    await put_plan(client, app.id, requiring("identify", "traits", "email"))
    good = ajs_message("identify", traits={"email": "a@example.com"})
    bad = ajs_message("identify", traits={"name": "no email"})

    answers = [
        await success(await post_ajs(client, "/v1/i", message, app.write_key))
        for message in (good, bad)
    ]

    assert [verdicts(a["results"]) for a in answers] == [
        [(good["messageId"], "identify", "valid")],
        [(bad["messageId"], "identify", "invalid")],
    ]
    errors = answers[1]["results"][0]["errors"]
    assert [(e["path"], e["rule"]) for e in errors] == [("/traits/email", "required")]
    stored = await queued(web_settings, answers[1]["results"][0])
    assert (stored["event_name"], stored["status"]) == ("identify", "invalid")
    assert [(e["path"], e["rule"]) for e in orjson.loads(stored["errors"])] == [
        ("/traits/email", "required")
    ]


async def test_segment_analytics_js_batch_b_is_answered_with_a_verdict_per_message(
    client: Client, app: App, web_settings: Settings
) -> None:
    track, page = ajs_message("track"), ajs_message("page", name="Home")
    body = {"writeKey": app.write_key, "batch": [track, page], "sentAt": "x"}

    response = await post(client, "/v1/b", orjson.dumps(body), TEXT)

    results = (await success(response))["results"]
    assert verdicts(results) == [
        (track["messageId"], "Order Completed", "valid"),
        (page["messageId"], "page", "valid"),
    ]
    stored = await queued(web_settings, results[1])
    assert (stored["app_id"], stored["event_name"]) == (app.id, "page")
    assert orjson.loads(stored["payload"]) == page


async def test_segment_server_sdk_basic_auth_is_the_write_key(
    client: Client, make_app: MakeApp, web_settings: Settings
) -> None:
    app = await make_app(require_write_key=True)
    message = ajs_message("screen", name="Home")

    response = await post(
        client, "/v1/s", orjson.dumps(message), {**JSON, "Authorization": basic(app.write_key)}
    )

    [result] = (await success(response))["results"]
    assert verdicts([result]) == [(message["messageId"], "screen", "valid")]
    assert (await queued(web_settings, result))["app_id"] == app.id


async def test_segment_settings_point_analytics_js_back_at_this_server(
    client: Client, app: App
) -> None:
    plain = await client.get(f"/v1/projects/{app.write_key}/settings")
    scoped = await client.get(f"/v1/session/run-9/v1/projects/{app.write_key}/settings")

    documents = [await json_of(plain), await json_of(scoped)]
    assert (plain.status_code, scoped.status_code) == (200, 200)
    assert [d["integrations"]["Segment.io"]["apiHost"] for d in documents] == [
        "localhost/v1",
        "localhost/v1/session/run-9/v1",
    ]
    assert {d["integrations"]["Segment.io"]["apiKey"] for d in documents} == {app.write_key}
    assert {d["integrations"]["Segment.io"]["protocol"] for d in documents} == {"http"}
    assert {d["metrics"]["sampleRate"] for d in documents} == {0}


async def test_segment_session_scoped_short_path_tags_the_event(
    client: Client, app: App, web_settings: Settings
) -> None:
    message = ajs_message("track")

    response = await post_ajs(client, "/v1/session/run-9/v1/t", message, app.write_key)

    [result] = (await success(response))["results"]
    assert (await queued(web_settings, result))["session"] == "run-9"


async def test_segment_unknown_write_key_is_401_with_a_top_level_code(client: Client) -> None:
    message = ajs_message("track")

    response = await post_ajs(client, "/v1/t", message, "wk_unknown-key")

    body = await json_of(response)
    assert response.status_code == 401
    assert body == UNKNOWN_WRITE_KEY


async def test_segment_mobile_batch_unknown_key_is_400_which_the_sdks_take_as_final(
    client: Client,
) -> None:
    body = orjson.dumps({"batch": [ajs_message("screen", name="Home")], "writeKey": "wk_nope"})

    mobile = await post(client, "/v1/b", gzip.compress(body), {**TEXT, "Content-Encoding": "gzip"})
    server = await post(client, "/v1/batch", body, JSON)

    mobile_body, server_body = await json_of(mobile), await json_of(server)
    assert (mobile.status_code, server.status_code) == (400, 401)
    assert mobile_body == server_body
    assert (mobile_body["code"], mobile_body["error"]["code"]) == (
        "invalid_write_key",
        "invalid_write_key",
    )


@pytest.mark.parametrize("path", ["/sourceConfig", "/sourceConfig/"])
async def test_segment_rudderstack_source_config_has_no_destinations(
    client: Client, path: str
) -> None:
    by_query = await client.get(
        path,
        query_string={"p": "npm", "v": "3.7.0", "writeKey": "wk_r"},
        headers={"Authorization": basic("alice")},  # never read: a person's, maybe
    )

    for response in (by_query,):
        body = await json_of(response)
        assert response.status_code == 200
        assert body["isHosted"] is False
        assert (body["source"]["writeKey"], body["source"]["destinations"]) == ("wk_r", [])
        assert body["source"]["config"]["statsCollection"] == {
            "errors": {"enabled": False},
            "metrics": {"enabled": False},
        }


# --- PostHog ------------------------------------------------------------------------------


async def test_posthog_js_gzip_js_text_plain_is_answered_200_and_queued(
    client: Client, app: App, web_settings: Settings
) -> None:
    events = [posthog_js_event(app.write_key), posthog_js_event(app.write_key, event="clicked")]

    response = await post(
        client,
        "/e/",
        gzip.compress(orjson.dumps(events)),
        {**TEXT, "Origin": ORIGIN},
        {"ip": "1", "_": "1733500000123", "ver": "1.200.0", "compression": "gzip-js"},
    )

    body = await success(response)
    assert (body["status"], body["success"]) == (1, True)
    assert verdicts(body["results"]) == [
        (events[0]["uuid"], "$pageview", "valid"),
        (events[1]["uuid"], "clicked", "valid"),
    ]
    stored = await queued(web_settings, body["results"][1])
    assert (stored["app_id"], stored["event_name"], stored["status"]) == (
        app.id,
        "clicked",
        "valid",
    )
    assert orjson.loads(stored["payload"]) == events[1]


def posthog_form_data(events: list[dict[str, Any]]) -> bytes:
    """A batch as posthog-js posts it when it cannot send a body: a base64 `data=` form."""
    return b"data=" + quote(base64.b64encode(orjson.dumps(events)).decode(), safe="").encode()


@pytest.mark.parametrize(
    ("path", "encode", "headers", "query", "properties"),
    [
        pytest.param(
            "/i/v0/e/",
            lambda events: gzip.compress(orjson.dumps(events)),
            TEXT,
            None,
            None,
            id="gzip-without-content-encoding-or-query",
        ),
        pytest.param(
            "/e/",
            posthog_form_data,
            FORM,
            {"compression": "base64"},
            {"q": "???>>>"},
            id="form-data",
        ),
    ],
)
async def test_posthog_body_is_read(
    client: Client,
    app: App,
    web_settings: Settings,
    path: str,
    encode: Callable[[list[dict[str, Any]]], bytes],
    headers: dict[str, str],
    query: dict[str, str] | None,
    properties: dict[str, Any] | None,
) -> None:
    fields = {} if properties is None else {"properties": {"token": app.write_key, **properties}}
    event = posthog_js_event(app.write_key, **fields)

    response = await post(client, path, encode([event]), headers, query)

    [result] = (await success(response))["results"]
    assert verdicts([result]) == [(event["uuid"], "$pageview", "valid")]
    assert orjson.loads((await queued(web_settings, result))["payload"]) == event


async def test_posthog_mobile_batch_with_content_encoding_is_judged_by_the_plan(
    client: Client, app: App, web_settings: Settings
) -> None:
    await put_plan(client, app.id, requiring("signed_up", "properties", "plan"))
    good = posthog_js_event("", event="signed_up", properties={"$lib": "posthog-ios", "plan": "p"})
    bad = posthog_js_event("", event="signed_up", properties={"$lib": "posthog-ios"})
    body = {"api_key": app.write_key, "batch": [good, bad], "sent_at": "x"}

    response = await post(
        client,
        "/batch",
        gzip.compress(orjson.dumps(body)),
        {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"},
    )

    results = (await success(response))["results"]
    assert verdicts(results) == [
        (good["uuid"], "signed_up", "valid"),
        (bad["uuid"], "signed_up", "invalid"),
    ]
    stored = await queued(web_settings, results[1])
    assert (stored["status"], stored["event_name"]) == ("invalid", "signed_up")
    assert [(e["path"], e["rule"]) for e in orjson.loads(stored["errors"])] == [
        ("/properties/plan", "required")
    ]


async def test_posthog_events_with_different_tokens_are_400_mixed_keys(
    client: Client, make_app: MakeApp
) -> None:
    one, two = await make_app(), await make_app()
    events = [posthog_js_event(one.write_key), posthog_js_event(two.write_key)]

    response = await post(client, "/e/", orjson.dumps(events), TEXT)

    body = await json_of(response)
    assert (response.status_code, body["code"], body["error"]["code"]) == (
        400,
        "mixed_keys",
        "mixed_keys",
    )
    assert body["detail"] == body["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/flags/?v=2"), ("GET", "/flags"), ("POST", "/decide/?v=4"), ("GET", "/decide")],
)
async def test_posthog_flags_are_answered_with_no_flags(
    client: Client, method: str, path: str
) -> None:
    response = await client.open(
        path, method=method, data=b'{"token": "x", "distinct_id": "d"}', headers=JSON
    )

    body = await json_of(response)
    assert response.status_code == 200
    assert (body["featureFlags"], body["flags"], body["errorsWhileComputingFlags"]) == (
        {},
        {},
        False,
    )


async def test_posthog_unknown_api_key_is_401_with_detail(client: Client) -> None:
    event = posthog_js_event("phc_unknown")

    response = await post(client, "/e/", orjson.dumps([event]), TEXT)

    body = await json_of(response)
    assert response.status_code == 401
    assert body == {**UNKNOWN_WRITE_KEY, "detail": "no app has that write key"}


# --- Amplitude ----------------------------------------------------------------------------


async def test_amplitude_http_api_is_answered_in_amplitudes_shape_and_queued(
    client: Client, app: App, web_settings: Settings
) -> None:
    await put_plan(client, app.id, requiring("Song Played", "event_properties", "title"))
    good, bad = amplitude_event(event_id=1), amplitude_event(event_id=2, event_properties={})

    upload = amplitude_upload(app.write_key, good, bad)
    response = await post(client, "/2/httpapi", upload, {**JSON, "Origin": ORIGIN})

    body = await json_of(response)
    assert response.status_code == 200
    assert set(body) == {
        "code",
        "events_ingested",
        "payload_size_bytes",
        "server_upload_time",
        "results",
    }
    assert (body["code"], body["events_ingested"]) == (200, 2)
    assert body["payload_size_bytes"] == len(upload)
    assert verdicts(body["results"]) == [
        (good["insert_id"], "Song Played", "valid"),
        (bad["insert_id"], "Song Played", "invalid"),
    ]
    stored = await queued(web_settings, body["results"][1])
    assert stored_row(stored) == (app.id, bad["insert_id"], "Song Played", "invalid")
    assert orjson.loads(stored["payload"]) == bad  # stored as sent: no name added


async def test_amplitude_batch_path_is_answered_by_amplitude(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = amplitude_event()

    response = await post(client, "/batch", amplitude_upload(app.write_key, event), JSON)

    body = await json_of(response)
    assert response.status_code == 200
    assert (body["code"], body["events_ingested"]) == (200, 1)
    assert verdicts(body["results"]) == [(event["insert_id"], "Song Played", "valid")]
    assert (await queued(web_settings, body["results"][0]))["app_id"] == app.id


async def test_amplitude_upload_over_the_native_limit_but_under_a_million_bytes_is_accepted(
    client: Client, app: App, web_settings: Settings
) -> None:
    events = [amplitude_event(event_properties={"blob": "x" * 20_000}) for _ in range(40)]
    upload = amplitude_upload(app.write_key, *events)
    assert web_settings.limits.max_request_bytes < len(upload) < 1_000_000

    response = await post(client, "/2/httpapi", upload, JSON)

    body = await json_of(response)
    assert (response.status_code, body["events_ingested"]) == (200, 40)


async def test_amplitude_too_many_events_is_413_in_amplitudes_shape(
    client: Client, app: App
) -> None:
    events = [{"event_type": "e", "insert_id": f"i-{n}"} for n in range(2001)]

    response = await post(client, "/2/httpapi", amplitude_upload(app.write_key, *events), JSON)

    body = await json_of(response)
    assert response.status_code == 413
    assert (body["code"], body["error_code"]) == (413, "too_many_events")


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_amplitude_unknown_api_key_is_400_invalid_api_key(client: Client, path: str) -> None:
    response = await post(
        client, path, amplitude_upload("amp unknown key", amplitude_event()), JSON
    )

    assert response.status_code == 400
    assert await json_of(response) == {
        "code": 400,
        "error": "Invalid API key: amp unknown key",
        "error_code": "invalid_write_key",
    }


# --- Snowplow -----------------------------------------------------------------------------


async def test_snowplow_browser_tracker_post_is_answered_200_and_queued(
    client: Client, app: App, web_settings: Settings
) -> None:
    await put_plan(client, app.id, SNOWPLOW_PLAN)
    good, bad = checkout(app.id, sku="A-1"), checkout(app.id, price=3)
    page = tracker_payload(aid=app.id, e="pv", url="https://shop.example/", page="Home")

    response = await post(
        client,
        TP2,
        envelope(good, bad, page),
        {**SNOWPLOW_JSON, "Origin": ORIGIN, "SP-Anonymous": "*"},
    )

    body = await success(response)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert verdicts(body["results"]) == [
        (good["eid"], "com.acme/checkout_started", "valid"),
        (bad["eid"], "com.acme/checkout_started", "invalid"),
        (page["eid"], "page_view", "valid"),
    ]
    stored = await queued(web_settings, body["results"][0])
    assert (stored["app_id"], stored["event_id"], stored["status"]) == (
        app.id,
        good["eid"],
        "valid",
    )
    assert orjson.loads(stored["payload"]) == {
        **good,
        "event": "com.acme/checkout_started",
        "schema": CHECKOUT,
        "properties": {"sku": "A-1"},
        "contexts": [{"schema": WEB_PAGE, "data": {"id": "page-1"}}],
        "timestamp": DTM_RFC3339,
    }
    errors = orjson.loads((await queued(web_settings, body["results"][1]))["errors"])
    assert [(e["path"], e["rule"]) for e in errors] == [("/properties/sku", "required")]


async def test_snowplow_aid_may_be_the_write_key_of_an_app_that_requires_it(
    client: Client, make_app: MakeApp, web_settings: Settings
) -> None:
    app = await make_app(require_write_key=True)
    by_key = tracker_payload(aid=app.write_key, e="pv")
    by_id = tracker_payload(aid=app.id, e="pv")

    accepted = await post(client, TP2, envelope(by_key), SNOWPLOW_JSON)
    refused = await post(client, TP2, envelope(by_id), SNOWPLOW_JSON)

    [result] = (await success(accepted))["results"]
    assert (await queued(web_settings, result))["app_id"] == app.id
    await assert_error(refused, 401, "write_key_required")


@pytest.mark.parametrize("by", ["id", "write_key"])
async def test_snowplow_app_in_the_path_selects_the_app(
    client: Client, app: App, web_settings: Settings, by: str
) -> None:
    alias = app.id if by == "id" else app.write_key
    event = tracker_payload(aid="whatever-the-tracker-says", e="se", se_ca="cart", se_ac="add")

    response = await post(client, f"/snowplow/{alias}{TP2}", envelope(event), SNOWPLOW_JSON)

    [result] = (await success(response))["results"]
    assert verdicts([result]) == [(event["eid"], "cart/add", "valid")]
    assert (await queued(web_settings, result))["app_id"] == app.id


async def test_snowplow_mobile_bare_event_is_accepted(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = tracker_payload(aid=app.id, e="pv", p="mob", tv="andr-6.0.0")

    response = await post(client, TP2, orjson.dumps(event), SNOWPLOW_JSON)

    [result] = (await success(response))["results"]
    assert verdicts([result]) == [(event["eid"], "page_view", "valid")]


async def test_snowplow_pixel_get_is_answered_with_a_gif_and_queued(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = checkout(app.id, sku="px-1")

    response = await client.get("/i", query_string=event, headers={"Origin": ORIGIN})

    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert await response.get_data() == PIXEL
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    stored = await queued_by_id(web_settings, event["eid"])
    assert (stored["app_id"], stored["event_name"], stored["status"]) == (
        app.id,
        "com.acme/checkout_started",
        "valid",
    )


async def test_snowplow_session_scoped_pixel_tags_the_event(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = tracker_payload(aid=app.id, e="pv")

    response = await client.get(f"/v1/session/sp-run/snowplow/{app.id}/i", query_string=event)

    assert response.status_code == 200
    stored = await queued_by_id(web_settings, event["eid"])
    assert stored["session"] == "sp-run"


async def test_snowplow_pixel_repeated_parameter_is_read_by_its_first_value(
    client: Client, app: App, web_settings: Settings
) -> None:
    # WireRequest.query is "the first value of each parameter".
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    query = f"e=pv&aid={app.id}&tv=js-3&eid={first}&eid={second}"

    response = await client.get(f"/i?{query}")

    assert response.status_code == 200
    stored = await queued_by_id(web_settings, first)
    assert (stored["app_id"], stored["event_name"]) == (app.id, "page_view")


async def queued_by_id(settings: Settings, event_id: str) -> dict[str, Any]:
    """The queued event with this id, whatever its message (a pixel's answer names none)."""
    async with aioredis.Redis.from_url(settings.redis_url) as redis_client:
        raw = await redis_client.hvals(QUEUE_MESSAGES_KEY)
    found = [
        event
        for message in map(orjson.loads, raw)
        for event in message["args"][0]
        if event["event_id"] == event_id
    ]
    assert len(found) == 1, f"event {event_id} is queued {len(found)} times"
    event: dict[str, Any] = found[0]
    return event


@pytest.mark.parametrize(
    "path", [TP2, f"/snowplow/no-such-app-{uuid.uuid4().hex[:6]}{TP2}"], ids=["aid", "path"]
)
async def test_snowplow_unknown_app_is_403_unknown_app(client: Client, path: str) -> None:
    # The trackers retry a 404 for ever; a 403 they drop.
    event = tracker_payload(aid=f"no-such-app-{uuid.uuid4().hex[:6]}", e="pv")

    response = await post(client, path, envelope(event), SNOWPLOW_JSON)

    await assert_error(response, 403, "unknown_app")


async def test_snowplow_unknown_app_pixel_is_403_unknown_app(client: Client) -> None:
    event = tracker_payload(aid=f"no-such-app-{uuid.uuid4().hex[:6]}", e="pv")

    response = await client.get("/i", query_string=event)

    await assert_error(response, 403, "unknown_app")


async def test_snowplow_invalid_ue_px_is_400_invalid_event(client: Client, app: App) -> None:
    event = tracker_payload(aid=app.id, ue_px="!!!")

    response = await post(client, TP2, envelope(event), SNOWPLOW_JSON)

    await assert_error(response, 400, "invalid_event")


async def test_snowplow_events_of_two_apps_are_400_mixed_apps(
    client: Client, make_app: MakeApp
) -> None:
    one, two = await make_app(), await make_app()
    events = [tracker_payload(aid=one.id, e="pv"), tracker_payload(aid=two.id, e="pv")]

    response = await post(client, TP2, envelope(*events), SNOWPLOW_JSON)

    await assert_error(response, 400, "mixed_apps")


# --- CORS ---------------------------------------------------------------------------------

SDK_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    "Authorization",
    "X-Write-Key",
    "X-LVD-Session",
    "AnonymousId",
    "SentAt",
    "X-Retry-Count",
    "SP-Anonymous",
)
PREFLIGHT_PATHS = [
    ("/api/logs/any-app", "POST"),
    ("/v1/t", "POST"),
    ("/v1/batch", "POST"),
    ("/v1/projects/wk_x/settings", "GET"),
    ("/sourceConfig/", "GET"),
    ("/e/", "POST"),
    ("/i/v0/e/", "POST"),
    ("/batch/", "POST"),
    ("/batch", "POST"),
    ("/flags/", "POST"),
    ("/decide/", "POST"),
    ("/2/httpapi", "POST"),
    (TP2, "POST"),
    (f"/snowplow/any-app{TP2}", "POST"),
    ("/i", "GET"),
    ("/v1/session/s-1/v1/t", "POST"),
    (f"/v1/session/s-1{TP2}", "POST"),
]


# Only Snowplow's tracker sends cookies: its paths name the origin and allow credentials.
CREDENTIALED = {TP2, f"/snowplow/any-app{TP2}", "/i", f"/v1/session/s-1{TP2}"}


@pytest.mark.parametrize(("path", "method"), PREFLIGHT_PATHS)
async def test_cors_preflight_on_every_ingest_path_allows_the_sdks_headers(
    client: Client, path: str, method: str
) -> None:
    response = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ", ".join(h.lower() for h in SDK_HEADERS),
        },
    )

    assert response.status_code == 204
    assert await response.get_data() == b""
    if path in CREDENTIALED:
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Vary"] == "Origin"
    else:
        # No credentials are allowed, so any origin may be answered: a page's cookies (or
        # a person's cached Basic credentials) can never ride along.
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
    methods = [m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")]
    assert method in methods and "OPTIONS" in methods
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {h.lower() for h in SDK_HEADERS} <= allowed
    assert response.headers["Access-Control-Max-Age"] == "600"


async def test_cors_preflight_without_origin_allows_any_origin(client: Client) -> None:
    response = await client.options("/v1/t", headers={"Access-Control-Request-Method": "POST"})

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_cors_preflight_answers_chromes_private_network_question(client: Client) -> None:
    response = await client.options(
        TP2,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"


async def test_cors_answers_without_origin_allow_any_origin(client: Client, app: App) -> None:
    response = await post(
        client, "/2/httpapi", amplitude_upload(app.write_key, amplitude_event()), JSON
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_cors_refusals_carry_the_cors_headers_too(client: Client) -> None:
    response = await post_ajs(
        client,
        "/v1/t",
        ajs_message("track"),
        "wk_nope",
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
    )

    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"


async def test_cors_dashboard_form_still_refuses_a_cross_site_post(
    client: Client, pool: asyncpg.Pool
) -> None:
    app_id = f"csrf-{uuid.uuid4().hex[:12]}"

    response = await client.post(
        "/api/apps",
        json={"id": app_id},
        headers={"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
    )
    form = await client.post(
        "/apps",
        form={"id": app_id},
        headers={"Sec-Fetch-Site": "cross-site", "Accept": "application/json"},
    )

    await assert_error(response, 403, "cross_site_request")
    await assert_error(form, 403, "cross_site_request")
    async with pool.acquire() as conn:
        assert await select_app(conn, app_id) is None


# --- rate limits --------------------------------------------------------------------------


@pytest.fixture
def one_event_per_second(services: Services) -> Iterator[None]:
    original = services.limiter
    services.limiter = RateLimiter(rate=1, burst=1)
    yield
    services.limiter = original


async def test_rate_limit_on_a_segment_path_is_429_with_retry_after(
    client: Client, app: App, one_event_per_second: None
) -> None:
    headers = {"Origin": ORIGIN}

    first = await post_ajs(client, "/v1/t", ajs_message("track"), app.write_key, headers)
    second = await post_ajs(client, "/v1/t", ajs_message("track"), app.write_key, headers)

    assert first.status_code == 200
    body = await json_of(second)
    assert (second.status_code, body["code"], body["error"]["code"]) == (
        429,
        "rate_limited",
        "rate_limited",
    )
    assert second.headers["Retry-After"] == "1"
    assert second.headers["Access-Control-Expose-Headers"] == "Retry-After"


async def test_rate_limit_more_events_than_the_burst_waits_60_seconds(
    client: Client, app: App, one_event_per_second: None
) -> None:
    response = await post(
        client,
        "/2/httpapi",
        amplitude_upload(app.write_key, amplitude_event(), amplitude_event()),
        JSON,
    )

    body = await json_of(response)
    assert (response.status_code, body["code"], body["error_code"]) == (429, 429, "rate_limited")
    assert response.headers["Retry-After"] == "60"


# --- Snowplow Micro -----------------------------------------------------------------------


async def send_and_store(
    client: Client,
    pool: asyncpg.Pool,
    settings: Settings,
    events: list[dict[str, Any]],
    path: str = TP2,
) -> list[dict[str, Any]]:
    """POST tracker events, then store their queued message as the worker would."""
    response = await post(client, path, envelope(*events), SNOWPLOW_JSON)
    results: list[dict[str, Any]] = (await success(response))["results"]
    for task_id in dict.fromkeys(r["task_id"] for r in results):
        message = await queued_message(settings.redis_url, task_id)
        assert message is not None
        await store_events(pool, message["args"][0])
    return results


async def store_native(client: Client, pool: asyncpg.Pool, settings: Settings, app_id: str) -> None:
    response = await client.post(f"/api/logs/{app_id}", json={"eventName": "native_one"})
    result = await json_of(response)
    message = await queued_message(settings.redis_url, result["task_id"])
    assert message is not None
    await store_events(pool, message["args"][0])


async def micro(client: Client, path: str, body: Any = None) -> Any:
    if body is None:
        response = await client.get(path)
    else:
        response = await client.post(path, data=orjson.dumps(body), headers=JSON)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await json_of(response)


@pytest.fixture
async def shop(
    client: Client, make_app: MakeApp, pool: asyncpg.Pool, web_settings: Settings
) -> dict[str, Any]:
    """An app with the Snowplow plan and stored events: two good, one bad, one native."""
    app = await make_app()
    await put_plan(client, app.id, SNOWPLOW_PLAN)
    good = checkout(app.id, sku="A-1")
    page = tracker_payload(aid=app.id, e="pv", url="https://shop.example/", page="Home")
    bad = checkout(app.id, price=3)
    results = await send_and_store(client, pool, web_settings, [good, page, bad])
    await store_native(client, pool, web_settings, app.id)
    return {"app": app, "good": good, "page": page, "bad": bad, "results": results}


async def test_micro_all_counts_the_apps_snowplow_events(
    client: Client, shop: dict[str, Any]
) -> None:
    app = shop["app"]

    by_id = await micro(client, f"/snowplow/{app.id}/micro/all")
    by_key = await micro(client, f"/snowplow/{app.write_key}/micro/all")
    by_post = await micro(client, f"/snowplow/{app.id}/micro/all", {})

    assert by_id == by_key == by_post == {"total": 3, "good": 2, "bad": 1}


async def test_micro_good_lists_events_as_micro_does(client: Client, shop: dict[str, Any]) -> None:
    app, good, page = shop["app"], shop["good"], shop["page"]

    listed = await micro(client, f"/snowplow/{app.id}/micro/good")

    assert [entry["event"]["event_id"] for entry in listed] == [page["eid"], good["eid"]]
    unstruct = listed[1]
    assert (unstruct["eventType"], unstruct["schema"], unstruct["contexts"]) == (
        "unstruct",
        CHECKOUT,
        [WEB_PAGE],
    )
    event = unstruct["event"]
    assert (event["app_id"], event["event"], event["platform"], event["v_tracker"]) == (
        app.id,
        "unstruct",
        "web",
        "js-3.24.0",
    )
    assert (event["event_vendor"], event["event_name"], event["event_format"]) == (
        "com.acme",
        "checkout_started",
        "jsonschema",
    )
    assert event["event_version"] == "1-0-0"
    assert event["unstruct_event"] == {
        "schema": UNSTRUCT,
        "data": {"schema": CHECKOUT, "data": {"sku": "A-1"}},
    }
    assert event["contexts"] == {
        "schema": ENRICHED_CONTEXTS,
        "data": [{"schema": WEB_PAGE, "data": {"id": "page-1"}}],
    }
    assert event["dvce_created_tstamp"] == DTM_RFC3339
    # The tracker's own fields, without the readable view added beside them.
    assert unstruct["rawEvent"]["parameters"] == good
    assert unstruct["rawEvent"]["api"] == {
        "vendor": "com.snowplowanalytics.snowplow",
        "version": "tp2",
    }
    page_view = listed[0]
    assert (page_view["eventType"], page_view["schema"], page_view["contexts"]) == (
        "page_view",
        "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0",
        [],
    )
    assert (page_view["event"]["page_url"], page_view["event"]["page_title"]) == (
        "https://shop.example/",
        "Home",
    )


async def test_micro_good_post_filters_by_schema_event_type_and_limit(
    client: Client, shop: dict[str, Any]
) -> None:
    app, good, page = shop["app"], shop["good"], shop["page"]
    path = f"/snowplow/{app.id}/micro/good"

    def ids(listed: list[dict[str, Any]]) -> list[str]:
        return [entry["event"]["event_id"] for entry in listed]

    assert ids(await micro(client, path, {"schema": CHECKOUT})) == [good["eid"]]
    assert ids(await micro(client, path, {"event_type": "page_view"})) == [page["eid"]]
    assert ids(await micro(client, path, {"limit": 1})) == [page["eid"]]
    assert ids(await micro(client, path, {"contexts": [WEB_PAGE]})) == [good["eid"]]
    assert ids(await micro(client, path, {"schema": "iglu:com.acme/other/jsonschema/1-0-0"})) == []
    assert ids(await micro(client, f"{path}?event_type=unstruct")) == [good["eid"]]


@pytest.mark.parametrize(
    "body", [{"limit": "many"}, {"schema": 3}, {"contexts": [1]}, [1, 2]], ids=str
)
async def test_micro_good_bad_filter_is_400(
    client: Client, shop: dict[str, Any], body: Any
) -> None:
    response = await client.post(
        f"/snowplow/{shop['app'].id}/micro/good", data=orjson.dumps(body), headers=JSON
    )

    await assert_error(response, 400, "invalid_filter")


async def test_micro_bad_lists_invalid_events_with_their_errors(
    client: Client, shop: dict[str, Any]
) -> None:
    app, bad = shop["app"], shop["bad"]
    issues = shop["results"][2]["errors"]

    listed = await micro(client, f"/snowplow/{app.id}/micro/bad")
    path = f"/snowplow/{app.id}/micro/bad"
    by_api = await micro(
        client, path, {"vendor": "com.snowplowanalytics.snowplow", "version": "tp2"}
    )
    other_vendor = await micro(client, path, {"vendor": "com.other"})
    other_version = await micro(client, f"{path}?version=tp1")
    none = await micro(client, path, {"limit": 0})

    assert len(listed) == 1
    assert listed[0]["errors"] == [f"{i['path']}: {i['message']}" for i in issues]
    assert listed[0]["errors"][0].startswith("/properties/sku: ")
    assert listed[0]["rawEvent"]["parameters"] == bad
    assert listed[0]["collectorPayload"] is None
    assert by_api == listed
    assert (other_vendor, other_version, none) == ([], [], [])


async def test_micro_reset_empties_only_that_apps_snowplow_events(
    client: Client,
    shop: dict[str, Any],
    make_app: MakeApp,
    pool: asyncpg.Pool,
    web_settings: Settings,
) -> None:
    app = shop["app"]
    other = await make_app()
    await send_and_store(client, pool, web_settings, [tracker_payload(aid=other.id, e="pv")])

    reset = await client.post(f"/snowplow/{app.write_key}/micro/reset")

    assert reset.status_code == 200
    assert await json_of(reset) == {"total": 0, "good": 0, "bad": 0}
    assert await micro(client, f"/snowplow/{app.id}/micro/all") == {
        "total": 0,
        "good": 0,
        "bad": 0,
    }
    assert await micro(client, f"/snowplow/{other.id}/micro/all") == {
        "total": 1,
        "good": 1,
        "bad": 0,
    }
    async with pool.acquire() as conn:
        names = await conn.fetch("SELECT event_name FROM log_entries WHERE app_id = $1", app.id)
    assert [row["event_name"] for row in names] == ["native_one"]


async def test_micro_at_the_root_covers_every_app(
    client: Client,
    clean_db: None,
    make_app: MakeApp,
    pool: asyncpg.Pool,
    web_settings: Settings,
) -> None:
    one, two = await make_app(), await make_app()
    await send_and_store(client, pool, web_settings, [tracker_payload(aid=one.id, e="pv")])
    await send_and_store(client, pool, web_settings, [tracker_payload(aid=two.id, e="pv")])
    await store_native(client, pool, web_settings, one.id)

    counted = await micro(client, "/micro/all")
    listed = await micro(client, "/micro/good")
    reset = await client.get("/micro/reset")
    after = await micro(client, "/micro/all")

    assert counted == {"total": 2, "good": 2, "bad": 0}
    assert sorted(entry["event"]["app_id"] for entry in listed) == sorted([one.id, two.id])
    assert reset.status_code == 200
    assert after == {"total": 0, "good": 0, "bad": 0}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries") == 1  # the native one


@pytest.mark.parametrize("suffix", ["all", "good", "bad", "reset"])
async def test_micro_unknown_app_is_404(client: Client, suffix: str) -> None:
    response = await client.get(f"/snowplow/no-such-app-{uuid.uuid4().hex[:8]}/micro/{suffix}")

    await assert_error(response, 404, "unknown_app")


@pytest.mark.parametrize(
    ("method", "suffix", "headers"),
    [
        ("GET", "all", {"Origin": "https://evil.example"}),
        ("GET", "good", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", "reset", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", "good", {"Origin": "https://evil.example"}),
    ],
)
async def test_micro_refuses_a_page_of_another_site(
    client: Client, shop: dict[str, Any], method: str, suffix: str, headers: dict[str, str]
) -> None:
    app = shop["app"]

    response = await client.open(
        f"/snowplow/{app.id}/micro/{suffix}", method=method, headers=headers
    )
    root = await client.open(f"/micro/{suffix}", method=method, headers=headers)

    await assert_error(response, 403, "cross_site_request")
    await assert_error(root, 403, "cross_site_request")
    assert await micro(client, f"/snowplow/{app.id}/micro/all") == {
        "total": 3,
        "good": 2,
        "bad": 1,
    }


# --- the directory during a database outage ----------------------------------------------


class _Refused:
    async def __aenter__(self) -> Any:
        raise ConnectionRefusedError("connection refused")

    async def __aexit__(self, *exc: object) -> None:
        return None


class SwitchablePool:
    """The real pool, or, while `down`, a server that refuses every connection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.down = False

    def acquire(self) -> Any:
        return _Refused() if self.down else self._pool.acquire()


@pytest.fixture
def database(pool: asyncpg.Pool) -> SwitchablePool:
    return SwitchablePool(pool)


@pytest.fixture
def directory(database: SwitchablePool) -> AppDirectory:
    # No cache time: every lookup asks the database, so an answer in an outage is the
    # stale view the outage rule serves.
    return AppDirectory(cast(asyncpg.Pool, database), ttl=0.0)


@pytest.fixture
def outage_services(
    services: Services, directory: AppDirectory, monkeypatch: pytest.MonkeyPatch
) -> AppDirectory:
    monkeypatch.setattr(services, "apps", directory)
    return directory


async def test_directory_get_by_key_serves_the_cached_view_in_an_outage(
    app: App, database: SwitchablePool, directory: AppDirectory
) -> None:
    seen = await directory.get_by_key(app.write_key)

    database.down = True
    during = await directory.get_by_key(app.write_key)

    assert seen is not None and seen.app.id == app.id
    assert during is seen


async def test_directory_get_by_key_never_seen_in_an_outage_is_503(
    app: App, database: SwitchablePool, directory: AppDirectory
) -> None:
    database.down = True
    with pytest.raises(Rejected) as caught:
        await directory.get_by_key(app.write_key)

    error = caught.value
    assert (error.status, error.code, error.headers) == (
        503,
        "database_unavailable",
        {"Retry-After": "2"},
    )


async def test_directory_get_by_key_past_the_stale_limit_is_503(
    app: App,
    database: SwitchablePool,
    directory: AppDirectory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await directory.get_by_key(app.write_key) is not None
    monkeypatch.setattr(directory_module, "STALE_LIMIT_SECONDS", 0.0)

    database.down = True
    with pytest.raises(Rejected) as caught:
        await directory.get_by_key(app.write_key)

    assert (caught.value.status, caught.value.code) == (503, "database_unavailable")


async def test_directory_get_by_key_unknown_key_is_none(app: App, directory: AppDirectory) -> None:
    assert await directory.get_by_key(app.write_key + "x") is None
    assert await directory.get_by_key(app.id) is None  # an id is no key


async def test_outage_known_write_key_keeps_ingesting_on_every_format(
    client: Client,
    app: App,
    database: SwitchablePool,
    outage_services: AppDirectory,
) -> None:
    segment = ajs_body(ajs_message("track"), app.write_key)
    posthog = orjson.dumps([posthog_js_event(app.write_key)])
    amplitude = amplitude_upload(app.write_key, amplitude_event())
    assert (await post(client, "/v1/t", segment, TEXT)).status_code == 200

    database.down = True
    answers = [
        await post(client, "/v1/t", segment, TEXT),
        await post(client, "/e/", posthog, TEXT),
        await post(client, "/2/httpapi", amplitude, JSON),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]


async def test_outage_never_seen_write_key_is_503_database_unavailable(
    client: Client, app: App, database: SwitchablePool, outage_services: AppDirectory
) -> None:
    database.down = True
    response = await post(client, "/v1/t", ajs_body(ajs_message("track"), app.write_key), TEXT)

    body = await json_of(response)
    assert (response.status_code, body["code"]) == (503, "database_unavailable")
    assert response.headers["Retry-After"] == "2"


async def test_outage_snowplow_aid_that_is_a_known_write_key_keeps_ingesting(
    client: Client, app: App, database: SwitchablePool, outage_services: AppDirectory
) -> None:
    first = tracker_payload(aid=app.write_key, e="pv")
    assert (await post(client, TP2, envelope(first), SNOWPLOW_JSON)).status_code == 200

    database.down = True
    response = await post(
        client, TP2, envelope(tracker_payload(aid=app.write_key, e="pv")), SNOWPLOW_JSON
    )

    assert response.status_code == 200, await response.get_data(as_text=True)


async def test_outage_snowplow_path_that_is_a_known_write_key_keeps_ingesting(
    client: Client, make_app: MakeApp, database: SwitchablePool, outage_services: AppDirectory
) -> None:
    app = await make_app(require_write_key=True)
    path = f"/snowplow/{app.write_key}{TP2}"
    assert (
        await post(client, path, envelope(tracker_payload(e="pv")), SNOWPLOW_JSON)
    ).status_code == 200

    database.down = True
    response = await post(client, path, envelope(tracker_payload(e="pv")), SNOWPLOW_JSON)

    assert response.status_code == 200, await response.get_data(as_text=True)


async def test_directory_get_by_id_or_key_finds_a_known_app_by_either_in_an_outage(
    make_app: MakeApp, database: SwitchablePool, directory: AppDirectory
) -> None:
    app, unseen = await make_app(), await make_app()
    by_id = await directory.get_by_id_or_key(app.id)
    by_key = await directory.get_by_id_or_key(app.write_key)

    database.down = True
    during = [
        await directory.get_by_id_or_key(app.id),
        await directory.get_by_id_or_key(app.write_key),
    ]
    with pytest.raises(Rejected) as caught:
        await directory.get_by_id_or_key(unseen.write_key)

    assert by_id is not None and by_key is not None
    assert (by_id.app.id, by_key.app.id) == (app.id, app.id)
    assert [view.app.id if view else None for view in during] == [app.id, app.id]
    assert (caught.value.status, caught.value.code) == (503, "database_unavailable")


async def test_directory_get_by_id_or_key_unknown_alias_is_none(
    directory: AppDirectory,
) -> None:
    assert await directory.get_by_id_or_key(f"nobody-{uuid.uuid4().hex[:8]}") is None


async def test_outage_snowplow_aid_that_is_a_known_app_id_keeps_ingesting(
    client: Client, app: App, database: SwitchablePool, outage_services: AppDirectory
) -> None:
    assert (
        await post(client, TP2, envelope(tracker_payload(aid=app.id, e="pv")), SNOWPLOW_JSON)
    ).status_code == 200

    database.down = True
    response = await post(client, TP2, envelope(tracker_payload(aid=app.id, e="pv")), SNOWPLOW_JSON)

    assert response.status_code == 200, await response.get_data(as_text=True)
