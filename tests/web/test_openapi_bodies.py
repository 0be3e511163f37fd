"""The request types /openapi.json documents accept exactly the bodies the routes' own checks
accept: generated bodies, valid and not, are judged by both and must get the same answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from web.alerts import parse_alert_settings
from web.core.errors import Rejected
from web.core.settings import Limits
from web.dead_letters import parse_retry_ids
from web.openapi import openapi_document
from web.plans import parse_revalidate_options
from web.retention import parse_retention

EXAMPLES = settings(max_examples=300, deadline=None, database=None)


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    document = openapi_document(Limits())
    return jsonschema.Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


def accepted(parse: Callable[[dict[str, Any]], object], body: dict[str, Any]) -> bool:
    try:
        parse(body)
    except Rejected as exc:
        assert exc.status == 400
        return False
    return True


def agree(name: str, parse: Callable[[dict[str, Any]], object], body: dict[str, Any]) -> None:
    by_schema = validator(name).is_valid(body)
    assert by_schema == accepted(parse, body), (name, body, by_schema)


JUNK = st.sampled_from([None, True, "1", 1.5, [], {}])
WHOLE = st.integers(min_value=-(2**64), max_value=2**64)


def with_extra(body: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The body, sometimes with a key nobody defines."""
    return st.one_of(body, body.map(lambda found: {**found, "surprise": 1}))


@EXAMPLES
@given(
    body=with_extra(
        st.fixed_dictionaries(
            {}, optional={"days": st.one_of(st.integers(-2, 4000), st.sampled_from([2**40]), JUNK)}
        )
    )
)
def test_retention_change_type_and_check_agree(body: dict[str, Any]) -> None:
    agree("RetentionChange", parse_retention, body)


@EXAMPLES
@given(
    body=with_extra(
        st.fixed_dictionaries(
            {},
            optional={
                "version": st.one_of(WHOLE, JUNK),
                "status": st.one_of(st.sampled_from(["valid", "invalid", "all", "VALID"]), JUNK),
            },
        )
    )
)
def test_revalidate_options_type_and_check_agree(body: dict[str, Any]) -> None:
    agree("RevalidateOptions", parse_revalidate_options, body)


@EXAMPLES
@given(
    body=with_extra(
        st.fixed_dictionaries(
            {}, optional={"ids": st.one_of(st.lists(st.one_of(WHOLE, JUNK), max_size=4), JUNK)}
        )
    )
)
def test_retry_request_type_and_check_agree(body: dict[str, Any]) -> None:
    agree("RetryRequest", parse_retry_ids, body)


ENABLED = st.one_of(st.booleans(), JUNK)
RECIPIENT = st.sampled_from(
    ["qa@example.com", "a@b", "not-an-email", "x@y,z", "", "a b@c.d", "<a>@b.c", "q" * 65 + "@x", 5]
)
URL = st.sampled_from(
    [
        "https://hooks.example.com/lvd",
        "http://localhost:8080/a?b=1",
        "HTTP://EXAMPLE.COM",
        "ftp://example.com",
        "https://",
        "http://[",
        "http://:80/x",
        "http://@/",
        "example.com",
        "https://a" + "b" * 2000,
        None,
        5,
    ]
)


def section(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(with_extra(st.fixed_dictionaries({}, optional=fields)), JUNK)


ALERT_SETTINGS = with_extra(
    st.fixed_dictionaries(
        {},
        optional={
            "email": section(
                enabled=ENABLED, recipients=st.one_of(st.lists(RECIPIENT, max_size=22), JUNK)
            ),
            "webhook": section(enabled=ENABLED, url=URL),
            "new_failures": section(enabled=ENABLED),
            "invalid_share": section(
                enabled=ENABLED,
                threshold=st.one_of(
                    st.floats(-1, 2, allow_nan=False), st.integers(-1, 2), st.sampled_from(["0.2"])
                ),
                window_seconds=st.one_of(st.integers(0, 100_000), JUNK),
                min_events=st.one_of(st.integers(-1, 1_000_001), JUNK),
            ),
        },
    )
)


@EXAMPLES
@given(body=ALERT_SETTINGS)
def test_alert_settings_type_and_check_agree(body: dict[str, Any]) -> None:
    agree("AlertSettings", parse_alert_settings, body)


def test_the_property_tests_meet_both_answers() -> None:
    # Each test above can fail: both kinds of body occur (valid ones are not vanishingly rare).
    assert accepted(parse_retention, {"days": 30})
    assert not accepted(parse_retention, {"days": 0})
    assert validator("AlertSettings").is_valid({"invalid_share": {"threshold": 1}})
    assert not validator("AlertSettings").is_valid({"webhook": {"url": "https://"}})
