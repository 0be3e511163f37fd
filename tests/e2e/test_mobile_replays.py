"""Mobile SDKs' requests replayed byte for byte (tests/e2e/replays/*.json) at a running server.

The mobile SDKs (Segment's analytics-swift and analytics-kotlin, posthog-ios and
posthog-android, Amplitude-Swift and Amplitude-Kotlin, Snowplow's iOS and Android trackers)
cannot run here, so each fixture holds the requests they put on the wire, rebuilt from their
source (see tests/e2e/replays/generate.py and each request's `source`). Only the write key and
the app id are substituted; the headers go as recorded, gzip stays gzip, and Segment's Kotlin
SDK's chunked upload is streamed chunked.

For every fixture: a fresh app with a plan one event satisfies and one breaks, the requests
answered as the SDK counts success, each event stored once under its client id and judged as
the fixture expects, and the SDK's retry of the same requests storing nothing twice.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import LiveServer

from .helpers import stored_counts, unique

pytestmark = pytest.mark.e2e

REPLAYS = Path(__file__).resolve().parent / "replays"
FIXTURES = sorted(path.stem for path in REPLAYS.glob("*.json"))
KEY_PLACEHOLDER = "WRITE_KEY_PLACEHOLDER"
APP_PLACEHOLDER = "APP_ID_PLACEHOLDER"
# Headers httpx must work out itself: the body's length changes with the substitution.
COMPUTED_HEADERS = {"content-length", "host", "transfer-encoding"}
CHUNK_BYTES = 512

Json = dict[str, Any]


def _object(required: list[str], properties: Json) -> Json:
    return {"type": "object", "required": required, "properties": properties}


def _carrying(field: str, required: list[str], properties: Json) -> Json:
    """An event schema whose `field` (properties, traits...) must hold the given fields."""
    return _object([field], {field: _object(required, properties)})


# One plan per SDK family, over the events as they are stored (and judged).
PLANS: dict[str, Json] = {
    "segment": {
        "events": {
            "Order Completed": _carrying("properties", ["total"], {"total": {"type": "number"}}),
            "identify": _carrying("traits", ["email"], {"email": {"type": "string"}}),
            "screen": {"type": "object"},
        }
    },
    "posthog": {
        "events": {
            "signed_up": _carrying("properties", ["plan"], {"plan": {"type": "string"}}),
            "$screen": _carrying("properties", ["$screen_name"], {}),
        }
    },
    "amplitude": {
        "events": {
            "Order Completed": _carrying(
                "event_properties", ["total"], {"total": {"type": "number"}}
            ),
            "$identify": _carrying("user_properties", ["$set"], {}),
        }
    },
    "snowplow": {
        "events": {
            "com.acme/checkout_started": _carrying(
                "properties", ["cart_total"], {"cart_total": {"type": "number"}}
            ),
            "shop/add-to-basket": _carrying("properties", ["label"], {}),
            "com.snowplowanalytics.mobile/screen_view": _carrying(
                "properties", ["name", "id"], {"name": {"type": "string"}}
            ),
        }
    },
}
# Where each family's event carries the client's id (stored as sent).
ID_FIELDS = {"segment": "messageId", "posthog": "uuid", "amplitude": "insert_id", "snowplow": "eid"}


@dataclass(frozen=True)
class Replay:
    """One recorded request, made ready for an app: placeholders filled in."""

    sdk: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    chunked: bool
    expected: list[Json]

    @property
    def family(self) -> str:
        return self.sdk.split("-")[0]


def family_of(fixture: str) -> str:
    return fixture.split("-")[0]


def load(fixture: str) -> list[Json]:
    requests: list[Json] = json.loads((REPLAYS / f"{fixture}.json").read_text())
    assert requests, f"{fixture}.json holds no requests"
    return requests


def prepared(item: Json, write_key: str, app_id: str) -> Replay:
    """The recorded request with the app's write key and id in place of the placeholders."""
    if "body_base64" in item:
        raw = base64.b64decode(item["body_base64"])
    else:
        raw = item["body_text"].encode()
    gzipped = item.get("content_encoding") == "gzip"
    text = (gzip.decompress(raw) if gzipped else raw).decode()
    text = text.replace(KEY_PLACEHOLDER, write_key).replace(APP_PLACEHOLDER, app_id)
    body = gzip.compress(text.encode(), mtime=0) if gzipped else text.encode()
    headers = {
        name: value.replace(KEY_PLACEHOLDER, write_key)
        for name, value in item["headers"].items()
        if name.lower() not in COMPUTED_HEADERS
    }
    return Replay(
        sdk=item["sdk"],
        method=item["method"],
        path=item["path"].replace(APP_PLACEHOLDER, app_id),
        headers=headers,
        body=body,
        chunked=item.get("transfer_encoding") == "chunked",
        expected=item["expect"],
    )


def replays(fixture: str, write_key: str, app_id: str) -> list[Replay]:
    return [prepared(item, write_key, app_id) for item in load(fixture)]


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]


async def send(http: httpx.AsyncClient, replay: Replay, prefix: str = "") -> httpx.Response:
    """The request as the SDK sends it; a chunked one without a Content-Length."""
    content: bytes | AsyncIterator[bytes] = _chunks(replay.body) if replay.chunked else replay.body
    return await http.request(
        replay.method, f"{prefix}{replay.path}", headers=replay.headers, content=content
    )


def assert_sdk_success(replay: Replay, response: httpx.Response, *, first: bool) -> None:
    """What the SDK counts as success: any 2xx (Amplitude: with its own answer, too)."""
    assert 200 <= response.status_code < 300, (
        f"{replay.sdk} {replay.path}: {response.status_code} {response.text[:500]}"
    )
    if replay.family != "amplitude":
        return
    # Amplitude's SDKs only look at the status on success, but answer as Amplitude does.
    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == 200, answer
    for field in ("events_ingested", "payload_size_bytes", "server_upload_time"):
        assert isinstance(answer[field], int) and not isinstance(answer[field], bool), answer
    if first:
        assert answer["events_ingested"] == len(replay.expected), answer


async def new_app(http: httpx.AsyncClient, fixture: str) -> Json:
    response = await http.post("/api/apps", json={"id": unique("mobile")})
    assert response.status_code == 201, response.text
    app: Json = response.json()
    saved = await http.put(f"/api/apps/{app['id']}/plan", json=PLANS[family_of(fixture)])
    assert saved.status_code == 200, saved.text
    return app


async def wait_for(
    http: httpx.AsyncClient, app_id: str, count: int, **filters: str
) -> dict[str, Json]:
    """The query API's long poll: the stored events by their client id."""
    response = await http.get(
        f"/api/logs/{app_id}/wait",
        params={"count": count, "timeout": 15, **filters},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reached"], f"only {body['count']} of {count} events stored: {body['events']}"
    return {event["event_id"]: event for event in body["events"]}


def expected_of(batch: list[Replay]) -> list[Json]:
    return [event for replay in batch for event in replay.expected]


def assert_judged(stored: dict[str, Json], expected: list[Json], family: str) -> None:
    assert set(stored) == {event["event_id"] for event in expected}
    for event in expected:
        found = stored[event["event_id"]]
        where = f"{event['event_id']} ({event['event_name']})"
        assert found["event_name"] == event["event_name"], where
        assert found["status"] == event["status"], f"{where}: {found['errors']}"
        errors = [[error["path"], error["rule"]] for error in found["errors"] or []]
        assert errors == event.get("errors", []), where
        # Stored as the SDK sent it: the client's id in its own field.
        assert found["payload"][ID_FIELDS[family]] == event["event_id"], where


@pytest.mark.parametrize("fixture", FIXTURES)
async def test_mobile_replay_is_judged_and_stored_once(
    http: httpx.AsyncClient, live_server: LiveServer, pool: asyncpg.Pool, fixture: str
) -> None:
    app = await new_app(http, fixture)
    batch = replays(fixture, app["write_key"], app["id"])
    expected = expected_of(batch)

    for replay in batch:
        assert_sdk_success(replay, await send(http, replay), first=True)

    stored = await wait_for(http, app["id"], len(expected))
    assert_judged(stored, expected, family_of(fixture))
    ids = {event["event_id"] for event in expected}
    assert await stored_counts(pool, app["id"]) == dict.fromkeys(ids, 1)

    # The SDK's retry (a lost answer, a timeout): the same bytes again.
    for replay in batch:
        assert_sdk_success(replay, await send(http, replay), first=False)
    await asyncio.sleep(1.0)  # a doubled row would have been written by now
    assert await stored_counts(pool, app["id"]) == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("fixture", FIXTURES)
async def test_mobile_replay_on_a_session_scoped_host(
    http: httpx.AsyncClient, live_server: LiveServer, fixture: str
) -> None:
    """The SDK's host (or endpoint) set to <server>/v1/session/<id>: its paths land under it."""
    app = await new_app(http, fixture)
    job = unique("job")
    batch = replays(fixture, app["write_key"], app["id"])
    expected = expected_of(batch)

    for replay in batch:
        response = await send(http, replay, prefix=f"/v1/session/{job}")
        assert_sdk_success(replay, response, first=True)

    stored = await wait_for(http, app["id"], len(expected), session=job)
    assert_judged(stored, expected, family_of(fixture))
    assert {event["session"] for event in stored.values()} == {job}


def _unknown_key_is_final(replay: Replay, response: httpx.Response, wrong_key: str) -> str | None:
    """Why the SDK would keep resending this refusal forever; None when it gives up at once.

    From each SDK's source (each fixture's `source` names it): a refusal the SDK retries keeps
    the events on the device and resends them on every flush.
    """
    status = response.status_code
    if 200 <= status < 300:
        return "accepted events for an unknown key"
    if replay.sdk == "segment-swift":
        # HTTPClient.shouldDropBatch: only 400 drops a batch (legacy mode).
        return None if status == 400 else f"analytics-swift drops a batch only on 400, got {status}"
    if replay.sdk == "segment-kotlin":
        # RetryStateMachine.shouldDeleteBatch (legacy): 4xx except 429.
        final = 400 <= status < 500 and status != 429
        return None if final else f"analytics-kotlin retries {status}"
    if replay.family == "posthog":
        # 3xx, 408, 413 (split), 429, 500, 502-504 are retried.
        retried = 300 <= status < 400 or status in {408, 413, 429, 500, 502, 503, 504}
        return f"{replay.sdk} retries {status}" if retried else None
    if replay.family == "amplitude":
        if status != 400:
            return f"{replay.sdk} retries {status} (only 400 'Invalid API key' is final)"
        error = response.json().get("error", "")
        if replay.sdk == "amplitude-swift":
            # PersistentStorageResponseHandler: error == "Invalid API key: \(apiKey)", exactly.
            wanted = f"Invalid API key: {wrong_key}"
            return None if error == wanted else f"Amplitude-Swift needs {wanted!r}, got {error!r}"
        # BadRequestResponse.isInvalidApiKeyResponse: contains "invalid api key".
        return None if "invalid api key" in error.lower() else f"no 'invalid api key' in {error!r}"
    if replay.family == "snowplow":
        # RequestResult.shouldRetry: every failure but 400, 401, 403, 410, 422 is retried.
        final = status in {400, 401, 403, 410, 422}
        return None if final else f"{replay.sdk} retries {status}"
    raise AssertionError(f"no rule for {replay.sdk}")


@pytest.mark.parametrize("fixture", FIXTURES)
async def test_mobile_replay_for_an_unknown_app_is_refused_so_the_sdk_gives_up(
    http: httpx.AsyncClient, live_server: LiveServer, fixture: str
) -> None:
    """A wrong write key (or app id) is refused in the form the SDK treats as final.

    Anything else makes a misconfigured app resend its whole backlog on every flush, forever.
    """
    wrong_key, wrong_app = f"wk_{uuid.uuid4().hex}", unique("no-such-app")
    for replay in replays(fixture, wrong_key, wrong_app):
        response = await send(http, replay)
        problem = _unknown_key_is_final(replay, response, wrong_key)
        assert problem is None, f"{replay.sdk}: {problem}; answer {response.text[:300]}"
