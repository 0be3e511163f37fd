"""Request bytes to a list of event objects, or a ParseError with an HTTP status and a code."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from web.core.errors import Rejected
from web.core.settings import Limits
from web.core.validation.envelope import ID_KEYS, TYPE_NAMES, json_type

ACCEPTED_MEDIA_TYPES = ("application/json", "text/plain")


class ParseError(Rejected):
    """The request body cannot be read as events; nothing from it is stored."""


@dataclass(slots=True)  # not frozen: built per event (see QueuedEvent)
class ParsedEvent:
    event: dict[str, Any]
    event_id: str | None  # the client's id, when it sent one
    # The event serialised once, for the size check, and reused as the stored payload.
    json: str = ""


@dataclass(frozen=True, slots=True)
class ParsedBody:
    events: list[ParsedEvent]
    is_batch: bool


def check_media_type(content_type: str | None) -> None:
    # navigator.sendBeacon and some SDKs send JSON as text/plain, so that is accepted too.
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in ACCEPTED_MEDIA_TYPES or media_type.endswith("+json"):
        return
    shown = media_type or "none"
    raise ParseError(
        415, "unsupported_media_type", f"Content-Type must be application/json, got {shown}"
    )


def decompress(raw: bytes, content_encoding: str | None, limits: Limits) -> bytes:
    """Undo gzip/deflate, refusing output over the request limit (a gzip bomb stops early)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise ParseError(
            415, "unsupported_encoding", f"Content-Encoding must be gzip or deflate, got {encoding}"
        )
    wbits = 31 if encoding == "gzip" else 15
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limits.max_request_bytes + 1)
    except zlib.error as exc:
        raise ParseError(
            400, "invalid_encoding", f"the body is not valid {encoding}: {exc}"
        ) from None
    if len(body) > limits.max_request_bytes or inflater.unconsumed_tail:
        raise ParseError(
            413,
            "request_too_large",
            f"the decompressed body exceeds the limit of {limits.max_request_bytes} bytes",
        )
    if not inflater.eof or inflater.unused_data:
        # A stream cut short never reaches its checksum; bytes after it are not part of it.
        raise ParseError(
            400, "invalid_encoding", f"the {encoding} body is truncated or has trailing data"
        )
    return body


def parse_json(body: bytes, limits: Limits) -> Any:
    """The body's JSON value, refused when nested deeper than allowed or holding U+0000."""
    value = _load_json(body, limits)
    check_nesting_and_nulls(value, body, limits.max_json_depth)
    return value


def _load_json(body: bytes, limits: Limits) -> Any:
    if len(body) > limits.max_request_bytes:
        raise ParseError(
            413,
            "request_too_large",
            f"the body exceeds the limit of {limits.max_request_bytes} bytes",
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # Only a body that failed to parse is looked at for blankness: strip() copies it.
        if not body.strip():
            raise ParseError(400, "empty_body", "the request body is empty") from None
        raise _json_error(str(exc), body[exc.pos : exc.pos + 9]) from None


def check_nesting_and_nulls(value: Any, text: bytes, max_depth: int) -> None:
    """Refuse a value (whose JSON text is `text`) nested deeper than max_depth or holding U+0000.

    The text says where no walk is needed, which is nearly always: JSON can only spell
    U+0000 as an escape (orjson refuses a raw NUL byte), and every level of nesting opens
    a bracket, so a text with no more brackets than max_depth cannot be too deep.
    """
    if b"\\u0000" in text:
        _check_depth_and_nulls(value, max_depth, strings=True)
    elif text.count(b"{") + text.count(b"[") > max_depth:
        _check_depth_and_nulls(value, max_depth, strings=False)


def parse_events(
    raw: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    limits: Limits,
    allow_batch: bool = True,
) -> ParsedBody:
    """Read one event object, or (when allowed) an array of them."""
    check_media_type(content_type)
    body = decompress(raw, content_encoding, limits)
    value = _load_json(body, limits)
    if isinstance(value, list) and allow_batch:
        # Each event is checked for nesting on its own serialised text (_parsed_event): a
        # batch's text has more brackets than max_depth, an event's seldom has.
        return ParsedBody(events_of_batch(value, limits), is_batch=True)
    check_nesting_and_nulls(value, body, limits.max_json_depth)
    if isinstance(value, dict):
        return ParsedBody([_parsed_event(value, 0, limits)], is_batch=False)
    expected = "an event object or an array of events" if allow_batch else "an event object"
    raise ParseError(
        400, "invalid_top_level", f"the body must be {expected}, got {_json_type(value)}"
    )


def events_of_batch(
    items: list[Any], limits: Limits, id_keys: tuple[str, ...] = ID_KEYS
) -> list[ParsedEvent]:
    """The events of an array, each an object nested at most max_json_depth - 1 levels.

    id_keys name the fields that hold the client's event id, the first present wins.
    """
    if not items:
        raise ParseError(400, "empty_batch", "the batch holds no events")
    if len(items) > limits.max_events_per_request:
        raise ParseError(
            413,
            "too_many_events",
            f"a request holds at most {limits.max_events_per_request} events, got {len(items)}",
        )
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ParseError(
                400, "invalid_event", f"event {index} must be an object, got {_json_type(item)}"
            )
        # The array is the first level.
        events.append(
            _parsed_event(item, index, limits, max_depth=limits.max_json_depth - 1, id_keys=id_keys)
        )
    return events


def _parsed_event(
    event: dict[str, Any],
    index: int,
    limits: Limits,
    *,
    max_depth: int | None = None,
    id_keys: tuple[str, ...] = ID_KEYS,
) -> ParsedEvent:
    """The event with its id and JSON text; its nesting checked too when max_depth is given."""
    serialised = orjson.dumps(event)
    size = len(serialised)
    if size > limits.max_event_bytes:
        raise ParseError(
            413,
            "event_too_large",
            f"event {index} is {size} bytes; one event may be at most {limits.max_event_bytes}",
        )
    if max_depth is not None:  # orjson writes U+0000 back as the escape the check looks for
        check_nesting_and_nulls(event, serialised, max_depth)
    return ParsedEvent(event, client_event_id(event, index, limits, id_keys), serialised.decode())


def client_event_id(
    event: dict[str, Any], index: int, limits: Limits, id_keys: tuple[str, ...] = ID_KEYS
) -> str | None:
    """The client's id for the event, which makes its retries idempotent."""
    for key in id_keys:
        value = event.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ParseError(
                400,
                "invalid_event_id",
                f"event {index}: {key} must be a string, got {_json_type(value)}",
            )
        text = str(value).strip()
        if not text or len(text) > limits.max_event_id_length:
            raise ParseError(
                400,
                "invalid_event_id",
                f"event {index}: {key} must be 1 to {limits.max_event_id_length} characters",
            )
        return text
    return None


def _check_depth_and_nulls(value: Any, max_depth: int, *, strings: bool = True) -> None:
    # Iterative walk: a recursive one is what turns deep input into a RecursionError.
    # Without `strings`, only containers are visited.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise _too_deep(max_depth)
            for key, child in item.items():
                if strings and "\x00" in key:
                    raise _null_character()
                if strings or isinstance(child, (dict, list)):
                    stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise _too_deep(max_depth)
            stack.extend(
                (child, depth + 1) for child in item if strings or isinstance(child, (dict, list))
            )
        elif strings and isinstance(item, str) and "\x00" in item:
            raise _null_character()


def _json_error(detail: str, at_error: bytes) -> ParseError:
    if "UTF-8" in detail or "surrogate" in detail:
        return ParseError(400, "invalid_utf8", f"the body is not valid UTF-8 text: {detail}")
    if "depth limit" in detail:
        return ParseError(400, "too_deep", "the JSON is nested too deeply")
    if "infinity" in detail.lower() or at_error.lstrip(b"-").startswith((b"NaN", b"Infinity")):
        return ParseError(400, "invalid_number", f"numbers must be finite: {detail}")
    return ParseError(400, "invalid_json", f"the body is not valid JSON: {detail}")


def _too_deep(max_depth: int) -> ParseError:
    return ParseError(400, "too_deep", f"the JSON is nested deeper than {max_depth} levels")


def _null_character() -> ParseError:
    # PostgreSQL text and jsonb cannot hold U+0000: refused here, it cannot poison the queue.
    return ParseError(400, "null_character", "strings must not contain the character U+0000")


def _json_type(value: Any) -> str:
    kind = json_type(value)
    return TYPE_NAMES["number" if kind == "integer" else kind]  # to a sender, 1 is a number
