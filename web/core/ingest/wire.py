"""What every wire format shares: the request as read, the events it delivers, the answer."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from web.core.errors import Rejected
from web.core.parsing import ParsedEvent, check_media_type, decompress, parse_json
from web.core.settings import Limits

JSON = "application/json"
# Views an event as it is judged and named (an SDK's identify call is named "identify");
# the event as sent is what is stored.
JudgedAs = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass(slots=True)  # not frozen: built per request, and a frozen __init__ costs 3x
class WireRequest:
    """An ingest request as the web edge read it: no framework types."""

    method: str
    route: str  # the name of the route it matched
    path_params: Mapping[str, str]
    query: Mapping[str, str]  # the first value of each parameter
    # Lower-case names; only the ones ingest reads (web/ingest.py: _READ_HEADERS).
    headers: Mapping[str, str]
    body: bytes
    # scheme://host[/root] as the client reached this server, for documents that point back.
    base_url: str = ""
    # The session a session-scoped host names: <server>/v1/session/<id>/...
    path_session: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Delivery:
    """The events a request carries and what it says about where they belong."""

    events: list[ParsedEvent]
    app_id: str | None = None  # named in the path; else the app is found by its key
    write_key: str | None = None  # presented in a header or the body; None: not presented
    # An Authorization header whose Basic user is the key, read only once the app is known
    # (a malformed one must not hide that the app does not exist).
    authorization: str | None = None
    judged_as: JudgedAs | None = None
    is_batch: bool = True
    # Alternative references to the app (Snowplow's aid): an app id or a write key.
    app_alias: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def json_answer(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps(document), JSON, headers or {})


@dataclass(frozen=True, slots=True)
class Route:
    """One URL a wire format serves. Paths name parameters as <name> (one segment each)."""

    name: str  # the endpoint label in metrics and the OpenAPI operation id
    path: str
    methods: tuple[str, ...] = ("POST",)
    # Answered without the pipeline (a settings or flags document); None: events come in.
    document: Callable[[WireRequest], Answer] | None = None
    summary: str = ""
    body_schema: str = ""  # the OpenAPI schema of its body, when not the format's
    # Refusals the SDKs sending here would retry for ever, and the status they take as final.
    final_statuses: Mapping[int, int] = field(default_factory=dict)


class WireFormat:
    """One SDK family's protocol: how its requests carry events and what it expects back.

    A subclass names its routes and reads a request into a Delivery; the answers and the
    error bodies default to the native ones. Nothing here performs I/O.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # the SDKs it serves, as the API description groups its paths
    routes: ClassVar[tuple[Route, ...]]
    # Request headers its browser SDK sends that a CORS preflight must allow.
    cors_headers: ClassVar[tuple[str, ...]] = ()
    # The status a successful request is answered with.
    accepted_status: ClassVar[int] = 200
    # For the API description: how the app, the event id and the name are found, and the
    # OpenAPI schemas (under components) of the body, the answer and the error answers.
    description: ClassVar[str] = ""
    body_schema: ClassVar[str] = ""
    result_schema: ClassVar[str] = "SdkResult"
    error_schema: ClassVar[str] = "Error"
    # Whether its SDKs may send the write key as the HTTP Basic user.
    basic_auth: ClassVar[bool] = False
    # Whether its browser SDK sends cookies (credentials: include): then the answers must
    # name the page's origin and allow credentials; otherwise they allow any origin.
    credentials: ClassVar[bool] = False

    def limits(self, limits: Limits) -> Limits:
        """The limits on this format's paths (an SDK may promise other ones)."""
        return limits

    def decode(self, request: WireRequest, limits: Limits) -> Any:
        """The body's JSON value: media type checked, gzip or deflate undone."""
        check_media_type(request.header("content-type"))
        body = decompress(request.body, request.header("content-encoding"), limits)
        return parse_json(body, limits)

    def recognises(self, value: Any) -> bool:
        """Whether a decoded body is this format's (for a path two formats share)."""
        return True

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        raise NotImplementedError

    def accepted(
        self, request: WireRequest, delivery: Delivery, results: list[dict[str, Any]]
    ) -> Answer:
        return json_answer(self.accepted_status, {"success": True, "results": results})

    def refused(self, error: Rejected, delivery: Delivery | None = None) -> Answer:
        """The answer to a refusal; `delivery` is what was read of the request, if anything."""
        document = error_document(error.code, error.message, error.details)
        return json_answer(error.status, document, error.headers)


def error_document(
    code: str, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON body of every API error: a machine-readable code and a sentence."""
    return {"error": {"code": code, "message": message, **(details or {})}}


def json_object(value: Any, shape: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(400, "invalid_top_level", f"the body must be {shape}")
    return value


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic Authorization header; None when it is not Basic.

    Raises ValueError when it claims to be Basic but cannot be decoded.
    """
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("the Authorization header is malformed") from None
    user, _, password = decoded.partition(":")
    return user, password


def basic_user(authorization: str | None) -> str | None:
    """The Basic user name, which SDKs send as the write key; 401 when malformed."""
    try:
        credentials = basic_credentials(authorization)
    except ValueError as exc:
        raise Rejected(401, "invalid_write_key", str(exc)) from None
    return (credentials[0] or None) if credentials else None
