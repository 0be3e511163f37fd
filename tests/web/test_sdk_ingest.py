"""SDK ingest: Segment/Rudder /v1/* and PostHog /batch/ as the real clients send them."""

from __future__ import annotations

import base64
import gzip
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.web.conftest import MakeApp
from tests.web.support import json_of, queued_event
from web.core.ingest.formats.segment import SEGMENT_CALLS, named_by_type
from web.core.queries.apps import select_app_by_write_key
from web.core.queries.base import App
from web.core.settings import Limits, Settings

LIMITS = Limits()
RESULT_KEYS = {"event_id", "event_name", "status", "errors", "task_id", "message"}


def basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def segment_message(kind: str = "track", **fields: Any) -> dict[str, Any]:
    """A message as segment-analytics-python builds it."""
    message: dict[str, Any] = {
        "type": kind,
        "messageId": f"msg-{uuid.uuid4().hex}",
        "timestamp": "2025-12-10T15:45:00.000+00:00",
        "userId": "user-1",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "integrations": {},
    }
    if kind == "track":
        message.update(event="Order Completed", properties={"total": 12.5})
    if kind == "identify":
        message["traits"] = {"email": "a@example.com"}
    return {**message, **fields}


def posthog_event(**fields: Any) -> dict[str, Any]:
    return {
        "event": "signed_up",
        "distinct_id": "user-1",
        "properties": {"$lib": "posthog-python", "plan": "pro"},
        "timestamp": "2025-12-10T15:45:00.123456+00:00",
        "uuid": str(uuid.uuid4()),
        **fields,
    }


async def post_json(
    client: Client, path: str, body: Any, headers: dict[str, str] | None = None
) -> WerkzeugResponse:
    return await client.post(
        path,
        data=orjson.dumps(body),
        headers=headers or {"Content-Type": "application/json"},
    )


async def sdk_error(response: WerkzeugResponse, status: int, code: str) -> dict[str, Any]:
    """The standard error shape, with code and message mirrored where the SDKs read them."""
    body: dict[str, Any] = await json_of(response)
    assert response.status_code == status, body
    assert body["error"]["code"] == code
    assert body["code"] == code
    assert body["message"] == body["error"]["message"]
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


async def accepted(response: WerkzeugResponse) -> list[dict[str, Any]]:
    body = await json_of(response)
    assert response.status_code == 200, body
    assert body["success"] is True
    results: list[dict[str, Any]] = body["results"]
    assert all(set(result) == RESULT_KEYS for result in results)
    return results


# --- Segment / Rudder ---------------------------------------------------------------------


async def test_segment_batch_answers_200_with_a_verdict_per_message(
    client: Client, app: App, web_settings: Settings
) -> None:
    track, identify = segment_message("track"), segment_message("identify")

    response = await post_json(
        client, "/v1/batch", {"batch": [track, identify], "sentAt": "x"}, basic(app.write_key)
    )

    results = await accepted(response)
    assert [(r["event_id"], r["event_name"], r["status"]) for r in results] == [
        (track["messageId"], "Order Completed", "valid"),
        (identify["messageId"], "identify", "valid"),
    ]
    queued = await queued_event(
        web_settings.redis_url, results[1]["task_id"], results[1]["event_id"]
    )
    assert queued["app_id"] == app.id
    assert queued["event_name"] == "identify"
    assert orjson.loads(queued["payload"]) == identify  # stored as sent, no name added


async def test_segment_write_key_in_body_selects_the_app(
    client: Client, make_app: MakeApp, web_settings: Settings
) -> None:
    await make_app()
    app = await make_app()
    message = segment_message()

    response = await post_json(client, "/v1/batch", {"batch": [message], "writeKey": app.write_key})

    [result] = await accepted(response)
    queued = await queued_event(web_settings.redis_url, result["task_id"], message["messageId"])
    assert queued["app_id"] == app.id


@pytest.mark.parametrize("call", SEGMENT_CALLS)
async def test_segment_single_call_is_named_by_its_path_and_stored_without_write_key(
    client: Client, app: App, web_settings: Settings, call: str
) -> None:
    message = segment_message(call)
    del message["type"]  # the path says what it is

    response = await post_json(client, f"/v1/{call}", {**message, "writeKey": app.write_key})

    [result] = await accepted(response)
    expected_name = "Order Completed" if call == "track" else call
    assert (result["event_name"], result["status"]) == (expected_name, "valid")
    assert result["event_id"] == message["messageId"]
    queued = await queued_event(web_settings.redis_url, result["task_id"], result["event_id"])
    assert orjson.loads(queued["payload"]) == message


async def test_segment_calls_are_judged_by_the_plan_under_their_names(
    client: Client, app: App
) -> None:
    plan = {
        "events": {
            "identify": {
                "type": "object",
                "required": ["traits"],
                "properties": {"traits": {"type": "object", "required": ["email"]}},
            },
            "Order Completed": {
                "type": "object",
                "properties": {"properties": {"required": ["total"]}},
            },
        }
    }
    assert (await client.put(f"/api/apps/{app.id}/plan", json=plan)).status_code == 200
    batch = [
        segment_message("identify"),
        segment_message("identify", traits={"name": "no email"}),
        segment_message("track", properties={}),
        segment_message("page", name="Home"),
    ]

    results = await accepted(
        await post_json(client, "/v1/batch", {"batch": batch}, basic(app.write_key))
    )

    assert [(r["event_name"], r["status"]) for r in results] == [
        ("identify", "valid"),
        ("identify", "invalid"),
        ("Order Completed", "invalid"),
        ("page", "invalid"),
    ]
    assert [(e["path"], e["rule"]) for e in results[1]["errors"]] == [("/traits/email", "required")]
    assert [e["rule"] for e in results[3]["errors"]] == ["unplanned_event"]


async def test_segment_gzip_body_is_accepted(
    client: Client, app: App, web_settings: Settings
) -> None:
    message = segment_message()
    headers = {**basic(app.write_key), "Content-Encoding": "gzip"}

    response = await client.post(
        "/v1/batch", data=gzip.compress(orjson.dumps({"batch": [message]})), headers=headers
    )

    [result] = await accepted(response)
    queued = await queued_event(web_settings.redis_url, result["task_id"], message["messageId"])
    assert orjson.loads(queued["payload"]) == message


async def test_segment_retry_keeps_the_message_id(client: Client, app: App) -> None:
    message = segment_message()

    first = await accepted(
        await post_json(client, "/v1/batch", {"batch": [message]}, basic(app.write_key))
    )
    again = await accepted(
        await post_json(client, "/v1/batch", {"batch": [message]}, basic(app.write_key))
    )

    assert first[0]["event_id"] == again[0]["event_id"] == message["messageId"]


async def test_sdk_session_scoped_host_tags_the_events(
    client: Client, app: App, web_settings: Settings
) -> None:
    message, captured = segment_message(), posthog_event()

    segment = await post_json(
        client, "/v1/session/ci-job-7/v1/batch", {"batch": [message]}, basic(app.write_key)
    )
    posthog = await post_json(
        client, "/v1/session/ci-job-7/batch/", {"api_key": app.write_key, "batch": [captured]}
    )

    for response, event_id in ((segment, message["messageId"]), (posthog, captured["uuid"])):
        [result] = await accepted(response)
        queued = await queued_event(web_settings.redis_url, result["task_id"], event_id)
        assert queued["session"] == "ci-job-7"


async def test_sdk_session_header_tags_the_events(
    client: Client, app: App, web_settings: Settings
) -> None:
    message = segment_message()

    response = await post_json(
        client,
        "/v1/track",
        message,
        {**basic(app.write_key), "X-LVD-Session": "header-session"},
    )

    [result] = await accepted(response)
    queued = await queued_event(web_settings.redis_url, result["task_id"], message["messageId"])
    assert queued["session"] == "header-session"


async def test_sdk_session_over_100_characters_is_refused(client: Client, app: App) -> None:
    response = await post_json(
        client,
        f"/v1/session/{'s' * 101}/v1/batch",
        {"batch": [segment_message()]},
        basic(app.write_key),
    )

    await sdk_error(response, 400, "invalid_session")


async def test_segment_without_write_key_is_401_write_key_required(client: Client) -> None:
    response = await post_json(client, "/v1/batch", {"batch": [segment_message()]})

    await sdk_error(response, 401, "write_key_required")


@pytest.mark.parametrize(
    "headers",
    [
        basic("wk_not-a-key"),
        {"Authorization": "Basic !!!not base64", "Content-Type": "application/json"},
    ],
)
async def test_segment_bad_write_key_is_401_in_the_shape_sdks_read(
    client: Client, headers: dict[str, str]
) -> None:
    response = await post_json(client, "/v1/batch", {"batch": [segment_message()]}, headers)

    await sdk_error(response, 401, "invalid_write_key")


async def test_segment_batch_that_is_not_a_list_is_400_invalid_batch(
    client: Client, app: App
) -> None:
    response = await post_json(
        client, "/v1/batch", {"batch": {"type": "track"}}, basic(app.write_key)
    )

    await sdk_error(response, 400, "invalid_batch")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"batch": []}, "empty_batch"),
        ({"batch": ["track"]}, "invalid_event"),
        ({"batch": [{"type": "track", "messageId": "m" * 101}]}, "invalid_event_id"),
        ([{"type": "track"}], "invalid_top_level"),
    ],
)
async def test_segment_bad_batch_is_400_with_its_code(
    client: Client, app: App, body: Any, code: str
) -> None:
    response = await post_json(client, "/v1/batch", body, basic(app.write_key))

    await sdk_error(response, 400, code)


async def test_segment_too_many_messages_is_413_too_many_events(client: Client, app: App) -> None:
    batch = [{"type": "track", "event": "e"}] * (LIMITS.max_events_per_request + 1)

    response = await post_json(client, "/v1/batch", {"batch": batch}, basic(app.write_key))

    await sdk_error(response, 413, "too_many_events")


async def test_segment_message_over_event_limit_is_413_event_too_large(
    client: Client, app: App
) -> None:
    big = segment_message(properties={"blob": "x" * LIMITS.max_event_bytes})

    response = await post_json(client, "/v1/batch", {"batch": [big]}, basic(app.write_key))

    await sdk_error(response, 413, "event_too_large")


async def test_segment_body_over_request_limit_is_413_request_too_large(
    client: Client, app: App
) -> None:
    batch = [segment_message(properties={"blob": "x" * 30_000}) for _ in range(20)]

    response = await post_json(client, "/v1/batch", {"batch": batch}, basic(app.write_key))

    await sdk_error(response, 413, "request_too_large")


async def test_segment_gzip_bomb_is_413_request_too_large(client: Client, app: App) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (LIMITS.max_request_bytes + 10) + b"]}")
    headers = {**basic(app.write_key), "Content-Encoding": "gzip"}

    response = await client.post("/v1/batch", data=bomb, headers=headers)

    await sdk_error(response, 413, "request_too_large")


async def test_segment_wrong_content_type_is_415(client: Client, app: App) -> None:
    headers = {**basic(app.write_key), "Content-Type": "application/x-www-form-urlencoded"}

    response = await client.post("/v1/batch", data=b"batch=1", headers=headers)

    await sdk_error(response, 415, "unsupported_media_type")


async def test_segment_invalid_json_is_400_invalid_json(client: Client, app: App) -> None:
    response = await client.post("/v1/batch", data=b'{"batch": [', headers=basic(app.write_key))

    await sdk_error(response, 400, "invalid_json")


async def test_sdk_paths_answer_cross_origin_posts(client: Client, app: App) -> None:
    headers = {**basic(app.write_key), "Origin": "https://shop.example"}

    response = await post_json(client, "/v1/track", segment_message(), headers)

    await accepted(response)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# --- PostHog ------------------------------------------------------------------------------


async def test_posthog_batch_answers_200_and_uuid_is_the_event_id(
    client: Client, app: App, web_settings: Settings
) -> None:
    events = [posthog_event(), posthog_event(event="$pageview")]

    response = await post_json(
        client, "/batch/", {"api_key": app.write_key, "batch": events, "sent_at": "x"}
    )

    results = await accepted(response)
    assert [(r["event_id"], r["event_name"]) for r in results] == [
        (events[0]["uuid"], "signed_up"),
        (events[1]["uuid"], "$pageview"),
    ]
    queued = await queued_event(web_settings.redis_url, results[0]["task_id"], events[0]["uuid"])
    assert queued["app_id"] == app.id
    assert orjson.loads(queued["payload"]) == events[0]


async def test_posthog_single_event_body_is_accepted_without_its_key(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = posthog_event()

    response = await post_json(client, "/batch/", {**event, "api_key": app.write_key})

    [result] = await accepted(response)
    queued = await queued_event(web_settings.redis_url, result["task_id"], event["uuid"])
    assert orjson.loads(queued["payload"]) == event


async def test_posthog_bad_api_key_is_401_with_detail(client: Client) -> None:
    response = await post_json(
        client, "/batch/", {"api_key": "phc_nope", "batch": [posthog_event()]}
    )

    body = await sdk_error(response, 401, "invalid_write_key")
    assert body["detail"] == body["message"]


async def test_posthog_batch_not_a_list_is_400(client: Client, app: App) -> None:
    response = await post_json(client, "/batch/", {"api_key": app.write_key, "batch": "nope"})

    await sdk_error(response, 400, "invalid_batch")


# --- naming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "default_type", "name"),
    [
        ({"type": "identify"}, None, "identify"),
        ({"type": "page", "name": "Home"}, None, "page"),
        ({}, "screen", "screen"),
        ({"type": "group"}, "alias", "group"),
        ({"type": "track", "event": "Clicked"}, None, "Clicked"),
        ({"type": "identify", "event": "own"}, None, "own"),
        ({"type": "identify", "eventName": "own"}, None, "own"),
        ({"type": "track"}, None, None),
        ({"type": 3}, None, None),
        ({"type": " "}, None, None),
    ],
)
def test_named_by_type_names_calls_without_a_name(
    event: dict[str, Any], default_type: str | None, name: str | None
) -> None:
    sent = dict(event)

    judged = named_by_type(event, default_type)

    assert judged.get("eventName", judged.get("event")) == name
    assert event == sent  # what is stored stays as it was sent


async def test_select_app_by_write_key_finds_only_its_app(app: App, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        found = await select_app_by_write_key(conn, app.write_key)
        missing = await select_app_by_write_key(conn, app.write_key + "x")

    assert found is not None and found.id == app.id
    assert missing is None
