"""web/core/validation: the envelope every event obeys (a name, a sane timestamp) as a verdict."""

from __future__ import annotations

from typing import Any

import pytest

from web.core.validation import Issue, Verdict, validate
from web.core.validation.envelope import (
    MAX_NAME_LENGTH,
    check_envelope,
    describe,
    event_name_of,
    is_rfc3339,
    name_key_of,
)

QUICK_START = {"eventName": "user_login", "userId": 123, "timestamp": "2025-12-10T15:45:00Z"}


def only_issue(event: dict[str, Any]) -> Issue:
    verdict = validate(event)
    assert verdict.status == "invalid"
    assert len(verdict.issues) == 1, verdict.issues
    return verdict.issues[0]


def test_validate_quick_start_event_is_valid() -> None:
    verdict = validate(QUICK_START)
    assert verdict.status == "valid"
    assert verdict.issues == ()
    assert verdict.issues_as_dicts() == []
    assert verdict.plan_version is None


@pytest.mark.parametrize(
    ("event", "name", "key"),
    [
        ({"eventName": "a", "event": "b", "event_name": "c"}, "a", "eventName"),
        ({"event": "b", "event_name": "c"}, "b", "event"),
        ({"event_name": "c"}, "c", "event_name"),
        ({"event_name": "c", "event": "b"}, "b", "event"),
        ({"name": "x", "type": "track"}, None, "eventName"),
        ({}, None, "eventName"),
        # Presence, not truthiness, picks the key: a null eventName is not skipped.
        ({"eventName": None, "event": "b"}, None, "eventName"),
        ({"eventName": 5, "event": "b"}, 5, "eventName"),
    ],
)
def test_event_name_of_uses_the_first_present_key(
    event: dict[str, Any], name: object, key: str
) -> None:
    assert event_name_of(event) == name
    assert name_key_of(event) == key


@pytest.mark.parametrize("key", ["eventName", "event", "event_name"])
def test_validate_name_under_each_key_is_valid(key: str) -> None:
    assert validate({key: "checkout_completed"}).status == "valid"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"userId": 1},
        {"name": "user_login"},
        {"EventName": "user_login"},
        {"eventname": "user_login"},
    ],
)
def test_validate_missing_name_is_required_at_eventname(event: dict[str, Any]) -> None:
    issue = only_issue(event)
    assert (issue.path, issue.rule, issue.severity) == ("/eventName", "required", "error")
    assert issue.message == "missing required property eventName (or event, event_name)"


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("eventName", 42, "the number 42"),
        ("eventName", 1.5, "the number 1.5"),
        ("eventName", None, "null"),
        ("event", {"a": 1}, "an object"),
        ("event_name", ["a", "b"], "an array of 2 items"),
        ("eventName", True, "the boolean true"),
        ("event", False, "the boolean false"),
    ],
)
def test_validate_non_string_name_is_type_at_its_key(key: str, value: object, shown: str) -> None:
    issue = only_issue({key: value})
    assert (issue.path, issue.rule) == (f"/{key}", "type")
    assert issue.expected == "string"
    assert issue.actual == value
    assert issue.message == f"{key} must be a string, got {shown}"


@pytest.mark.parametrize(
    ("key", "value"),
    [("eventName", ""), ("event", " "), ("event_name", "\t\n "), ("eventName", "\u3000")],
)
def test_validate_empty_or_blank_name_is_min_length(key: str, value: str) -> None:
    issue = only_issue({key: value})
    assert (issue.path, issue.rule, issue.expected, issue.actual) == (
        f"/{key}",
        "minLength",
        1,
        value,
    )
    assert issue.message == f"{key} must not be empty"


@pytest.mark.parametrize(
    ("length", "valid"),
    [(1, True), (254, True), (255, True), (256, False), (10_000, False)],
)
def test_validate_name_length_limit_is_255(length: int, valid: bool) -> None:
    assert MAX_NAME_LENGTH == 255
    verdict = validate({"event": "n" * length})
    if valid:
        assert verdict.status == "valid"
        return
    (issue,) = verdict.issues
    assert (issue.path, issue.rule, issue.expected, issue.actual) == (
        "/event",
        "maxLength",
        255,
        length,
    )
    assert issue.message == f"event must be at most 255 characters, got {length}"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2025-12-10T15:45:00Z",
        "2025-12-10t15:45:00z",
        "2025-12-10T15:45:00z",
        "2025-12-10t15:45:00Z",
        "2025-12-10T15:45:00.1Z",
        "2025-12-10T15:45:00.123Z",
        "2025-12-10T15:45:00.123456Z",
        "2025-12-10T15:45:00.123456789Z",
        "2025-12-10T15:45:00+00:00",
        "2025-12-10T15:45:00-00:00",
        "2025-12-10T15:45:00+05:30",
        "2025-12-10T15:45:00-08:00",
        "2025-12-10T15:45:00.5+14:00",
        "2024-02-29T00:00:00Z",
        "2025-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ],
)
def test_validate_rfc3339_timestamp_is_valid(timestamp: str) -> None:
    assert is_rfc3339(timestamp) is True
    assert validate({"eventName": "e", "timestamp": timestamp}).status == "valid"


@pytest.mark.parametrize(
    ("timestamp", "shown"),
    [
        ("yesterday", 'the string "yesterday"'),
        ("2025-13-01T00:00:00Z", 'the string "2025-13-01T00:00:00Z"'),
        ("2025-02-30T00:00:00Z", 'the string "2025-02-30T00:00:00Z"'),
        ("2023-02-29T00:00:00Z", 'the string "2023-02-29T00:00:00Z"'),
        ("2025-12-10", 'the string "2025-12-10"'),
        ("2025-12-10T15:45:00", 'the string "2025-12-10T15:45:00"'),
        ("2025-12-10T15:45Z", 'the string "2025-12-10T15:45Z"'),
        ("2025-12-10T24:00:00Z", 'the string "2025-12-10T24:00:00Z"'),
        ("2025-12-10T15:60:00Z", 'the string "2025-12-10T15:60:00Z"'),
        ("2025-12-10T15:45:00.Z", 'the string "2025-12-10T15:45:00.Z"'),
        ("2025-12-10T15:45:00+0530", 'the string "2025-12-10T15:45:00+0530"'),
        ("2025-12-10T15:45:00+24:00", 'the string "2025-12-10T15:45:00+24:00"'),
        # RFC 3339 time-numoffset: the minute is 00-59.
        ("2025-12-10T15:45:00+05:60", 'the string "2025-12-10T15:45:00+05:60"'),
        ("2025-12-10T15:45:00Z\n", 'the string "2025-12-10T15:45:00Z\n"'),
        (" 2025-12-10T15:45:00Z", 'the string " 2025-12-10T15:45:00Z"'),
        ("\uff12025-12-10T15:45:00Z", 'the string "\uff12025-12-10T15:45:00Z"'),
        ("", 'the string ""'),
        (1765381500, "the number 1765381500"),
        (1765381500.5, "the number 1765381500.5"),
        (None, "null"),
        (True, "the boolean true"),
        ({"$date": "2025-12-10T15:45:00Z"}, "an object"),
        (["2025-12-10T15:45:00Z"], "an array of 1 items"),
    ],
)
def test_validate_bad_timestamp_is_format_at_timestamp(timestamp: object, shown: str) -> None:
    assert is_rfc3339(timestamp) is False
    issue = only_issue({"eventName": "e", "timestamp": timestamp})
    assert (issue.path, issue.rule, issue.expected, issue.actual) == (
        "/timestamp",
        "format",
        "date-time",
        timestamp,
    )
    assert issue.message == (
        "timestamp must be an RFC 3339 date-time such as 2025-12-10T15:45:00Z, got " + shown
    )


def test_validate_without_timestamp_is_valid() -> None:
    assert validate({"eventName": "e"}).status == "valid"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"timestamp": "yesterday"}, [("/eventName", "required"), ("/timestamp", "format")]),
        ({"event": 7, "timestamp": 3}, [("/event", "type"), ("/timestamp", "format")]),
        (
            {"eventName": "", "timestamp": "x"},
            [("/eventName", "minLength"), ("/timestamp", "format")],
        ),
        (
            {"event_name": "n" * 300, "timestamp": "2025-02-30T00:00:00Z"},
            [("/event_name", "maxLength"), ("/timestamp", "format")],
        ),
    ],
)
def test_validate_reports_every_error_not_only_the_first(
    event: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    verdict = validate(event)
    assert verdict.status == "invalid"
    assert [(i.path, i.rule) for i in verdict.issues] == expected
    assert check_envelope(event) == list(verdict.issues)


@pytest.mark.parametrize(
    ("severities", "status"),
    [
        ((), "valid"),
        (("warning",), "valid"),
        (("warning", "warning"), "valid"),
        (("error",), "invalid"),
        (("warning", "error"), "invalid"),
        (("error", "warning"), "invalid"),
    ],
)
def test_verdict_status_ignores_warnings(severities: tuple[str, ...], status: str) -> None:
    issues = tuple(
        Issue("/x", "rule", "a message", severity=severity)  # type: ignore[arg-type]
        for severity in severities
    )
    verdict = Verdict(issues=issues, plan_version=3)
    assert verdict.status == status
    assert [d["severity"] for d in verdict.issues_as_dicts()] == list(severities)


def test_issue_as_dict_has_every_field() -> None:
    issue = Issue("/eventName", "type", "eventName must be a string, got null", "string", None)
    assert issue.as_dict() == {
        "path": "/eventName",
        "rule": "type",
        "message": "eventName must be a string, got null",
        "expected": "string",
        "actual": None,
        "severity": "error",
    }


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"eventName": None},
        {"event": {"nested": True}},
        {"eventName": "   "},
        {"eventName": "x" * 256},
        {"eventName": "e", "timestamp": "not a date at all, and rather long as well, truly"},
    ],
)
def test_validate_messages_are_readable_sentences(event: dict[str, Any]) -> None:
    for issue in validate(event).issues:
        message = issue.message
        assert message == message.strip()
        assert 10 <= len(message) <= 200
        assert message.split()[0] in {"missing", "eventName", "event", "event_name", "timestamp"}
        assert "{" not in message and "Issue(" not in message and "dict" not in message
        assert issue.path.lstrip("/") in message or issue.rule == "required"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "the boolean true"),
        (False, "the boolean false"),
        (0, "the number 0"),
        (-3, "the number -3"),
        (2.5, "the number 2.5"),
        ("", 'the string ""'),
        ("hi", 'the string "hi"'),
        ("x" * 40, f'the string "{"x" * 40}"'),
        ("x" * 41, f'the string "{"x" * 37}..."'),
        ([], "an array of 0 items"),
        ([1, 2, 3], "an array of 3 items"),
        ({}, "an object"),
        ({"a": 1}, "an object"),
    ],
)
def test_describe_names_the_json_type_and_short_values(value: object, text: str) -> None:
    assert describe(value) == text


def test_validate_does_not_mutate_the_event() -> None:
    event = {"eventName": 5, "timestamp": "x", "properties": {"a": [1]}}
    before = repr(event)
    validate(event)
    assert repr(event) == before
