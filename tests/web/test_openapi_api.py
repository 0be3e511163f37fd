"""/openapi.json against the app: every JSON route described, with the scope tokens need,
and every answer and refusal of the management API in its documented shape and codes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import jsonschema
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tests.web.support import json_of, message_event
from web.core.ingest.registry import SESSION_PREFIX, routes_by_format
from web.core.queries.base import App
from web.core.scopes import required_scope
from workers.store import store_events

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# JSON routes: the APIs (Snowplow Micro's too), and the exports (the files a script
# downloads).
_JSON_ROUTE = re.compile(r"^/api/|/micro/|\.(csv|ndjson|md)$")


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    found: dict[str, Any] = await json_of(await client.get("/openapi.json"))
    return found


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_json_route_and_ingest_path_is_in_the_document(
    document: dict[str, Any], quart_app: Quart
) -> None:
    served = {
        (openapi_path(rule.rule), method)
        for rule in quart_app.url_map.iter_rules()
        if _JSON_ROUTE.search(rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    for fmt, route in routes_by_format():
        prefixes = ("",) if fmt.name == "native" else ("", SESSION_PREFIX)
        served |= {
            (openapi_path(f"{prefix}{route.path}"), method)
            for prefix in prefixes
            for method in route.methods
        }

    assert len(served) > 100
    assert served - documented(document) == set()


def test_each_operation_states_the_scope_a_token_needs(
    document: dict[str, Any], quart_app: Quart
) -> None:
    rules = {
        (openapi_path(rule.rule), method): rule.rule
        for rule in quart_app.url_map.iter_rules()
        for method in rule.methods or ()
    }
    checked = 0
    for path, method in documented(document):
        operation = document["paths"][path][method.lower()]
        if "x-scope" not in operation:
            continue  # ingest: write keys, not tokens
        scope = operation["x-scope"]
        assert required_scope(method, rules[path, method]) == scope, (method, path)
        assert {"apiToken": [scope]} in operation["security"]
        assert {"dashboardUser": []} in operation["security"]
        assert {"sessionCookie": []} in operation["security"]
        checked += 1
    assert checked >= 29 + 16


def test_the_security_schemes_are_bearer_basic_and_the_session_cookie(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["apiToken"]["type"] == "http" and schemes["apiToken"]["scheme"] == "bearer"
    assert schemes["dashboardUser"]["scheme"] == "basic"
    assert schemes["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "lvd_session",
        "description": "A browser signed in at /login.",
    }


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]

    assert len(ids) == len(set(ids))


class Checker:
    """Sends requests and checks each answer against the document's response for its status."""

    def __init__(self, client: Client, document: dict[str, Any]) -> None:
        self.client = client
        self.document = document
        self.checked: set[tuple[str, str, int]] = set()

    async def call(
        self, method: str, path: str, status: int, template: str | None = None, **kwargs: Any
    ) -> Any:
        response = await self.client.open(path, method=method, **kwargs)
        body = await response.get_data(as_text=True)
        assert response.status_code == status, (method, path, body[:300])
        spec = self.document["paths"][template or path][method.lower()]["responses"]
        answer = spec[str(status)]
        if "$ref" in answer:
            answer = self.document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        self.checked.add((method, template or path, status))
        if "content" not in answer:
            assert body == ""
            return None
        found = await json_of(response)
        schema = answer["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator({**self.document, **schema}).validate(found)
        return found


@pytest.fixture
def checker(client: Client, document: dict[str, Any]) -> Checker:
    return Checker(client, document)


PLAN = {"events": {"signup": {"type": "object", "required": ["userId"]}}}


async def test_apps_and_plans_answer_as_documented(checker: Checker, pool: asyncpg.Pool) -> None:
    app_id = f"t-{uuid.uuid4().hex[:12]}"
    app = "/api/apps/{app_id}"
    await checker.call("POST", "/api/apps", 201, json={"id": app_id, "name": "Shop"})
    await checker.call("POST", "/api/apps", 409, json={"id": app_id})
    await checker.call("POST", "/api/apps", 400, json={"id": "Not An Id"})
    await checker.call("POST", "/api/apps", 400, json={"id": "t-nul", "name": "a\u0000"})
    await checker.call("POST", "/api/apps", 400, data=b"{", headers=_JSON)
    await checker.call("GET", "/api/apps", 200)
    await checker.call("GET", f"/api/apps/{app_id}", 200, app)
    await checker.call("GET", f"/api/apps/{app_id}/plan", 404, f"{app}/plan")
    await checker.call("PUT", f"/api/apps/{app_id}/plan", 200, f"{app}/plan", json=PLAN)
    await checker.call(
        "PUT", f"/api/apps/{app_id}/plan", 200, f"{app}/plan", json={**PLAN, "naming": "camelCase"}
    )
    await checker.call("PUT", f"/api/apps/{app_id}/plan", 400, f"{app}/plan", json={"events": 1})
    nul = {"events": {"a\u0000": {}}}
    await checker.call("PUT", f"/api/apps/{app_id}/plan", 400, f"{app}/plan", json=nul)
    await checker.call("GET", f"/api/apps/{app_id}/plan", 200, f"{app}/plan")
    await checker.call("GET", f"/api/apps/{app_id}/plan/versions", 200, f"{app}/plan/versions")
    version = f"{app}/plan/versions/{{version}}"
    await checker.call("GET", f"/api/apps/{app_id}/plan/versions/1", 200, version)
    await checker.call("GET", f"/api/apps/{app_id}/plan/versions/{2**40}", 404, version)
    diff = f"{app}/plan/diff"
    await checker.call("GET", f"/api/apps/{app_id}/plan/diff?from=1&to=2", 200, diff)
    await checker.call("GET", f"/api/apps/{app_id}/plan/diff?from=x", 400, diff)
    await checker.call("GET", f"/api/apps/{app_id}/plan/diff?from={2**40}", 404, diff)
    check = f"{app}/plan/check"
    found = await checker.call("POST", f"/api/apps/{app_id}/plan/check", 200, check, json={"x": 1})
    assert found["ok"] is False and found["problems"][0]["path"] == "/x"
    await store_events(pool, [message_event(app_id, name="signup")])
    await checker.call("GET", f"/api/apps/{app_id}/plan/draft", 200, f"{app}/plan/draft")
    again = f"{app}/revalidate"
    judged = await checker.call("POST", f"/api/apps/{app_id}/revalidate", 200, again, json={})
    assert judged["judged"] == 1
    await checker.call("POST", f"/api/apps/{app_id}/revalidate", 200, again)
    await checker.call("POST", f"/api/apps/{app_id}/revalidate", 400, again, json={"version": "1"})
    beyond = {"version": -(2**40)}
    await checker.call("POST", f"/api/apps/{app_id}/revalidate", 404, again, json=beyond)
    await checker.call("GET", "/api/apps/no-such-app/plan/draft", 404, f"{app}/plan/draft")


async def test_settings_and_the_pipeline_answer_as_documented(checker: Checker, app: App) -> None:
    alerts, retention = f"/api/apps/{app.id}/alerts", f"/api/apps/{app.id}/retention"
    alerts_doc, retention_doc = "/api/apps/{app_id}/alerts", "/api/apps/{app_id}/retention"
    await checker.call("GET", alerts, 200, alerts_doc)
    settings = {
        "email": {"recipients": ["qa@example.com"]},
        "webhook": {"url": "https://hooks.example.com/lvd"},
        "invalid_share": {"enabled": True, "threshold": 0.5},
    }
    await checker.call("PUT", alerts, 200, alerts_doc, json=settings)
    await checker.call("GET", alerts, 200, alerts_doc)
    await checker.call("PUT", alerts, 400, alerts_doc, json={"sms": {}})
    nul = {"webhook": {"url": "https://example.com/\u0000"}}
    refused = await checker.call("PUT", alerts, 400, alerts_doc, json=nul)
    assert refused["error"]["code"] == "null_character"
    await checker.call("GET", "/api/apps/no-such-app/alerts", 404, alerts_doc)
    await checker.call("GET", retention, 200, retention_doc)
    await checker.call("PUT", retention, 200, retention_doc, json={"days": 30})
    await checker.call("PUT", retention, 200, retention_doc, json={"days": None})
    await checker.call("PUT", retention, 400, retention_doc, json={"days": 0})
    await checker.call("PUT", retention, 400, retention_doc, json=[1])
    await checker.call("GET", "/api/dead-letters", 200)
    await checker.call("GET", "/api/dead-letters?all=1", 200, "/api/dead-letters")
    await checker.call("POST", "/api/dead-letters/retry", 200, json={"ids": [2**62, 2**63]})
    await checker.call("POST", "/api/dead-letters/retry", 400, json={"ids": 5})
    await checker.call("GET", "/api/status", 200)
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    await checker.call("PUT", retention, 403, retention_doc, json={"days": 1}, headers=cross_site)


async def test_tokens_and_their_refusals_answer_as_documented(checker: Checker, app: App) -> None:
    made = await checker.call(
        "POST", "/api/tokens", 201, json={"name": "ci", "scope": "read", "app_id": app.id}
    )
    bearer = {"Authorization": f"Bearer {made['token']}"}
    await checker.call("POST", "/api/tokens", 400, json={"name": " "})
    await checker.call("POST", "/api/tokens", 400, json={"name": "ci", "scope": "root"})
    await checker.call("GET", "/api/tokens", 200)
    retention = "/api/apps/{app_id}/retention"
    await checker.call("GET", f"/api/apps/{app.id}/retention", 200, retention, headers=bearer)
    await checker.call(
        "PUT", f"/api/apps/{app.id}/retention", 403, retention, json={"days": 1}, headers=bearer
    )
    await checker.call("GET", "/api/apps", 403, headers=bearer)  # limited to its app
    await checker.call(
        "GET", "/api/status", 401, headers={"Authorization": "Bearer lvd_" + "x" * 43}
    )
    token = "/api/tokens/{token_id}"
    await checker.call("DELETE", f"/api/tokens/{made['id']}", 204, token)
    await checker.call("GET", f"/api/apps/{app.id}/retention", 401, retention, headers=bearer)
    await checker.call("DELETE", "/api/tokens/999999999", 404, token)


_JSON = {"Content-Type": "application/json"}


async def test_snowplow_micro_answers_as_documented(checker: Checker, app: App) -> None:
    in_app = "/snowplow/{app}/micro/"
    await checker.call("GET", "/micro/all", 200)
    await checker.call("GET", "/micro/good?limit=5&event_type=page_view", 200, "/micro/good")
    await checker.call("POST", "/micro/good", 200, json={"contexts": ["iglu:x/y/jsonschema/1-0-0"]})
    await checker.call("POST", "/micro/bad", 200)
    await checker.call("POST", "/micro/good", 400, json=[1])
    await checker.call("GET", "/micro/bad?limit=x", 400, "/micro/bad")
    await checker.call("GET", f"/snowplow/{app.id}/micro/good", 200, f"{in_app}good")
    await checker.call("POST", f"/snowplow/{app.write_key}/micro/reset", 200, f"{in_app}reset")
    await checker.call("GET", "/snowplow/no-such-app/micro/all", 404, f"{in_app}all")


async def test_native_ingest_refusals_carry_documented_codes(checker: Checker, app: App) -> None:
    logs = "/api/logs/{app_id}"
    await checker.call("POST", f"/api/logs/{app.id}", 202, logs, json={"eventName": "x"})
    await checker.call("POST", f"/api/logs/{app.id}", 400, logs, data=b"", headers=_JSON)
    await checker.call("POST", f"/api/logs/{app.id}", 400, logs, json=[])
    await checker.call("POST", f"/api/logs/{app.id}", 415, logs, data=b"{}")
    await checker.call("POST", "/api/logs/no-such-app", 404, logs, json={"eventName": "x"})
