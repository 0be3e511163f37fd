"""/openapi.json: a valid OpenAPI 3.1 document whose paths, limits and shapes match the app."""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import asdict, replace
from typing import Any

import asyncpg
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tests.web.support import json_of, message_event
from web.core.ingest.registry import ROUTER, routes_by_format
from web.core.queries.base import App
from web.core.settings import Limits
from web.openapi import openapi_document
from workers.store import store_events

HTTP_METHODS = {"get", "post", "put", "delete", "patch"}
ERROR_SCHEMAS = ("/Error", "/SdkError", "/AmplitudeError", "/SdkOrAmplitudeError")


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = await json_of(response)
    return body


def conforms(document: dict[str, Any], schema_name: str, instance: Any) -> None:
    """Validate `instance` against one of the document's component schemas."""
    root = {**document, "$ref": f"#/components/schemas/{schema_name}"}
    jsonschema.Draft202012Validator(root).validate(instance)


def test_openapi_document_is_valid_openapi_3_1() -> None:
    document = openapi_document(Limits())

    validate_spec(document)  # raises on any violation

    assert document["openapi"] == "3.1.0"


async def test_openapi_json_is_served_and_valid(document: dict[str, Any]) -> None:
    validate_spec(document)

    assert document["info"]["x-lvd-limits"] == asdict(Limits())


async def test_openapi_every_documented_operation_exists_on_the_app(
    document: dict[str, Any], quart_app: Quart
) -> None:
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in quart_app.url_map.iter_rules()
        for method in rule.methods or ()
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }

    def served_by_ingest(path: str, method: str) -> bool:
        found = ROUTER.match(re.sub(r"{(\w+)}", r"x\1", path))
        return found is not None and method.upper() in found.route.methods

    missing = {(path, method) for path, method in documented - routes}
    assert {op for op in missing if not served_by_ingest(*op)} == set()
    # The native API's five, the exports (the files under /apps/: events, coverage...), the
    # management API's (tokens and Snowplow Micro's too), then each SDK route at the root
    # and under a session; PostHog and Amplitude share /batch.
    sdk_operations = {
        (route.path, method) for fmt, route in routes_by_format() for method in route.methods
    } - {("/api/logs/<app_id>", "POST")}
    managed = {
        (p, m)
        for p, m in documented
        if p.startswith(("/api/apps", "/api/dead-", "/api/status", "/api/tokens", "/micro/"))
        or p.startswith("/snowplow/{app}/micro/")
    }
    exports = {(p, m) for p, m in documented if p.startswith("/apps/")}
    assert len(managed) >= 18 + 3 + 16
    assert len(exports) >= 4
    assert len(documented) == 5 + len(exports) + len(managed) + 2 * len(sdk_operations)


async def test_openapi_every_sdk_and_query_route_is_documented(
    document: dict[str, Any], quart_app: Quart
) -> None:
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in quart_app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] == "query_api"
    }
    for _, route in routes_by_format():
        path = re.sub(r"<(\w+)>", r"{\1}", route.path)
        routes |= (
            {path, f"/v1/session/{{session}}{path}"} if path != "/api/logs/{app_id}" else {path}
        )

    assert routes - set(document["paths"]) == set()


def test_openapi_limits_come_from_the_settings() -> None:
    limits = replace(Limits(), max_events_per_request=7, max_event_id_length=33)

    document = openapi_document(limits)

    schemas = document["components"]["schemas"]
    assert schemas["SegmentBatch"]["properties"]["batch"]["maxItems"] == 7
    assert schemas["PostHogBatch"]["properties"]["batch"]["maxItems"] == 7
    assert schemas["Event"]["properties"]["event_id"]["maxLength"] == 33
    assert schemas["Event"]["x-max-bytes"] == limits.max_event_bytes
    assert f"{limits.max_request_bytes} bytes" in document["info"]["description"]
    ingest = document["paths"]["/api/logs/{app_id}"]["post"]
    array = ingest["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert array["maxItems"] == 7


def test_openapi_declares_the_write_key_security_schemes() -> None:
    document = openapi_document(Limits())

    schemes = document["components"]["securitySchemes"]
    assert schemes["writeKeyBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": "The app's write key as the user name, an empty password.",
    }
    assert schemes["writeKeyHeader"]["name"] == "X-Write-Key"
    batch = document["paths"]["/v1/batch"]["post"]
    assert {"writeKeyBasic": []} in batch["security"]


def test_openapi_refusals_are_documented_with_the_error_schema() -> None:
    document = openapi_document(Limits())
    responses = document["components"]["responses"]

    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            statuses = {s for s in operation["responses"] if s.startswith(("4", "5"))}
            assert statuses, f"{method} {path} documents no error"
            for status in statuses:
                response = operation["responses"][status]
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                schema = response["content"]["application/json"]["schema"]
                if "allOf" in schema:  # a refusal that lists its codes
                    codes = schema["properties"]["error"]["properties"]["code"]["enum"]
                    assert codes and all(code in response["description"] for code in codes)
                    schema = schema["allOf"][0]
                assert schema["$ref"].endswith(ERROR_SCHEMAS), (path, status)
    assert "too_many_events" in responses["E413"]["description"]
    assert responses["E429"]["headers"]["Retry-After"]


async def test_openapi_error_schemas_match_real_refusals(
    document: dict[str, Any], client: Client
) -> None:
    native = await client.get(f"/api/logs/missing-{uuid.uuid4().hex[:8]}")
    sdk = await client.post("/v1/batch", json={"batch": []})

    assert native.status_code == 404
    conforms(document, "Error", await json_of(native))
    assert sdk.status_code in (400, 401)
    conforms(document, "SdkError", await json_of(sdk))


async def test_openapi_response_schemas_match_real_answers(
    document: dict[str, Any], client: Client, app: App, pool: asyncpg.Pool
) -> None:
    event = message_event(app.id)
    event["session"] = "s"
    await store_events(pool, [event])
    key = base64.b64encode(f"{app.write_key}:".encode()).decode()
    base = f"/api/logs/{app.id}"

    answers = {
        "Verdict": await client.post(base, json={"eventName": "x"}),
        "VerdictList": await client.post(base, json=[{"eventName": "x"}]),
        "EventPage": await client.get(base, query_string={"limit": "1"}),
        "Summary": await client.get(f"{base}/summary"),
        "WaitResult": await client.get(f"{base}/wait", query_string={"timeout": "0"}),
        "ResetResult": await client.delete(base, query_string={"session": "s"}),
        "SdkResult": await client.post(
            "/v1/track",
            json={"type": "track", "event": "x", "userId": "u"},
            headers={"Authorization": f"Basic {key}"},
        ),
    }

    for schema_name, response in answers.items():
        assert response.status_code < 300, schema_name
        conforms(document, schema_name, await json_of(response))
    page = await json_of(answers["EventPage"])
    conforms(document, "StoredEvent", page["events"][0])


def test_openapi_sdk_refusals_are_the_statuses_the_paths_answer() -> None:
    paths = openapi_document(Limits())["paths"]

    def refusals(path: str, method: str = "post") -> set[str]:
        return {s for s in paths[path][method]["responses"] if s.startswith(("4", "5"))}

    # Segment's mobile path answers a bad key 400; Snowplow an unknown app 403.
    assert "401" not in refusals("/v1/b") and "400" in refusals("/v1/b")
    assert "401" in refusals("/v1/batch")
    tp2 = "/snowplow/{app}/com.snowplowanalytics.snowplow/tp2"
    assert "403" in refusals(tp2) and "404" not in refusals(tp2)
    assert "403" in refusals("/i", "get")
    assert "401" not in refusals("/2/httpapi")


def test_openapi_shared_batch_path_takes_either_format() -> None:
    operation = openapi_document(Limits())["paths"]["/batch"]["post"]

    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {
        "oneOf": [
            {"$ref": "#/components/schemas/PostHogCapture"},
            {"$ref": "#/components/schemas/AmplitudeUpload"},
        ]
    }
    assert operation["responses"]["400"]["$ref"].endswith("/SdkOrAmplitudeE400")
    capture = openapi_document(Limits())["paths"]["/e/"]["post"]["requestBody"]["content"]
    assert set(capture) == {
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
    }
