"""POST /api/logs/<app_id>: verdicts, the queued message, bad input, write keys, Redis down."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from werkzeug.wrappers import Response as WerkzeugResponse

from tests.conftest import free_port
from tests.web.conftest import MakeApp
from tests.web.support import (
    assert_error,
    json_of,
    queued_copies,
    queued_event,
    queued_message,
)
from web.app import create_app
from web.core.queries.base import App
from web.core.settings import Limits, Settings

LIMITS = Limits()
QUICK_START = {"eventName": "user_login", "userId": 123, "timestamp": "2025-12-10T15:45:00Z"}
RESULT_KEYS = {"event_id", "event_name", "status", "errors", "task_id", "message"}
JSON = {"Content-Type": "application/json"}


async def post_raw(
    client: Client, app_id: str, body: bytes, headers: dict[str, str] | None = None
) -> WerkzeugResponse:
    return await client.post(
        f"/api/logs/{app_id}", data=body, headers=JSON if headers is None else headers
    )


# --- the happy path ---------------------------------------------------------------------


async def test_ingest_quick_start_event_answers_202_with_verdict(client: Client, app: App) -> None:
    response = await client.post(f"/api/logs/{app.id}", json=QUICK_START)

    assert response.status_code == 202
    body = await json_of(response)
    assert set(body) == RESULT_KEYS
    assert body["event_name"] == "user_login"
    assert body["status"] == "valid"
    assert body["errors"] == []
    assert body["message"] == "Event queued for processing"
    assert isinstance(body["task_id"], str)
    assert body["task_id"]


async def test_ingest_event_without_id_gets_server_uuid(client: Client, app: App) -> None:
    first = await json_of(await client.post(f"/api/logs/{app.id}", json=QUICK_START))
    second = await json_of(await client.post(f"/api/logs/{app.id}", json=QUICK_START))

    assert uuid.UUID(first["event_id"]).version == 4
    assert str(uuid.UUID(first["event_id"])) == first["event_id"]
    assert first["event_id"] != second["event_id"]


@pytest.mark.parametrize("key", ["event_id", "messageId", "uuid"])
async def test_ingest_client_event_id_is_echoed(client: Client, app: App, key: str) -> None:
    client_id = f"client-{key}-{uuid.uuid4().hex}"

    response = await client.post(f"/api/logs/{app.id}", json={**QUICK_START, key: client_id})

    assert response.status_code == 202
    assert (await json_of(response))["event_id"] == client_id


async def test_ingest_integer_client_id_is_echoed_as_text(client: Client, app: App) -> None:
    response = await client.post(f"/api/logs/{app.id}", json={**QUICK_START, "event_id": 4217})

    assert response.status_code == 202
    assert (await json_of(response))["event_id"] == "4217"


async def test_ingest_invalid_event_is_accepted_with_errors(client: Client, app: App) -> None:
    response = await client.post(
        f"/api/logs/{app.id}", json={"userId": 1, "timestamp": "yesterday afternoon"}
    )

    assert response.status_code == 202
    body = await json_of(response)
    assert set(body) == RESULT_KEYS
    assert body["status"] == "invalid"
    assert body["event_name"] is None
    assert body["message"] == "Event queued for processing"
    assert [(e["path"], e["rule"], e["severity"]) for e in body["errors"]] == [
        ("/eventName", "required", "error"),
        ("/timestamp", "format", "error"),
    ]
    for issue in body["errors"]:
        assert {"path", "rule", "message", "severity"} <= set(issue)
        assert isinstance(issue["message"], str)
    assert "eventName" in body["errors"][0]["message"]
    assert "yesterday afternoon" in body["errors"][1]["message"]


@pytest.mark.parametrize(
    "timestamp",
    [
        "yesterday",
        "",
        "2025-13-01T00:00:00Z",
        "2025-02-30T10:00:00Z",
        "2025-12-10 15:45:00",
        1702222222,
        None,
        True,
        ["2025-12-10T15:45:00Z"],
    ],
)
async def test_ingest_timestamp_not_a_date_is_invalid_not_refused(
    client: Client, app: App, timestamp: Any
) -> None:
    response = await client.post(
        f"/api/logs/{app.id}", json={"eventName": "page_view", "timestamp": timestamp}
    )

    assert response.status_code == 202
    body = await json_of(response)
    assert body["status"] == "invalid"
    assert [(e["path"], e["rule"]) for e in body["errors"]] == [("/timestamp", "format")]


async def test_ingest_batch_answers_one_result_per_event_with_one_task(
    client: Client, app: App
) -> None:
    batch = [
        {"eventName": "a", "event_id": "batch-1"},
        {"event": "b", "timestamp": "not a date", "messageId": "batch-2"},
        {"event_name": "c"},
    ]

    response = await client.post(f"/api/logs/{app.id}", json=batch)

    assert response.status_code == 202
    body = await json_of(response)
    assert list(body) == ["results"]
    results = body["results"]
    assert [(r["event_name"], r["status"]) for r in results] == [
        ("a", "valid"),
        ("b", "invalid"),
        ("c", "valid"),
    ]
    assert [r["event_id"] for r in results[:2]] == ["batch-1", "batch-2"]
    assert uuid.UUID(results[2]["event_id"]).version == 4
    assert all(set(r) == RESULT_KEYS for r in results)
    assert len({r["task_id"] for r in results}) == 1


async def test_ingest_queues_the_event_in_redis(
    client: Client, app: App, web_settings: Settings
) -> None:
    event = {**QUICK_START, "event_id": f"queued-{uuid.uuid4().hex}", "properties": {"x": [1]}}

    body = await json_of(await client.post(f"/api/logs/{app.id}", json=event))

    queued = await queued_event(web_settings.redis_url, body["task_id"], event["event_id"])
    assert queued["app_id"] == app.id
    assert queued["event_name"] == "user_login"
    assert queued["status"] == "valid"
    assert orjson.loads(queued["payload"]) == event
    assert orjson.loads(queued["errors"]) == []
    assert queued["session"] is None
    assert queued["received_at"].endswith("+00:00")


async def test_ingest_queues_invalid_event_with_its_errors(
    client: Client, app: App, web_settings: Settings
) -> None:
    body = await json_of(await client.post(f"/api/logs/{app.id}", json={"timestamp": 5}))

    queued = await queued_event(web_settings.redis_url, body["task_id"], body["event_id"])
    assert queued["status"] == "invalid"
    assert queued["event_name"] is None
    assert orjson.loads(queued["errors"]) == body["errors"]


async def test_ingest_batch_is_one_message_holding_every_event(
    client: Client, app: App, web_settings: Settings
) -> None:
    batch = [{"eventName": f"e{i}", "event_id": f"{app.id}-{i}"} for i in range(5)]

    body = await json_of(await client.post(f"/api/logs/{app.id}", json=batch))

    message = await queued_message(web_settings.redis_url, body["results"][0]["task_id"])
    assert message is not None
    mine = [e["event_id"] for e in message["args"][0] if e["app_id"] == app.id]
    assert mine == [f"{app.id}-{i}" for i in range(5)]


async def test_ingest_unknown_app_answers_404(client: Client, clean_db: None) -> None:
    response = await client.post("/api/logs/no-such-app", json=QUICK_START)

    await assert_error(response, 404, "unknown_app")


async def test_ingest_put_is_not_allowed(client: Client, app: App) -> None:
    # GET is the query API (issue 7); PUT means nothing here.
    response = await client.put(f"/api/logs/{app.id}", json={"eventName": "x"})

    await assert_error(response, 405, "method_not_allowed")


# --- bad input --------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("truncated", b'{"eventName": "user_login"', 400, "invalid_json"),
    ("truncated-array", b'[{"eventName": "a"}, {"even', 400, "invalid_json"),
    ("trailing-garbage", b'{"eventName": "a"} trailing', 400, "invalid_json"),
    ("two-documents", b'{"eventName": "a"}{"eventName": "b"}', 400, "invalid_json"),
    ("empty", b"", 400, "empty_body"),
    ("whitespace", b" \n\t ", 400, "empty_body"),
    ("invalid-utf8", b'{"eventName": "caf\xe9"}', 400, "invalid_utf8"),
    ("encoded-surrogate", b'{"eventName": "\xed\xa0\x80"}', 400, "invalid_utf8"),
    ("nested-arrays", b"[" * 50_000 + b"]" * 50_000, 400, "too_deep"),
    ("nested-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, "too_deep"),
    (
        "just-over-depth",
        b'{"eventName": "a", "p": ' + b"[" * 64 + b"]" * 64 + b"}",
        400,
        "too_deep",
    ),
    ("nan", b'{"eventName": "a", "value": NaN}', 400, "invalid_number"),
    ("infinity", b'{"eventName": "a", "value": Infinity}', 400, "invalid_number"),
    ("minus-infinity", b'{"eventName": "a", "value": -Infinity}', 400, "invalid_number"),
    ("overflowing-float", b'{"eventName": "a", "value": 1e400}', 400, "invalid_number"),
    ("huge-integer", b'{"eventName": "a", "value": 1' + b"0" * 400 + b"}", 400, "invalid_number"),
    ("nul-in-value", b'{"eventName": "a\\u0000b"}', 400, "null_character"),
    ("nul-in-key", b'{"eventName": "a", "k\\u0000": 1}', 400, "null_character"),
    ("nul-deep", b'{"eventName": "a", "p": [{"q": ["\\u0000"]}]}', 400, "null_character"),
    ("lone-high-surrogate", b'{"eventName": "\\ud800"}', 400, "invalid_utf8"),
    ("lone-low-surrogate", b'{"eventName": "\\udc00"}', 400, "invalid_utf8"),
    ("top-level-string", b'"user_login"', 400, "invalid_top_level"),
    ("top-level-number", b"42", 400, "invalid_top_level"),
    ("top-level-null", b"null", 400, "invalid_top_level"),
    ("top-level-true", b"true", 400, "invalid_top_level"),
    ("empty-batch", b"[]", 400, "empty_batch"),
    ("batch-of-strings", b'["a", "b"]', 400, "invalid_event"),
    ("batch-with-null", b'[{"eventName": "a"}, null]', 400, "invalid_event"),
    ("event-id-object", b'{"eventName": "a", "event_id": {"x": 1}}', 400, "invalid_event_id"),
    ("event-id-boolean", b'{"eventName": "a", "messageId": true}', 400, "invalid_event_id"),
    ("event-id-empty", b'{"eventName": "a", "uuid": "  "}', 400, "invalid_event_id"),
    (
        "event-id-101",
        b'{"eventName": "a", "event_id": "' + b"x" * 101 + b'"}',
        400,
        "invalid_event_id",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [pytest.param(body, status, code, id=name) for name, body, status, code in BAD_BODIES],
)
async def test_ingest_bad_body_is_refused_with_json_error(
    client: Client,
    app: App,
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = await post_raw(client, app.id, body)

    await assert_error(response, status, code)


async def test_ingest_event_id_of_100_chars_is_accepted(client: Client, app: App) -> None:
    event_id = "x" * LIMITS.max_event_id_length

    response = await client.post(f"/api/logs/{app.id}", json={"eventName": "a", "uuid": event_id})

    assert response.status_code == 202
    assert (await json_of(response))["event_id"] == event_id


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/html", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/xml", 415),
        ("application/json; charset=utf-8", 202),
        ("text/plain", 202),
        ("application/vnd.api+json", 202),
        ("APPLICATION/JSON", 202),
    ],
)
async def test_ingest_content_type_is_checked(
    client: Client, app: App, content_type: str | None, status: int
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = await post_raw(client, app.id, orjson.dumps(QUICK_START), headers)

    if status == 415:
        await assert_error(response, 415, "unsupported_media_type")
    else:
        assert response.status_code == 202
        assert (await json_of(response))["status"] == "valid"


async def test_ingest_oversized_event_in_batch_answers_413(client: Client, app: App) -> None:
    big = {"eventName": "big", "blob": "x" * (LIMITS.max_event_bytes + 1)}

    response = await client.post(f"/api/logs/{app.id}", json=[{"eventName": "small"}, big])

    error = await assert_error(response, 413, "event_too_large")
    assert "event 1" in error["message"]


async def test_ingest_event_just_under_limit_is_accepted(client: Client, app: App) -> None:
    overhead = len(orjson.dumps({"eventName": "big", "blob": ""}))
    event = {"eventName": "big", "blob": "x" * (LIMITS.max_event_bytes - overhead)}
    assert len(orjson.dumps(event)) == LIMITS.max_event_bytes

    response = await client.post(f"/api/logs/{app.id}", json=event)

    assert response.status_code == 202


async def test_ingest_too_many_events_answers_413(client: Client, app: App) -> None:
    batch = [{"eventName": "e"}] * (LIMITS.max_events_per_request + 1)

    response = await client.post(f"/api/logs/{app.id}", json=batch)

    await assert_error(response, 413, "too_many_events")


async def test_ingest_max_events_per_request_is_accepted(client: Client, app: App) -> None:
    batch = [{"eventName": "e"}] * LIMITS.max_events_per_request

    response = await client.post(f"/api/logs/{app.id}", json=batch)

    assert response.status_code == 202
    assert len((await json_of(response))["results"]) == LIMITS.max_events_per_request


def _oversized_body() -> bytes:
    # Small events, so only the request limit can be what refuses it.
    events = [{"eventName": "e", "pad": "x" * 1000}] * 520
    body = orjson.dumps(events)
    assert len(body) > LIMITS.max_request_bytes
    return body


async def test_ingest_body_over_limit_with_content_length_answers_413(
    client: Client, app: App
) -> None:
    response = await post_raw(client, app.id, _oversized_body())

    await assert_error(response, 413, "request_too_large")


async def test_ingest_streamed_body_over_limit_without_content_length_answers_413(
    client: Client, app: App
) -> None:
    body = _oversized_body()
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}

    async with client.request(f"/api/logs/{app.id}", method="POST", headers=headers) as conn:
        for start in range(0, len(body), 16_384):
            await conn.send(body[start : start + 16_384])
        await conn.send_complete()
    response = await conn.as_response()

    assert "Content-Length" not in headers
    await assert_error(response, 413, "request_too_large")


async def test_ingest_streamed_body_under_limit_is_accepted(client: Client, app: App) -> None:
    body = orjson.dumps([{"eventName": "chunked", "i": i} for i in range(50)])

    async with client.request(f"/api/logs/{app.id}", method="POST", headers=JSON) as conn:
        for start in range(0, len(body), 100):
            await conn.send(body[start : start + 100])
        await conn.send_complete()
    response = await conn.as_response()

    assert response.status_code == 202
    assert len((await json_of(response))["results"]) == 50


async def test_ingest_gzip_body_is_accepted(client: Client, app: App) -> None:
    headers = {**JSON, "Content-Encoding": "gzip"}

    response = await post_raw(
        client, app.id, gzip.compress(orjson.dumps([QUICK_START, QUICK_START])), headers
    )

    assert response.status_code == 202
    results = (await json_of(response))["results"]
    assert [r["event_name"] for r in results] == ["user_login", "user_login"]


async def test_ingest_gzip_bomb_answers_413(client: Client, app: App) -> None:
    # 50 MB of JSON whitespace that compresses to ~50 KB: well under the wire limit.
    bomb = gzip.compress(b'{"eventName": "a", "p": "' + b" " * 50_000_000 + b'"}')
    assert len(bomb) < LIMITS.max_request_bytes

    response = await post_raw(client, app.id, bomb, {**JSON, "Content-Encoding": "gzip"})

    await assert_error(response, 413, "request_too_large")


async def test_ingest_corrupt_gzip_answers_400(client: Client, app: App) -> None:
    response = await post_raw(
        client, app.id, b"not gzip at all", {**JSON, "Content-Encoding": "gzip"}
    )

    await assert_error(response, 400, "invalid_encoding")


async def test_ingest_unknown_content_encoding_answers_415(client: Client, app: App) -> None:
    response = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "Content-Encoding": "br"}
    )

    await assert_error(response, 415, "unsupported_encoding")


async def test_ingest_replayed_request_answers_the_same_event_id(
    client: Client, app: App, web_settings: Settings
) -> None:
    event_id = f"replay-{uuid.uuid4().hex}"
    body = orjson.dumps({**QUICK_START, "messageId": event_id})

    responses = await asyncio.gather(*(post_raw(client, app.id, body) for _ in range(50)))

    assert [r.status_code for r in responses] == [202] * 50
    results = [await json_of(r) for r in responses]
    assert {r["event_id"] for r in results} == {event_id}
    assert {r["status"] for r in results} == {"valid"}
    # Every 202 was really enqueued: the answers' messages hold 50 copies in all, which
    # the workers' ON CONFLICT DO NOTHING turns into one stored row.
    copies = [
        copy
        for task_id in {r["task_id"] for r in results}
        for copy in await queued_copies(web_settings.redis_url, task_id, event_id)
    ]
    assert len(copies) == 50
    assert {copy["app_id"] for copy in copies} == {app.id}


# --- write keys -------------------------------------------------------------------------


def basic(key: str) -> dict[str, str]:
    return {**JSON, "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_ingest_required_key_missing_answers_401(client: Client, make_app: MakeApp) -> None:
    app = await make_app(require_write_key=True)

    response = await client.post(f"/api/logs/{app.id}", json=QUICK_START)

    await assert_error(response, 401, "write_key_required")


async def test_ingest_required_key_wrong_answers_401(client: Client, make_app: MakeApp) -> None:
    app = await make_app(require_write_key=True)

    response = await post_raw(client, app.id, orjson.dumps(QUICK_START), basic("wk_wrong"))

    await assert_error(response, 401, "invalid_write_key")


async def test_ingest_other_apps_key_answers_401(client: Client, make_app: MakeApp) -> None:
    app = await make_app(require_write_key=True)
    other = await make_app(require_write_key=True)

    by_basic = await post_raw(client, app.id, orjson.dumps(QUICK_START), basic(other.write_key))
    by_header = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-Write-Key": other.write_key}
    )

    await assert_error(by_basic, 401, "invalid_write_key")
    await assert_error(by_header, 401, "invalid_write_key")


async def test_ingest_correct_key_by_basic_auth_answers_202(
    client: Client, make_app: MakeApp
) -> None:
    app = await make_app(require_write_key=True)

    response = await post_raw(client, app.id, orjson.dumps(QUICK_START), basic(app.write_key))

    assert response.status_code == 202
    assert (await json_of(response))["status"] == "valid"


async def test_ingest_correct_key_by_header_answers_202(client: Client, make_app: MakeApp) -> None:
    app = await make_app(require_write_key=True)

    response = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-Write-Key": app.write_key}
    )

    assert response.status_code == 202


async def test_ingest_wrong_key_is_refused_when_not_required(
    client: Client, make_app: MakeApp
) -> None:
    app = await make_app(require_write_key=False)

    by_header = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-Write-Key": "wk_nope"}
    )
    by_basic = await post_raw(client, app.id, orjson.dumps(QUICK_START), basic("wk_nope"))
    keyless = await client.post(f"/api/logs/{app.id}", json=QUICK_START)

    await assert_error(by_header, 401, "invalid_write_key")
    await assert_error(by_basic, 401, "invalid_write_key")
    assert keyless.status_code == 202


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Basic !!!notbase64", "invalid_write_key"),
        ("Basic /w==", "invalid_write_key"),
        ("Basic Og==", "write_key_required"),
        ("Basic", "write_key_required"),
        ("Bearer something", "write_key_required"),
    ],
)
async def test_ingest_malformed_basic_auth_answers_401(
    client: Client, make_app: MakeApp, authorization: str, code: str
) -> None:
    app = await make_app(require_write_key=True)

    response = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "Authorization": authorization}
    )

    await assert_error(response, 401, code)


async def test_ingest_refused_key_queues_nothing(
    client: Client, make_app: MakeApp, web_settings: Settings
) -> None:
    app = await make_app(require_write_key=True)
    refused_id = f"refused-{uuid.uuid4().hex}"
    accepted_id = f"accepted-{uuid.uuid4().hex}"

    refused = await client.post(f"/api/logs/{app.id}", json={**QUICK_START, "event_id": refused_id})
    accepted = await post_raw(
        client,
        app.id,
        orjson.dumps({**QUICK_START, "event_id": accepted_id}),
        {**JSON, "X-Write-Key": app.write_key},
    )

    assert refused.status_code == 401
    message = await queued_message(web_settings.redis_url, (await json_of(accepted))["task_id"])
    assert message is not None
    assert [e["event_id"] for e in message["args"][0] if e["app_id"] == app.id] == [accepted_id]


# --- sessions and CORS ------------------------------------------------------------------


async def test_ingest_session_header_tags_queued_event(
    client: Client, app: App, web_settings: Settings
) -> None:
    response = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-LVD-Session": "qa-run-7"}
    )

    body = await json_of(response)
    queued = await queued_event(web_settings.redis_url, body["task_id"], body["event_id"])
    assert queued["session"] == "qa-run-7"


async def test_ingest_session_query_parameter_tags_queued_event(
    client: Client, app: App, web_settings: Settings
) -> None:
    response = await client.post(f"/api/logs/{app.id}?session=from-query", json=QUICK_START)

    body = await json_of(response)
    queued = await queued_event(web_settings.redis_url, body["task_id"], body["event_id"])
    assert queued["session"] == "from-query"


async def test_ingest_overlong_session_answers_400(client: Client, app: App) -> None:
    ok = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-LVD-Session": "s" * 100}
    )

    response = await post_raw(
        client, app.id, orjson.dumps(QUICK_START), {**JSON, "X-LVD-Session": "s" * 101}
    )

    assert ok.status_code == 202
    await assert_error(response, 400, "invalid_session")


async def test_ingest_answers_cors_preflight(client: Client, app: App) -> None:
    response = await client.options(
        f"/api/logs/{app.id}",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-write-key",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"content-type", "x-write-key", "authorization", "x-lvd-session"} <= allowed


async def test_ingest_responses_allow_any_origin(client: Client, app: App) -> None:
    origin = {**JSON, "Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"}

    accepted = await post_raw(client, app.id, orjson.dumps(QUICK_START), origin)
    refused = await post_raw(client, "no-such-app", orjson.dumps(QUICK_START), origin)
    no_origin = await post_raw(client, app.id, orjson.dumps(QUICK_START), JSON)

    assert accepted.status_code == 202
    assert accepted.headers["Access-Control-Allow-Origin"] == "*"
    assert refused.status_code == 404
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    assert no_origin.headers["Access-Control-Allow-Origin"] == "*"


# --- more load than the process can judge ------------------------------------------------


async def test_ingest_refuses_busy_without_reading_a_request_whose_turn_does_not_come(
    web_settings: Settings, make_app: MakeApp
) -> None:
    app_row = await make_app()
    app: Quart = create_app(replace(web_settings, ingest_budget_bytes=4096, enqueue_timeout=0.3))
    async with app.test_app():
        client = app.test_client()
        judging = app.extensions["lvd"].judging
        async with judging.turn(4096, within=1.0):  # the whole budget, as other requests would
            busy = await client.post(f"/api/logs/{app_row.id}", json=QUICK_START)
            # Not parsed: broken JSON is refused as busy too, not as invalid_json.
            unread = await post_raw(client, app_row.id, b"{not json", JSON)
        afterwards = await client.post(f"/api/logs/{app_row.id}", json=QUICK_START)

    await assert_error(busy, 503, "busy")
    assert busy.headers["Retry-After"] == "2"
    await assert_error(unread, 503, "busy")
    assert afterwards.status_code == 202  # the turn given back, the next request goes in
    accepted = await afterwards.get_json()
    await queued_event(web_settings.redis_url, accepted["task_id"], accepted["event_id"])


# --- Redis unavailable ------------------------------------------------------------------


async def test_ingest_redis_down_answers_503_quickly_and_healthz_stays_up(
    web_settings: Settings, make_app: MakeApp
) -> None:
    app_row = await make_app()
    down = replace(web_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app: Quart = create_app(down)

    async with app.test_app():
        client = app.test_client()
        started = time.monotonic()
        response = await client.post(f"/api/logs/{app_row.id}", json=QUICK_START)
        elapsed = time.monotonic() - started
        health = await client.get("/healthz")

    await assert_error(response, 503, "queue_unavailable")
    assert response.headers["Retry-After"] == "2"
    assert elapsed < 5.0
    assert health.status_code == 200
    assert await health.get_json() == {"status": "ok"}


async def test_the_web_log_shows_the_quick_starts_two_lines(
    client: Client, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="lvd.ingest")
    event = {"eventName": "user_login", "userId": 123, "timestamp": "2025-12-10T15:45:00Z"}
    assert (await client.post(f"/api/logs/{app.id}", json=event)).status_code == 202
    bad = {**event, "timestamp": "yesterday"}
    assert (await client.post(f"/api/logs/{app.id}", json=bad)).status_code == 202
    lines = [r.getMessage() for r in caplog.records if r.name == "lvd.ingest"]
    assert lines == [
        "Processing event: user_login",
        f"Validation PASSED for app_id: {app.id}",
        "Processing event: user_login",
        f"Validation FAILED for app_id: {app.id}",
    ]
