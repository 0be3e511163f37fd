"""Writes the mobile SDK replay fixtures (tests/e2e/replays/*.json).

Run: .venv/bin/python -m tests.e2e.replays.generate

Each fixture is a list of HTTP requests as a mobile SDK puts them on the wire, rebuilt from
reading the SDK's source (the `source` field names the commit and files). The bodies are
written out the way each SDK's serializer writes them, quirks included: Apple's encoders and
Android's org.json escape "/" as "\\/", Gson escapes "=" "&" "<" ">" "'" as \\u00XX, the
Segment iOS batch file has its own spacing and newlines, and so on. Key order follows the
serializer where it has one (kotlinx, Gson, Android org.json, Amplitude-Swift's sortedKeys);
Foundation's JSONSerialization has none, so any order is as true as another.

Placeholders the test substitutes: WRITE_KEY_PLACEHOLDER (the app's write key: Segment
`writeKey`, PostHog and Amplitude `api_key`) and APP_ID_PLACEHOLDER (the app id: in Snowplow's
path or `aid`). A gzipped body is stored gzipped (body_base64, content_encoding "gzip"); the
test gunzips it, substitutes, and gzips again.

Each request carries `expect`: the events it holds, by client id, with the name and verdict the
test's tracking plan should give them. The plans are in tests/e2e/test_mobile_replays.py.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEY = "WRITE_KEY_PLACEHOLDER"
APP = "APP_ID_PLACEHOLDER"
# 2025-12-10T15:45:00.000Z
T0 = 1_765_381_500_000

Json = dict[str, Any]


def iso(offset_ms: int) -> str:
    moment = datetime.fromtimestamp((T0 + offset_ms) / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact(value: Any) -> str:
    """kotlinx.serialization / orjson style: compact, UTF-8, "/" left alone."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def apple(value: Any) -> str:
    """Foundation's JSONEncoder / JSONSerialization and Android's org.json: "/" becomes "\\/"."""
    return compact(value).replace("/", "\\/")


def gson(value: Any) -> str:
    """Gson with its default HTML-safe escaping (PostHog's builder does not turn it off)."""
    text = compact(value)
    for char in "<>&='":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def request(
    sdk: str,
    source: str,
    path: str,
    headers: dict[str, str],
    body: str,
    expect: list[Json],
    *,
    gzip_body: bool = False,
    chunked: bool = False,
    notes: str = "",
) -> Json:
    item: Json = {"sdk": sdk, "source": source, "method": "POST", "path": path}
    if notes:
        item["notes"] = notes
    item["headers"] = headers
    if chunked:
        item["transfer_encoding"] = "chunked"
    if gzip_body:
        item["content_encoding"] = "gzip"
        item["body_base64"] = base64.b64encode(gzipped(body)).decode()
    else:
        item["body_text"] = body
    item["expect"] = expect
    return item


def expect(event_id: str, name: str, status: str, *errors: tuple[str, str]) -> Json:
    item: Json = {"event_id": event_id, "event_name": name, "status": status}
    if errors:
        item["errors"] = [list(error) for error in errors]
    return item


# --- Segment ------------------------------------------------------------------------------

SEGMENT_KOTLIN = "segmentio/analytics-kotlin@a14649b302c417c356ec2c33b91a125557f81e57"
SEGMENT_SWIFT = "segmentio/analytics-swift@c9a0d6305ac44dcacffeb450534ee8af214b6607"


def segment_kotlin() -> list[Json]:
    anonymous = "6f1c2b8e-3d4a-4e5f-9a0b-1c2d3e4f5a6b"
    context = {
        "app": {
            "name": "Acme Shop",
            "version": "2.4.0",
            "namespace": "com.acme.shop",
            "build": "240",
        },
        "device": {
            "id": "a1b2c3d4e5f60718",
            "manufacturer": "Google",
            "model": "Pixel 7a",
            "name": "lynx",
            "type": "android",
        },
        "os": {"name": "Android", "version": "14"},
        "screen": {"density": 2.625, "height": 2400, "width": 1080},
        "network": {"wifi": True, "bluetooth": False, "cellular": False},
        "locale": "en-US",
        "userAgent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7a Build/UQ1A.240205.004)",
        "timezone": "Europe/Berlin",
        "library": {"name": "analytics-kotlin", "version": "1.24.1"},
        "instanceId": "0b9d7c6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e",
    }
    metadata: Json = {"bundled": [], "unbundled": [], "bundledIds": []}
    ids = {
        "ok": "3f6d5c1a-9b8e-4c7d-a6f5-e4d3c2b1a001",
        "bad": "3f6d5c1a-9b8e-4c7d-a6f5-e4d3c2b1a002",
        "who": "3f6d5c1a-9b8e-4c7d-a6f5-e4d3c2b1a003",
        "screen": "3f6d5c1a-9b8e-4c7d-a6f5-e4d3c2b1a004",
    }

    def track(message_id: str, properties: Json, offset: int) -> str:
        # kotlinx order: constructor properties, then the body's (Events.kt:165-177).
        event = {
            "properties": properties,
            "event": "Order Completed",
            "type": "track",
            "messageId": message_id,
            "anonymousId": anonymous,
            "integrations": {},
            "context": context,
            "userId": "user-42",
            "_metadata": metadata,
            "timestamp": iso(offset),
        }
        return compact(event)

    identify = {
        "userId": "user-42",
        "traits": {"email": "ada@example.com", "plan": "pro"},
        "type": "identify",
        "messageId": ids["who"],
        "anonymousId": anonymous,
        "integrations": {},
        "context": context,
        "timestamp": iso(300),
        "_metadata": metadata,
    }
    screen = {
        "name": "Checkout",
        "category": "",
        "properties": {"step": 2},
        "type": "screen",
        "messageId": ids["screen"],
        "anonymousId": anonymous,
        "context": context,
        "integrations": {},
        "userId": "user-42",
        "timestamp": iso(400),
        "_metadata": metadata,
    }
    events = [
        track(ids["ok"], {"total": 12.5, "currency": "EUR"}, 100),
        track(ids["bad"], {"total": "twelve", "currency": "EUR"}, 200),
        compact(identify),
        compact(screen),
    ]
    # StorageImpl.kt:37-40,155-176: begin, events joined by ",", end; no newlines.
    body = '{"batch":[' + ",".join(events) + f'],"sentAt":"{iso(5000)}","writeKey":"{KEY}"}}'
    return [
        request(
            "segment-kotlin",
            f"{SEGMENT_KOTLIN}:core/src/main/java/com/segment/analytics/kotlin/core/HTTPClient.kt"
            " (RequestFactory.upload, createPostConnection),"
            " core/src/main/java/com/segment/analytics/kotlin/core/utilities/StorageImpl.kt"
            " (batch file), .../platform/EventPipeline.kt (stringifyBaseEvent)",
            "/v1/b",
            {
                "Content-Type": "text/plain",
                "Content-Encoding": "gzip",
                "User-Agent": "analytics-kotlin/1.24.1",
                "Accept-Encoding": "gzip",
                "Connection": "Keep-Alive",
            },
            body,
            [
                expect(ids["ok"], "Order Completed", "valid"),
                expect(ids["bad"], "Order Completed", "invalid", ("/properties/total", "type")),
                expect(ids["who"], "identify", "valid", ("/traits/email", "pii_email")),
                expect(ids["screen"], "screen", "valid"),
            ],
            gzip_body=True,
            chunked=True,
            notes=(
                "apiHost 'lvd.example.com/v1' -> https://lvd.example.com/v1/b. No Authorization:"
                " the write key is only in the body. gzip through GZIPOutputStream, streamed"
                " with setChunkedStreamingMode(0) (Transfer-Encoding: chunked, no"
                " Content-Length). Accept-Encoding and Connection are okhttp's own."
            ),
        )
    ]


def segment_swift() -> list[Json]:
    anonymous = "D9A3C1E2-7B4F-4E6A-9C8D-0E1F2A3B4C5D"
    context = {
        "library": {"name": "analytics-swift", "version": "1.9.4"},
        "app": {
            "name": "Acme Shop",
            "version": "2.4.0",
            "build": "240",
            "namespace": "com.acme.shop",
        },
        "device": {
            "manufacturer": "Apple",
            "type": "ios",
            "model": "iPhone15,2",
            "name": "iPhone",
            "id": "8E0F5C7A-2B3D-4C1E-9F6A-7B8C9D0E1F2A",
        },
        "os": {"name": "iOS", "version": "18.1"},
        "screen": {"width": 393, "height": 852},
        "locale": "en-DE",
        "timezone": "Europe/Berlin",
        "network": {"bluetooth": False, "cellular": False, "wifi": True},
        "instanceId": "1C2D3E4F-5A6B-4C7D-8E9F-0A1B2C3D4E5F",
    }
    metadata: Json = {"bundled": [], "unbundled": [], "bundledIds": []}
    ids = {
        "ok": "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3001",
        "bad": "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3002",
        "who": "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3003",
        "screen": "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3004",
    }

    def raw(message_id: str, offset: int, tail: Json, user: bool = True) -> Json:
        # Declaration order of the Codable structs (Types.swift:35-164).
        event: Json = {
            "type": tail.pop("type"),
            "anonymousId": anonymous,
            "messageId": message_id,
        }
        if user:
            event["userId"] = "user-42"
        event |= {
            "timestamp": iso(offset),
            "context": context,
            "integrations": {},
            "_metadata": metadata,
        }
        return event | tail

    lines = [
        apple(
            raw(
                ids["ok"],
                100,
                {
                    "type": "track",
                    "event": "Order Completed",
                    "properties": {"total": 12.5, "currency": "EUR"},
                },
            )
        ),
        apple(
            raw(
                ids["bad"],
                200,
                {"type": "track", "event": "Order Completed", "properties": {"currency": "EUR"}},
            )
        ),
        apple(raw(ids["who"], 300, {"type": "identify", "traits": {"email": "ada@example.com"}})),
        apple(
            raw(
                ids["screen"],
                400,
                {"type": "screen", "name": "Checkout", "properties": {"step": 2}},
                user=True,
            )
        ),
    ]
    # DirectoryStore.swift:77-82,159,191-193 and LineStream.swift:105-107: a header line
    # '{ "batch": [', each event on its own line (",event" after the first), then the end.
    text = '{ "batch": [\n' + lines[0] + "\n"
    text += "".join("," + line + "\n" for line in lines[1:])
    text += f'],"sentAt":"{iso(5000)}","writeKey":"{KEY}"}}\n'
    return [
        request(
            "segment-swift",
            f"{SEGMENT_SWIFT}:Sources/Segment/Utilities/Networking/HTTPClient.swift"
            " (startBatchUpload, configuredRequest),"
            " Sources/Segment/Utilities/Storage/Types/DirectoryStore.swift (batch file),"
            " Sources/Segment/Types.swift (events)",
            "/v1/b",
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "analytics-ios/1.9.4",
                "Accept-Encoding": "gzip",
                "Accept": "*/*",
                "Accept-Language": "en-GB,en;q=0.9",
            },
            text,
            [
                expect(ids["ok"], "Order Completed", "valid"),
                expect(ids["bad"], "Order Completed", "invalid", ("/properties/total", "required")),
                expect(ids["who"], "identify", "valid", ("/traits/email", "pii_email")),
                expect(ids["screen"], "screen", "valid"),
            ],
            notes=(
                "uploadTask(with:fromFile:) of the finished batch file, not gzipped, no"
                " Authorization (the write key is only in the body). messageId is"
                " UUID().uuidString (upper case). Accept and Accept-Language are URLSession's."
            ),
        )
    ]


# --- PostHog ------------------------------------------------------------------------------

POSTHOG_IOS = "PostHog/posthog-ios@64c7dd0e09dce10c55ac737ef2615af812a37950"
POSTHOG_ANDROID = "PostHog/posthog-android@1042d2533d856c51f4bb68a1ced6a734c06b9675"


def posthog_properties(lib: str, version: str, os_name: str, extra: Json) -> Json:
    return {
        "$lib": lib,
        "$lib_version": version,
        "$os_name": os_name,
        "$os_version": "18.1" if os_name == "iOS" else "14",
        "$device_type": "Mobile",
        "$app_name": "Acme Shop",
        "$app_version": "2.4.0",
        "$app_build": "240",
        "$app_namespace": "com.acme.shop",
        "$locale": "en-US",
        "$timezone": "Europe/Berlin",
        "$session_id": "019b08a0-97c0-7e1a-8b2c-3d4e5f6a7b8c",
        "$is_identified": False,
        **extra,
    }


def posthog_ios() -> list[Json]:
    ids = {
        "ok": "019b08a1-0a64-7c3d-9e8f-a0b1c2d3e001",
        "bad": "019b08a1-0ac8-7c3d-9e8f-a0b1c2d3e002",
        "screen": "019b08a1-0b2c-7c3d-9e8f-a0b1c2d3e003",
    }
    distinct = "019b08a0-97bf-7a6b-8c9d-0e1f2a3b4c5d"

    def event(name: str, uuid: str, offset: int, extra: Json) -> Json:
        # PostHogEvent.toJSON (Models/PostHogEvent.swift:88-103).
        return {
            "event": name,
            "distinct_id": distinct,
            "properties": posthog_properties("posthog-ios", "3.69.3", "iOS", extra),
            "timestamp": iso(offset),
            "uuid": uuid,
        }

    body = {
        "api_key": KEY,
        "batch": [
            event("signed_up", ids["ok"], 100, {"plan": "pro"}),
            event("signed_up", ids["bad"], 200, {}),
            event("$screen", ids["screen"], 300, {"$screen_name": "Pricing/Plans"}),
        ],
        "sent_at": iso(5000),
    }
    return [
        request(
            "posthog-ios",
            f"{POSTHOG_IOS}:PostHog/PostHogApi.swift (batch, requestAndPayload, init headers),"
            " PostHog/Models/PostHogEvent.swift (toJSON)",
            "/batch",
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "posthog-ios/3.69.3",
                "Accept-Encoding": "gzip",
                "Content-Encoding": "gzip",
                "Accept": "*/*",
                "Accept-Language": "en-GB,en;q=0.9",
            },
            apple(body),
            [
                expect(ids["ok"], "signed_up", "valid"),
                expect(ids["bad"], "signed_up", "invalid", ("/properties/plan", "required")),
                expect(ids["screen"], "$screen", "valid"),
            ],
            gzip_body=True,
            notes=(
                "host 'https://lvd.example.com' -> /batch (no trailing slash). JSONSerialization"
                " escapes '/' (\\/), gzipped always. uuid is a lower-cased UUIDv7."
            ),
        )
    ]


def posthog_android() -> list[Json]:
    ids = {
        "ok": "019b08a2-1f40-7d2e-8a9b-c0d1e2f3a001",
        "bad": "019b08a2-1fa4-7d2e-8a9b-c0d1e2f3a002",
        "screen": "019b08a2-2008-7d2e-8a9b-c0d1e2f3a003",
    }
    distinct = "019b08a1-f2c0-7b3c-9d4e-5f6a7b8c9d0e"

    def event(name: str, uuid: str, offset: int, extra: Json) -> Json:
        # Gson of PostHogEvent: declared order, nulls left out (PostHogEvent.kt:22-39).
        return {
            "event": name,
            "distinct_id": distinct,
            "properties": posthog_properties("posthog-android", "3.60.4", "Android", extra),
            "timestamp": iso(offset),
            "uuid": uuid,
        }

    body = {
        "api_key": KEY,
        "batch": [
            event("signed_up", ids["ok"], 100, {"plan": "pro", "referrer": "utm=spring&x=1"}),
            event("signed_up", ids["bad"], 200, {"plan": 3}),
            event("$screen", ids["screen"], 300, {"$screen_name": "Cart & Checkout"}),
        ],
        "sent_at": iso(5000),
    }
    return [
        request(
            "posthog-android",
            f"{POSTHOG_ANDROID}:posthog/src/main/java/com/posthog/internal/PostHogApi.kt (batch,"
            " makeRequest), .../internal/GzipRequestInterceptor.kt,"
            " .../internal/PostHogBatchEvent.kt, .../PostHogEvent.kt",
            "/batch",
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "posthog-android/3.60.4",
                "Content-Encoding": "gzip",
                "Accept-Encoding": "gzip",
                "Connection": "Keep-Alive",
            },
            gson(body),
            [
                expect(ids["ok"], "signed_up", "valid"),
                expect(ids["bad"], "signed_up", "invalid", ("/properties/plan", "type")),
                expect(ids["screen"], "$screen", "valid"),
            ],
            gzip_body=True,
            notes=(
                "okhttp GzipRequestInterceptor gzips every request; Gson's default HTML-safe"
                " escaping turns = & into \\u003d \\u0026 in the JSON text."
            ),
        )
    ]


# --- Amplitude ----------------------------------------------------------------------------

AMPLITUDE_KOTLIN = "amplitude/Amplitude-Kotlin@b18926e7a69acfa59847a6d1cbaec99982b16b40"
AMPLITUDE_SWIFT = "amplitude/Amplitude-Swift@17ca168cfe6bc6400e0fd7d0287fb2c742ed0d21"


def amplitude_kotlin() -> list[Json]:
    ids = {
        "ok": "5b2e8f1c-4a7d-4e3b-9c6a-1d0e2f3a4001",
        "bad": "5b2e8f1c-4a7d-4e3b-9c6a-1d0e2f3a4002",
        "who": "5b2e8f1c-4a7d-4e3b-9c6a-1d0e2f3a4003",
    }
    session = T0 - 60_000

    def event(event_type: str, insert_id: str, counter: int, offset: int, extra: Json) -> Json:
        # JSONUtil.eventToJsonObject order, nulls left out (utilities/JSONUtil.kt:12-62).
        head: Json = {
            "event_type": event_type,
            "user_id": "user-42",
            "device_id": "8f7e6d5c-4b3a-4291-8e7f-6a5b4c3d2e1f",
            "time": T0 + offset,
        }
        head |= extra
        return head | {
            "platform": "Android",
            "os_name": "android",
            "os_version": "14",
            "device_brand": "google",
            "device_manufacturer": "Google",
            "device_model": "Pixel 7a",
            "carrier": "Vodafone.de",
            "country": "DE",
            "language": "en",
            "ip": "$remote",
            "version_name": "2.4.0",
            "event_id": counter,
            "session_id": session,
            "insert_id": insert_id,
            "library": "amplitude-analytics-android/1.30.1",
        }

    events = [
        event(
            "Order Completed",
            ids["ok"],
            7,
            100,
            {"event_properties": {"total": 12.5, "path": "/checkout/done"}},
        ),
        event(
            "Order Completed",
            ids["bad"],
            8,
            200,
            {"event_properties": {"total": "twelve", "path": "/checkout/done"}},
        ),
        event(
            "$identify",
            ids["who"],
            9,
            300,
            {"user_properties": {"$set": {"email": "ada@example.com"}}},
        ),
    ]
    # AnalyticsRequest.getBodyStr (http/AnalyticsRequest.kt:20-31): string concatenation
    # around the org.json array text.
    body = f'{{"api_key":"{KEY}","client_upload_time":"{iso(5000)}","events":{apple(events)}}}'
    return [
        request(
            "amplitude-kotlin",
            f"{AMPLITUDE_KOTLIN}:analytics-core/src/main/java/com/amplitude/core/utilities/http/"
            "HttpClient.kt (upload, request, DEFAULT_HEADERS), .../http/AnalyticsRequest.kt,"
            " .../utilities/JSONUtil.kt, analytics-core/.../Configuration.kt"
            " (getApiHost, shouldCompressUploadBody)",
            "/2/httpapi",
            {
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "User-Agent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7a Build/UQ1A.240205.004)",
                "Accept-Encoding": "gzip",
                "Connection": "Keep-Alive",
            },
            body,
            [
                expect(ids["ok"], "Order Completed", "valid"),
                expect(
                    ids["bad"], "Order Completed", "invalid", ("/event_properties/total", "type")
                ),
                expect(
                    ids["who"], "$identify", "valid", ("/user_properties/$set/email", "pii_email")
                ),
            ],
            notes=(
                "serverUrl 'https://lvd.example.com/2/httpapi': with a serverUrl set the body is"
                " NOT gzipped unless enableRequestBodyCompression (Configuration.kt:73-75)."
                " event_id is the SDK's per-device counter (an integer); insert_id is the id."
                " User-Agent is HttpURLConnection's default on Android (the SDK sets none)."
            ),
        )
    ]


def amplitude_swift() -> list[Json]:
    ids = {
        "ok": "C4D5E6F7-A8B9-4C0D-9E1F-2A3B4C5D6001",
        "bad": "C4D5E6F7-A8B9-4C0D-9E1F-2A3B4C5D6002",
    }
    session = T0 - 60_000

    def event(insert_id: str, counter: int, offset: int, properties: Json) -> Json:
        return {
            "event_type": "Order Completed",
            "user_id": "user-42",
            "device_id": "8E0F5C7A-2B3D-4C1E-9F6A-7B8C9D0E1F2A",
            "time": T0 + offset,
            "event_properties": properties,
            "platform": "iOS",
            "os_name": "ios",
            "os_version": "18.1",
            "device_manufacturer": "Apple",
            "device_model": "iPhone15,2",
            "carrier": "Unknown",
            "country": "DE",
            "language": "en",
            "ip": "$remote",
            "version_name": "2.4.0",
            "idfv": "8E0F5C7A-2B3D-4C1E-9F6A-7B8C9D0E1F2A",
            "event_id": counter,
            "session_id": session,
            "insert_id": insert_id,
            "library": "amplitude-swift/1.18.6",
        }

    events = [
        event(ids["ok"], 21, 100, {"total": 99, "coupon": "WINTER/25"}),
        event(ids["bad"], 22, 200, {"coupon": "WINTER/25"}),
    ]
    # JSONEncoder with .sortedKeys (Storages/PersistentStorage.swift:678-691).
    events_text = apple([dict(sorted(item.items())) for item in events])
    # HttpClient.getRequestData (Utilities/HttpClient.swift:115-134).
    body = f'{{"api_key":"{KEY}","client_upload_time":"{iso(5000)}","events":{events_text}}}'
    return [
        request(
            "amplitude-swift",
            f"{AMPLITUDE_SWIFT}:Sources/Amplitude/Utilities/HttpClient.swift (getRequest,"
            " getRequestData, shouldCompressUploadBody),"
            " Sources/Amplitude/Storages/PersistentStorage.swift (eventsToJSONString)",
            "/batch",
            {
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "Content-Encoding": "gzip",
                "User-Agent": "AcmeShop/240 CFNetwork/1568.200.51 Darwin/24.1.0",
                "Accept-Encoding": "gzip, deflate, br",
                "Accept-Language": "en-GB,en;q=0.9",
            },
            body,
            [
                expect(ids["ok"], "Order Completed", "valid"),
                expect(
                    ids["bad"],
                    "Order Completed",
                    "invalid",
                    ("/event_properties/total", "required"),
                ),
            ],
            gzip_body=True,
            notes=(
                "serverUrl 'https://lvd.example.com/batch' with enableRequestBodyCompression ="
                " true, so gzipped. Keys sorted (JSONEncoder .sortedKeys), '/' escaped."
                " insert_id is NSUUID().uuidString (upper case). User-Agent is URLSession's."
            ),
        )
    ]


# --- Snowplow -----------------------------------------------------------------------------

SNOWPLOW_ANDROID = "snowplow/snowplow-android-tracker@af342395b5a9fb46ed5bb1be63c917dac34cdfd6"
SNOWPLOW_IOS = "snowplow/snowplow-ios-tracker@900e06989623b3214803ac7623379a0ee41b6781"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
CHECKOUT = "iglu:com.acme/checkout_started/jsonschema/1-0-0"
SCREEN_VIEW = "iglu:com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0"


def b64_standard(text: str) -> str:
    """Android's Util.base64Encode: Base64.NO_WRAP, standard alphabet, padded."""
    return base64.b64encode(text.encode()).decode()


def b64_url_unpadded(text: str) -> str:
    """The iOS tracker's Payload.addJsonToPayload: URL-safe alphabet, "=" trimmed."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def snowplow_contexts(os_type: str, session_id: str, first_event: str, index: int) -> Json:
    mobile = {
        "schema": "iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-3",
        "data": {
            "osType": os_type,
            "osVersion": "14" if os_type == "android" else "18.1",
            "deviceManufacturer": "Google" if os_type == "android" else "Apple",
            "deviceModel": "Pixel 7a" if os_type == "android" else "iPhone15,2",
            "carrier": "Vodafone.de",
            "networkType": "wifi",
            "appAvailableMemory": 3_221_225_472,
            "batteryLevel": 87,
            "batteryState": "unplugged",
            "isPortrait": True,
            "resolution": "1080x2400" if os_type == "android" else "1179x2556",
            "scale": 2.625 if os_type == "android" else 3,
            "language": "en",
        },
    }
    client_session = {
        "schema": "iglu:com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-2",
        "data": {
            "userId": "b0a9c8d7-e6f5-4a3b-8c2d-1e0f9a8b7c6d",
            "sessionId": session_id,
            "sessionIndex": 3,
            "previousSessionId": None,
            "storageMechanism": "LOCAL_STORAGE" if os_type == "android" else "SQLITE",
            "firstEventId": first_event,
            "firstEventTimestamp": iso(100),
            "eventIndex": index,
        },
    }
    application = {
        "schema": "iglu:com.snowplowanalytics.mobile/application/jsonschema/1-0-0",
        "data": {"version": "2.4.0", "build": "240"},
    }
    return {"schema": CONTEXTS, "data": [mobile, client_session, application]}


def snowplow_android() -> list[Json]:
    ids = {
        "ok": "2c9e4f7a-1b3d-4e6f-8a0c-5d7e9f1a3001",
        "bad": "2c9e4f7a-1b3d-4e6f-8a0c-5d7e9f1a3002",
        "struct": "2c9e4f7a-1b3d-4e6f-8a0c-5d7e9f1a3003",
        "screen": "2c9e4f7a-1b3d-4e6f-8a0c-5d7e9f1a3004",
    }
    session = "f1e2d3c4-b5a6-4978-8a6b-5c4d3e2f1a0b"
    common = {
        "aid": "com.acme.shop",
        "tna": "sp1",
        "tv": "andr-6.3.2",
        "p": "mob",
        "tz": "Europe/Berlin",
        "lang": "English",
        "res": "1080x2400",
        "stm": str(T0 + 5000),
    }

    def event(key: str, offset: int, index: int, fields: dict[str, str]) -> Json:
        contexts = snowplow_contexts("android", session, ids["ok"], index)
        return {
            "e": fields.pop("e"),
            "eid": ids[key],
            "dtm": str(T0 + offset),
            **common,
            **fields,
            # org.json text of the map, base64'd (TrackerPayload.addMap, Util.base64Encode).
            "cx": b64_standard(apple(contexts)),
        }

    def unstruct(schema: str, data: Json) -> str:
        return b64_standard(apple({"schema": UNSTRUCT, "data": {"schema": schema, "data": data}}))

    events = [
        event(
            "ok",
            100,
            1,
            {
                "e": "ue",
                "ue_px": unstruct(
                    CHECKOUT, {"cart_total": 42.5, "items": 3, "coupon": "WINTER>>25??"}
                ),
            },
        ),
        event(
            "bad",
            200,
            2,
            {"e": "ue", "ue_px": unstruct(CHECKOUT, {"cart_total": "lots", "items": 3})},
        ),
        event(
            "struct",
            300,
            3,
            {
                "e": "se",
                "se_ca": "shop",
                "se_ac": "add-to-basket",
                "se_la": "sku-123",
                "se_pr": "size=M",
                "se_va": "29.99",
            },
        ),
        event(
            "screen",
            400,
            4,
            {
                "e": "ue",
                "ue_px": unstruct(
                    SCREEN_VIEW,
                    {
                        "name": "Checkout",
                        "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
                        "type": "CheckoutActivity",
                        "previousName": "Cart",
                        "previousId": "8c7b6a5f-4e3d-4c2b-9a1f-0e9d8c7b6a5f",
                        "previousType": "CartActivity",
                        "transitionType": "push",
                    },
                ),
            },
        ),
    ]
    body = apple({"schema": PAYLOAD_DATA, "data": events})
    encoded = "".join(item.get("ue_px", "") + item["cx"] for item in events)
    assert "=" in encoded and ("+" in encoded or "/" in encoded), "exercise the std alphabet"
    return [
        request(
            "snowplow-android",
            f"{SNOWPLOW_ANDROID}:snowplow-tracker/src/main/java/com/snowplowanalytics/snowplow/"
            "network/OkHttpNetworkConnection.kt (uri, buildPostRequest),"
            " .../snowplow/network/Request.kt, .../core/emitter/Emitter.kt (buildRequests, stm),"
            " .../core/tracker/Tracker.kt, .../core/tracker/TrackerEvent.kt,"
            " .../snowplow/payload/TrackerPayload.kt, .../core/utils/Util.kt (base64Encode)",
            f"/snowplow/{APP}/com.snowplowanalytics.snowplow/tp2",
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "snowplow/andr-6.3.2 android/14",
                "Accept-Encoding": "gzip",
                "Connection": "Keep-Alive",
            },
            body,
            [
                expect(ids["ok"], "com.acme/checkout_started", "valid"),
                expect(
                    ids["bad"],
                    "com.acme/checkout_started",
                    "invalid",
                    ("/properties/cart_total", "type"),
                ),
                expect(ids["struct"], "shop/add-to-basket", "valid"),
                expect(ids["screen"], "com.snowplowanalytics.mobile/screen_view", "valid"),
            ],
            notes=(
                "endpoint 'https://lvd.example.com/snowplow/<app>': the path is kept and"
                " com.snowplowanalytics.snowplow/tp2 appended. aid is the app's own id"
                " (com.acme.shop), the path names the LVD app. ue_px/cx are STANDARD base64"
                " with padding (android.util.Base64.NO_WRAP); org.json escapes '/'."
            ),
        )
    ]


def snowplow_ios() -> list[Json]:
    ids = {
        "ok": "A3B4C5D6-E7F8-4A9B-8C0D-1E2F3A4B5001",
        "bad": "A3B4C5D6-E7F8-4A9B-8C0D-1E2F3A4B5002",
        "struct": "A3B4C5D6-E7F8-4A9B-8C0D-1E2F3A4B5003",
    }
    session = "E5F6A7B8-C9D0-4E1F-8A2B-3C4D5E6F7A8B"
    common = {
        "aid": APP,
        "tna": "sp1",
        "tv": "ios-6.2.5",
        "p": "mob",
        "tz": "Europe/Berlin",
        "lang": "en",
        "res": "1179x2556",
        "stm": str(T0 + 5000),
    }

    def event(key: str, offset: int, index: int, fields: dict[str, str]) -> Json:
        contexts = snowplow_contexts("ios", session, ids["ok"], index)
        return {
            "e": fields.pop("e"),
            "eid": ids[key],
            "dtm": str(T0 + offset),
            **common,
            **fields,
            "cx": b64_url_unpadded(apple(contexts)),
        }

    def unstruct(schema: str, data: Json) -> str:
        return b64_url_unpadded(
            apple({"schema": UNSTRUCT, "data": {"schema": schema, "data": data}})
        )

    events = [
        event(
            "ok",
            100,
            1,
            {
                "e": "ue",
                "ue_px": unstruct(
                    CHECKOUT, {"cart_total": 42.5, "items": 3, "coupon": "WINTER>>25??"}
                ),
            },
        ),
        event("bad", 200, 2, {"e": "ue", "ue_px": unstruct(CHECKOUT, {"items": 3})}),
        # Structured.swift:61: se_va is String(format: "%.17g", value).
        event(
            "struct",
            300,
            3,
            {
                "e": "se",
                "se_ca": "shop",
                "se_ac": "add-to-basket",
                "se_la": "sku-123",
                "se_va": "29.989999999999998",
            },
        ),
    ]
    body = apple({"schema": PAYLOAD_DATA, "data": events})
    encoded = "".join(item.get("ue_px", "") + item["cx"] for item in events)
    assert "=" not in encoded and ("-" in encoded or "_" in encoded), "exercise base64url"
    return [
        request(
            "snowplow-ios",
            f"{SNOWPLOW_IOS}:Sources/Snowplow/Network/DefaultNetworkConnection.swift (setup,"
            " buildPost), Sources/Snowplow/Network/Request.swift,"
            " Sources/Snowplow/Payload/Payload.swift (addJsonToPayload),"
            " Sources/Core/TrackerConstants.swift, Sources/Core/Tracker/Tracker.swift",
            "/com.snowplowanalytics.snowplow/tp2",
            {
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "text/html, application/x-www-form-urlencoded, text/plain, image/gif",
                "User-Agent": "AcmeShop/240 CFNetwork/1568.200.51 Darwin/24.1.0",
                "Accept-Encoding": "gzip, deflate, br",
                "Accept-Language": "en-GB,en;q=0.9",
            },
            body,
            [
                expect(ids["ok"], "com.acme/checkout_started", "valid"),
                expect(
                    ids["bad"],
                    "com.acme/checkout_started",
                    "invalid",
                    ("/properties/cart_total", "required"),
                ),
                expect(ids["struct"], "shop/add-to-basket", "valid"),
            ],
            notes=(
                "endpoint 'https://lvd.example.com' (no app in the path): the app is found by"
                " aid = the LVD app id. ue_px/cx are base64URL without padding; eid is"
                " UUID().uuidString (upper case). Content-Length is set explicitly."
            ),
        )
    ]


FIXTURES = {
    "segment-kotlin": segment_kotlin,
    "segment-swift": segment_swift,
    "posthog-ios": posthog_ios,
    "posthog-android": posthog_android,
    "amplitude-kotlin": amplitude_kotlin,
    "amplitude-swift": amplitude_swift,
    "snowplow-android": snowplow_android,
    "snowplow-ios": snowplow_ios,
}


def main() -> None:
    for name, build in FIXTURES.items():
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path.relative_to(HERE.parent.parent.parent)}")


if __name__ == "__main__":
    main()
