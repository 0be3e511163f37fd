"""Property-based tests: whatever bytes or JSON arrive, only typed, 4xx refusals come out."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.core.errors import Rejected
from web.core.filters import EventFilter
from web.core.parsing import ParseError, parse_events
from web.core.settings import Limits
from web.core.validation import validate
from web.core.validation.plan import compile_plan

LIMITS = Limits(max_event_bytes=4096, max_request_bytes=16384, max_events_per_request=20)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x+json",
        "text/html",
        "",
        "application/json; charset=utf-8",
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson reads as integers; larger become floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
PLAN = compile_plan(
    {
        "events": {
            "Order Completed": {
                "type": "object",
                "required": ["orderId"],
                "properties": {
                    "orderId": {"type": "string", "minLength": 3},
                    "total": {"type": "number", "minimum": 0},
                    "products": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
                    "email": {"format": "email"},
                },
                "additionalProperties": False,
            }
        },
        "naming": "camelCase",
    },
    1,
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pointer_parts(pointer: str) -> list[str]:
    assert pointer == "" or pointer.startswith("/"), pointer
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def resolves(event: Any, pointer: str, *, allow_missing_last: bool) -> bool:
    node = event
    parts = pointer_parts(pointer)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return last and allow_missing_last
    return True


@FAST
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES, gzipped=st.booleans())
def test_parse_events_any_bytes_give_events_or_a_4xx(
    body: bytes, content_type: str, gzipped: bool
) -> None:
    encoding = "gzip" if gzipped else None
    raw = gzip.compress(body) if gzipped else body
    try:
        parsed = parse_events(
            raw, content_type=content_type, content_encoding=encoding, limits=LIMITS
        )
    except ParseError as exc:
        assert 400 <= exc.status < 500 and exc.code and exc.message
        return
    assert all(isinstance(p.event, dict) for p in parsed.events)


@FAST
@given(value=json_values, content_type=CONTENT_TYPES)
def test_parse_events_any_json_gives_objects_or_a_4xx(value: Any, content_type: str) -> None:
    raw = orjson.dumps(value)
    try:
        parsed = parse_events(raw, content_type=content_type, content_encoding=None, limits=LIMITS)
    except ParseError as exc:
        assert 400 <= exc.status < 500
        return
    expected = value if isinstance(value, list) else [value]
    assert [p.event for p in parsed.events] == expected


@FAST
@given(
    extra=st.dictionaries(st.text(max_size=12), json_values, max_size=8),
    name=st.sampled_from(["Order Completed", "Unplanned", ""]) | st.none() | st.integers(),
)
def test_validate_never_raises_and_paths_point_into_the_event(
    extra: dict[str, Any], name: Any
) -> None:
    event = {**extra}
    if name is not None:
        event["eventName"] = name
    for plan in (None, PLAN):
        verdict = validate(event, plan)
        errors = [i for i in verdict.issues if i.severity == "error"]
        assert verdict.status == ("invalid" if errors else "valid")
        for issue in verdict.issues:
            assert issue.message and issue.rule
            # A missing property is located where it should be; everything else exists.
            missing_ok = issue.rule in ("required", "unplanned_event")
            assert resolves(event, issue.path, allow_missing_last=missing_ok), issue


@FAST
@given(
    args=st.dictionaries(
        st.sampled_from(["status", "event_name", "q", "rule", "session", "since", "until", "x"]),
        st.text(max_size=60),
        max_size=6,
    )
)
def test_event_filter_from_args_accepts_or_refuses_with_400(args: dict[str, str]) -> None:
    try:
        filters = EventFilter.from_args(args)
    except Rejected as exc:
        assert (exc.status, exc.code) == (400, "invalid_filter")
        return
    assert EventFilter.from_args(filters.query_args()) == filters
