"""JSON Schema errors turned into issues a QA engineer can read: path, rule and a sentence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonschema_rs
import orjson

from web.core.validation.envelope import TYPE_NAMES, describe
from web.core.validation.verdict import Issue

_FORMAT_NAMES = {
    "date-time": "an RFC 3339 date-time such as 2025-12-10T15:45:00Z",
    "date": "a date such as 2025-12-10",
    "time": "a time such as 15:45:00Z",
    "email": "an email address",
    "idn-email": "an email address",
    "uri": "an absolute URI",
    "uri-reference": "a URI reference",
    "uuid": "a UUID",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "hostname": "a host name",
    "duration": "an ISO 8601 duration such as P3D",
    "regex": "a regular expression",
}


def pointer(parts: Sequence[str | int]) -> str:
    """A JSON Pointer (RFC 6901) from path segments."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def subject(parts: Sequence[str | int]) -> str:
    """How a message names the value at a path: `price`, `products[2]`, or `the event`."""
    if not parts:
        return "the event"
    last = parts[-1]
    if isinstance(last, int):
        return f"{subject(parts[:-1])}[{last}]"
    return str(last)


def issues_from_error(error: jsonschema_rs.ValidationError, instance: Any) -> list[Issue]:
    """One schema error as one issue, or several (one per unexpected property)."""
    parts: list[str | int] = list(error.instance_path)
    kind = error.kind
    rule = kind.name
    details = kind.as_dict()
    value = _value_at(instance, parts)
    who = subject(parts)
    got = describe(value)

    if rule == "required":
        missing = str(details.get("property"))
        return [
            Issue(pointer([*parts, missing]), rule, f"missing required property {missing}", missing)
        ]
    if rule in ("additionalProperties", "unevaluatedProperties"):
        unexpected = details.get("unexpected") or []
        return [
            Issue(
                pointer([*parts, name]),
                rule,
                f"unexpected property {name}: the plan does not allow it here",
                None,
                name,
            )
            for name in unexpected
        ]
    expected, message = _explain(rule, details, who, got, value)
    return [Issue(pointer(parts), rule, message or f"{who}: {error.message}", expected, value)]


def _explain(
    rule: str, details: dict[str, Any], who: str, got: str, value: Any
) -> tuple[Any, str | None]:
    limit = details.get("limit")
    if rule == "type":
        types = details.get("types") or [details.get("type")]
        wanted = " or ".join(TYPE_NAMES.get(str(t), str(t)) for t in types)
        return types, f"{who} must be {wanted}, got {got}"
    if rule == "enum":
        options = details.get("options") or []
        shown = ", ".join(o if isinstance(o, str) else _json_text(o) for o in options)
        return options, f"{who} must be one of {shown}, got {_short(value)}"
    if rule == "const":
        expected = details.get("expected_value")
        return expected, f"{who} must be {_short(expected)}, got {_short(value)}"
    if rule == "pattern":
        pattern = details.get("pattern")
        return pattern, f"{who} must match the pattern {pattern}, got {_short(value)}"
    if rule == "multipleOf":
        factor = details.get("multiple_of")
        return factor, f"{who} must be a multiple of {factor}, got {got}"
    if rule == "format":
        fmt = str(details.get("format"))
        return fmt, f"{who} must be {_FORMAT_NAMES.get(fmt, f'a valid {fmt}')}, got {got}"
    sentences = {
        "minimum": f"{who} must be at least {limit}, got {got}",
        "maximum": f"{who} must be at most {limit}, got {got}",
        "exclusiveMinimum": f"{who} must be greater than {limit}, got {got}",
        "exclusiveMaximum": f"{who} must be less than {limit}, got {got}",
        "minLength": f"{who} must be at least {limit} characters long, got {_length(value)}",
        "maxLength": f"{who} must be at most {limit} characters long, got {_length(value)}",
        "minItems": f"{who} must have at least {limit} items, got {_length(value)}",
        "maxItems": f"{who} must have at most {limit} items, got {_length(value)}",
        "minProperties": f"{who} must have at least {limit} properties, got {_length(value)}",
        "maxProperties": f"{who} must have at most {limit} properties, got {_length(value)}",
        "uniqueItems": f"{who} must not contain the same item twice",
        "falseSchema": f"{who} is not allowed by the plan",
    }
    return limit, sentences.get(rule)


def _value_at(instance: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        try:
            instance = instance[part]
        except (KeyError, IndexError, TypeError):
            return None
    return instance


def _short(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 40 else f'"{value[:37]}..."'
    return _json_text(value)


def _json_text(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _length(value: Any) -> int | str:
    return len(value) if isinstance(value, str | list | dict) else "?"
