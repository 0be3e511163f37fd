"""Hygiene checks: each rule against values it must flag and values it must leave alone,
masking, sizes against each destination's limit, and that a warning never makes an event
invalid."""

from __future__ import annotations

import base64
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from web.core.validation import hygiene, validate
from web.core.validation.hygiene import (
    NEAR_LIMIT_SHARE,
    PII_API_KEY,
    PII_CARD_NUMBER,
    PII_EMAIL,
    PII_JWT,
    PII_PHONE,
    SIZE_LIMITS,
    SIZE_NEAR_LIMIT,
    add_hygiene,
    check_hygiene,
    json_size,
    luhn_valid,
    string_findings,
)
from web.core.validation.plan import compile_plan


def rules_in(text: str) -> set[str]:
    return {rule for rule, _, _ in string_findings(text)}


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


REAL_JWT = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': '1234567890'})}.c2lnbmF0dXJl"
NO_ALG_JWT = f"{_b64({'typ': 'JWT'})}.{_b64({'sub': '1'})}.c2lnbmF0dXJl"
NOT_JSON_JWT = f"eyJub3QganNvbg.{_b64({'sub': '1'})}.c2ln"

POSITIVE = [
    (PII_EMAIL, "jane.doe@example.com"),
    (PII_EMAIL, "write to jane+qa@mail.example.co.uk today"),
    (PII_EMAIL, "J@EXAMPLE.ORG"),
    (PII_PHONE, "+15551234567"),
    (PII_PHONE, "+44 20 7946 0958"),
    (PII_PHONE, "+1 (555) 123-4567"),
    (PII_PHONE, "(555) 123-4567"),
    (PII_PHONE, "555-123-4567"),
    (PII_PHONE, "555.123.4567"),
    (PII_PHONE, "020 7946 0958"),
    (PII_PHONE, "07700 900123"),
    (PII_PHONE, "06 12 34 56 78"),
    (PII_PHONE, "call me on +49 30 1234567, thanks"),
    (PII_CARD_NUMBER, "4111111111111111"),
    (PII_CARD_NUMBER, "4111 1111 1111 1111"),
    (PII_CARD_NUMBER, "5500-0000-0000-0004"),
    (PII_CARD_NUMBER, "3782 822463 10005"),
    (PII_CARD_NUMBER, "paid with 6011111111111117 yesterday"),
    (PII_CARD_NUMBER, "4111111111111111 12/25"),
    (PII_JWT, REAL_JWT),
    (PII_JWT, f"Bearer {REAL_JWT}"),
    (PII_JWT, f"{_b64({'alg': 'none'})}.{_b64({'sub': '1'})}."),
    (PII_API_KEY, "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (PII_API_KEY, "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (PII_API_KEY, "rk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (PII_API_KEY, "AKIAIOSFODNN7EXAMPLE"),
    (PII_API_KEY, "key=ASIAY34FZKBOKMUTVV7A;"),
    (PII_API_KEY, "ghp_" + "a1B2" * 9),
    (PII_API_KEY, "github_pat_" + "11ABCDEFG0" * 3),
    (PII_API_KEY, "xoxb-" + "1234567890-abcdefghij"),
    (PII_API_KEY, "xoxp-" + "1234567890-abcdefghij"),
    (PII_API_KEY, "xoxa-" + "2-1234567890-abcdefghij"),
    (
        PII_API_KEY,
        "https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    ),
    (PII_API_KEY, "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"),
]

NEGATIVE = [
    # Handles, hosts without a top-level domain, an @ alone.
    (PII_EMAIL, "@handle"),
    (PII_EMAIL, "follow @jane_doe on the app"),
    (PII_EMAIL, "me@localhost"),
    (PII_EMAIL, "user@"),
    (PII_EMAIL, "a@b.c"),
    # Plain numbers, timestamps, ids, prices, versions, addresses.
    (PII_PHONE, "5551234567"),
    (PII_PHONE, "2025-12-10T15:45:00Z"),
    (PII_PHONE, "2025-12-10"),
    (PII_PHONE, "1733580000000"),
    (PII_PHONE, "ORD-918273"),
    (PII_PHONE, "ORD-555-123-4567"),
    (PII_PHONE, "1,299.00"),
    (PII_PHONE, "$ 1 299.99"),
    (PII_PHONE, "10.0.19041.1"),
    (PII_PHONE, "192.168.100.200"),
    (PII_PHONE, "123e4567-e89b-12d3-a456-426614174000"),
    (PII_PHONE, "at 15:45:00 on 10.12.2025"),
    (PII_PHONE, "+44 20"),
    (PII_PHONE, "555-123-4567x"),
    (PII_PHONE, "SKU 0012-3456-78"),
    # Luhn-invalid card-like numbers, epoch milliseconds, too short or too long.
    (PII_CARD_NUMBER, "4111111111111112"),
    (PII_CARD_NUMBER, "4111 1111 1111 1112"),
    (PII_CARD_NUMBER, "1733580000000"),
    (PII_CARD_NUMBER, "1111111111111117"),
    (PII_CARD_NUMBER, "411111111111"),
    (PII_CARD_NUMBER, "41111111111111111111111"),
    (PII_CARD_NUMBER, "order 12345678901234567890"),
    # Three dotted words; a header without alg; a header that is not JSON.
    (PII_JWT, "one.two.three"),
    (PII_JWT, "eyJfoo.bar.baz and more words"),
    (PII_JWT, NO_ALG_JWT),
    (PII_JWT, NOT_JSON_JWT),
    # Near misses of each key shape.
    (PII_API_KEY, "sk_live_short"),
    (PII_API_KEY, "pk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (PII_API_KEY, "sk_prod_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (PII_API_KEY, "AKIAIOSFODNN7EXAMPL"),
    (PII_API_KEY, "AKIAiosfodnn7example"),
    (PII_API_KEY, "XAKIAIOSFODNN7EXAMPLE"),
    (PII_API_KEY, "ghp_" + "a" * 35),
    (PII_API_KEY, "ghx_" + "a" * 36),
    (PII_API_KEY, "xoxz-" + "1234567890-abcdefghij"),
    (PII_API_KEY, "xoxb-123"),
    (PII_API_KEY, "AIza" + "a" * 34),
    (PII_API_KEY, "https://hooks.slack.com/apps/whatever/it/is/here"),
]


@pytest.mark.parametrize(("rule", "value"), POSITIVE)
def test_rule_flags_value(rule: str, value: str) -> None:
    assert rule in rules_in(value)


@pytest.mark.parametrize(("rule", "value"), NEGATIVE)
def test_rule_leaves_value_alone(rule: str, value: str) -> None:
    assert rule not in rules_in(value)


@pytest.mark.parametrize(
    "value",
    [
        "Order Completed",
        "https://shop.example.com/p/ABC-0001?ref=home",
        "en-US",
        "web",
        "USD",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0.6099.109",
        "507f191e810c19729de860ea",
        "2015-02-23T22:28:55.111Z",
    ],
)
def test_ordinary_values_are_clean(value: str) -> None:
    assert string_findings(value) == []


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("value", "masked", "secret"),
    [
        ("jane.doe@example.com", "j***@example.com", "jane.doe"),
        ("4111 1111 1111 1234".replace("1234", "1111"), "***1111", "4111 1111"),
        ("+44 20 7946 0958", "***58", "7946"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_***", "4eC39Hq"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA***", "IOSFODNN"),
        (REAL_JWT, "eyJ***", REAL_JWT.split(".")[1]),
    ],
)
def test_message_and_actual_are_masked(value: str, masked: str, secret: str) -> None:
    (issue,) = check_hygiene({"properties": {"field": value}}, size_bytes=100)
    assert issue.actual == masked
    assert masked in issue.message
    assert secret not in issue.message and secret not in str(issue.as_dict())
    assert issue.path == "/properties/field"
    assert "/properties/field" in issue.message
    assert issue.severity == "warning"


def test_walks_properties_traits_context_and_nested_values() -> None:
    event = {
        "event": "Signed Up",
        "userId": "jane@example.com",
        "traits": {"phone": "+15551234567"},
        "context": {"headers": [{"authorization": f"Bearer {REAL_JWT}"}]},
        "properties": {"payment": {"cards": [4111111111111111, {"note": "AKIAIOSFODNN7EXAMPLE"}]}},
    }
    found = {(issue.path, issue.rule) for issue in check_hygiene(event, size_bytes=300)}
    assert found == {
        ("/userId", PII_EMAIL),
        ("/traits/phone", PII_PHONE),
        ("/context/headers/0/authorization", PII_JWT),
        ("/properties/payment/cards/0", PII_CARD_NUMBER),
        ("/properties/payment/cards/1/note", PII_API_KEY),
    }


def test_keys_are_not_flagged_only_values() -> None:
    event = {"properties": {"jane@example.com": "yes", "a/b~c": "x@example.com"}}
    (issue,) = check_hygiene(event, size_bytes=100)
    assert issue.path == "/properties/a~1b~0c"


def test_numbers_that_are_not_cards_and_booleans_are_left_alone() -> None:
    event = {"ts": 1733580000000, "n": 4111111111111112, "ok": True, "price": 4111111111111111.0}
    assert check_hygiene(event, size_bytes=100) == []


@pytest.mark.parametrize("limit", SIZE_LIMITS, ids=lambda limit: limit.destination)
def test_size_just_under_and_over_80_percent_of_each_limit(limit: Any) -> None:
    threshold = int(limit.limit_bytes * NEAR_LIMIT_SHARE)
    under = [i for i in check_hygiene({}, size_bytes=threshold - 1) if i.rule == SIZE_NEAR_LIMIT]
    at = [i for i in check_hygiene({}, size_bytes=threshold + 1) if i.rule == SIZE_NEAR_LIMIT]
    named_under = under and limit.destination in under[0].message
    assert not named_under
    (issue,) = at
    assert f"{limit.destination}'s limit of {limit.what}" in issue.message
    assert issue.expected[limit.destination] == limit.limit_bytes
    assert issue.actual == threshold + 1
    assert issue.severity == "warning"


def test_size_over_a_limit_says_over() -> None:
    (issue,) = check_hygiene({}, size_bytes=40_000)
    assert "over Segment's limit of 32 KB per event (122 %)" in issue.message
    assert "PostHog" not in issue.message


def test_size_is_measured_when_not_given() -> None:
    event = {"blob": "x" * 30_000}
    (issue,) = check_hygiene(event)
    assert issue.actual == len(orjson.dumps(event))
    assert json_size('{"a":"é"}') == len('{"a":"é"}'.encode())


def test_size_is_measured_on_the_json_text_ingest_has() -> None:
    event = {"blob": "é" * 15_000}
    text = orjson.dumps(event).decode()
    (issue,) = check_hygiene(event, text)
    assert issue.actual == len(text.encode()) == 30_011


def test_warnings_never_make_an_event_invalid() -> None:
    event = {
        "eventName": "signed_up",
        "timestamp": "2025-12-10T15:45:00Z",
        "email": "jane@example.com",
        "blob": "x" * 30_000,
    }
    for verdict in (
        validate(event),
        compile_plan({"events": {"signed_up": {"type": "object"}}}, 1).judge(event),
    ):
        add_hygiene(verdict, event)
        assert verdict.status == "valid"
        assert {i.rule for i in verdict.issues} == {PII_EMAIL, SIZE_NEAR_LIMIT}


def test_an_invalid_event_stays_invalid_and_keeps_its_errors() -> None:
    event = {"eventName": "signed_up", "email": "jane@example.com"}
    verdict = compile_plan(
        {"events": {"signed_up": {"type": "object", "required": ["plan"]}}}, 1
    ).judge(event)
    errors = verdict.issues
    add_hygiene(verdict, event, size_bytes=100)
    assert verdict.status == "invalid"
    assert verdict.issues[: len(errors)] == errors
    assert verdict.issues[-1].rule == PII_EMAIL


@pytest.mark.parametrize(
    "value",
    [
        "call me at 2025-12-10T15:45:00Z on +15551234567",
        "2025-12-10 15:45 jane@example.com",
    ],
)
def test_the_timestamp_and_uuid_shortcut_does_not_hide_findings(value: str) -> None:
    assert string_findings(value) != []


def test_a_value_seen_clean_is_remembered_and_one_with_a_finding_is_not() -> None:
    event = {"name": "Order Completed again", "contact": "jane@example.com"}
    check_hygiene(event, size_bytes=100)
    assert "Order Completed again" in hygiene._known_clean
    assert "jane@example.com" not in hygiene._known_clean
    (again,) = check_hygiene(event, size_bytes=100)
    assert again.rule == PII_EMAIL


def test_an_event_that_is_a_mapping_but_not_a_dict_is_read_by_its_values() -> None:
    event = MappingProxyType({"contact": "jane@example.com", "nested": {"p": "+15551234567"}})
    found = {(issue.path, issue.rule) for issue in check_hygiene(event, size_bytes=100)}
    assert found == {("/contact", PII_EMAIL), ("/nested/p", PII_PHONE)}
