"""The API description's operation builder: security by scope and refusals with their codes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from web.openapi_refs import JSON, Schema, ref

# The token scope an operation needs (web/core/scopes.py): read < write < admin.
READ, WRITE, ADMIN = "read", "write", "admin"
_UNSAFE = frozenset({"post", "put", "patch", "delete"})
# What every operation behind sign-in may answer, and what reading a JSON body may.
# A token limited to one app reaches nothing else, not even what is about no app.
_AUTH_REFUSALS = {
    "401": ("sign_in_required", "invalid_token"),
    "403": ("insufficient_scope", "token_app_forbidden"),
}
_BODY_REFUSALS = {"400": ("invalid_json", "invalid_top_level"), "413": ("request_too_large",)}
# A path whose parameters match no route (an id that is not a number) is 404 not_found.
_APP_REFUSALS = {"404": ("unknown_app", "not_found")}
_STATUS_TEXT = {
    "400": "Bad input",
    "401": "Not signed in, or a token that is unknown, revoked or malformed",
    "403": "Not allowed",
    "404": "Not found",
    "409": "Conflict",
    "413": "Over a size limit",
    "415": "Unsupported media type or encoding",
    "429": "Too many requests (with Retry-After)",
    "503": "The queue is unavailable (with Retry-After); retry",
}
Refusals = Mapping[str, tuple[str, ...]]


def security(scope: str) -> list[Schema]:
    """Who may call: anyone while sign-in is off (loopback); else a token of `scope` or more,
    a dashboard user over HTTP Basic, or a signed-in browser session."""
    return [{}, {"apiToken": [scope]}, {"dashboardUser": []}, {"sessionCookie": []}]


def security_schemes() -> dict[str, Schema]:
    return {
        "apiToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lvd_ and 43 url-safe base64 characters",
            "description": "An API token (`lvd token create`, or /tokens). Its scope (read,"
            " write, admin) must cover the operation's; a token limited to one app reaches"
            " that app only (403 token_app_forbidden). An unknown or revoked token is"
            " 401 invalid_token, even where sign-in is not required.",
        },
        "dashboardUser": {
            "type": "http",
            "scheme": "basic",
            "description": "A dashboard user; needed only when sign-in is required.",
        },
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "lvd_session",
            "description": "A browser signed in at /login.",
        },
        "writeKeyBasic": {
            "type": "http",
            "scheme": "basic",
            "description": "The app's write key as the user name, an empty password.",
        },
        "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
    }


def refusal(status: str, codes: Iterable[str]) -> Schema:
    """A refusal answered with one of these machine-readable codes, in the Error shape."""
    listed = list(dict.fromkeys(codes))
    response: Schema = {
        "description": f"{_STATUS_TEXT.get(status, 'Refused')}: {', '.join(listed)}",
        "content": {
            JSON: {
                "schema": {
                    "allOf": [ref("Error")],
                    "properties": {"error": {"properties": {"code": {"enum": listed}}}},
                }
            }
        },
    }
    if status in ("429", "503"):
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}
        }
    if status == "401":
        response["headers"] = {
            "WWW-Authenticate": {
                "schema": {"type": "string"},
                "description": 'Basic realm="lvd", or Bearer error="invalid_token"',
            }
        }
    return response


def operation(
    method: str,
    operation_id: str,
    tag: str,
    summary: str,
    *,
    scope: str,
    answer: Schema | None,
    refusals: Refusals | None = None,
    body: str | None = None,
    body_required: bool = True,
    about_app: bool = True,
    parameters: list[Schema] | None = None,
    status: str = "200",
    description: str | None = None,
) -> Schema:
    """One operation behind sign-in: what it takes, answers, and every refusal's codes."""
    found: dict[str, list[str]] = {}
    parts = [_AUTH_REFUSALS, refusals or {}]
    parts += [_BODY_REFUSALS] if body else []
    parts += [_APP_REFUSALS] if about_app else []
    parts += [{"403": ("cross_site_request",)}] if method in _UNSAFE else []
    for part in parts:
        for code_status, codes in part.items():
            found.setdefault(code_status, []).extend(codes)
    answered: Schema = {"description": "No content"} if answer is None else answer
    built: Schema = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "security": security(scope),
        "x-scope": scope,
        "responses": {
            status: answered,
            **{
                code_status: refusal(code_status, found[code_status])
                for code_status in sorted(found)
            },
        },
    }
    if description:
        built["description"] = description
    if parameters:
        built["parameters"] = parameters
    if body:
        built["requestBody"] = {"required": body_required, "content": {JSON: {"schema": ref(body)}}}
    return built


def answer(description: str, schema: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description}
