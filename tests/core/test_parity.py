"""Parity across platforms, pure: property types per path, differences between sessions, mixed
types, the sessions asked for, and the Markdown, CSV and JSON made of a comparison."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from web.core.errors import Rejected
from web.core.parity import (
    MAX_SESSIONS,
    NameCounts,
    Parity,
    compare,
    property_types,
    read_sessions,
    tally,
)
from web.core.parity_exports import (
    PARITY_COLUMNS,
    parity_csv_rows,
    parity_json,
    parity_markdown,
)

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def session(
    name: str,
    events: list[tuple[str | None, dict[str, Any]]],
    *,
    invalid: dict[str, int] | None = None,
    capped: bool = False,
) -> Any:
    """A session's tally whose counts are those of the events given."""
    counts: dict[str | None, NameCounts] = {}
    for event_name, _ in events:
        before = counts.get(event_name, NameCounts(0, 0))
        counts[event_name] = NameCounts(before.total + 1, (invalid or {}).get(str(event_name), 0))
    return tally(name, counts, events, capped=capped)


def checkout(total: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "checkout", {"properties": {"total": total, "currency": "EUR", **extra}}


def three_platforms() -> Parity:
    return compare(
        [
            session(
                "ios", [checkout(12.5), ("app_opened", {}), ("signup", {})], invalid={"signup": 1}
            ),
            session("android", [checkout("12.5"), ("app_opened", {})]),
            session("web", [checkout(12.5, coupon=None), ("app_opened", {}), ("signup", {})]),
        ]
    )


def test_property_types_reads_properties_traits_and_one_nesting_level() -> None:
    event = {
        "event": "x",
        "context": {"ignored": 1},
        "properties": {
            "n": 3,
            "price": 3.0,
            "ok": True,
            "none": None,
            "tags": ["a", {"deep": 1}],
            "cart": {"items": 2, "meta": {"deeper": "not entered"}},
            "a.b": "quoted",
        },
        "traits": {"email": "x@example.com"},
    }

    assert property_types(event) == {
        "properties.n": "integer",
        "properties.price": "number",
        "properties.ok": "boolean",
        "properties.none": "null",
        "properties.tags": "array",
        "properties.cart": "object",
        "properties.cart.items": "integer",
        "properties.cart.meta": "object",
        'properties["a.b"]': "string",
        "traits.email": "string",
    }


@pytest.mark.parametrize("event", [{}, {"properties": None}, {"properties": [1]}, {"traits": "x"}])
def test_property_types_without_containers_is_empty(event: dict[str, Any]) -> None:
    assert property_types(event) == {}


def test_compare_finds_the_event_missing_on_one_platform() -> None:
    parity = three_platforms()

    assert [row.event_name for row in parity.events] == ["app_opened", "checkout", "signup"]
    signup = parity.events[2]
    assert signup.missing_in == ["android"]
    assert [(c.session, c.total, c.invalid) for c in signup.cells] == [
        ("ios", 1, 1),
        ("android", 0, 0),
        ("web", 1, 0),
    ]
    assert [row.event_name for row in parity.only_in_some] == ["signup"]
    assert parity.invalid == {"ios": 1, "android": 0, "web": 0}
    assert not parity.in_parity


def test_compare_finds_a_type_difference_and_a_property_missing_in_a_session() -> None:
    checkout_row = three_platforms().events[1]

    states = {prop.path: prop.state for prop in checkout_row.properties}
    assert states == {
        "properties.coupon": "missing",
        "properties.currency": "same",
        "properties.total": "type_differs",
    }
    total = next(p for p in checkout_row.properties if p.path == "properties.total")
    assert [(c.session, c.label) for c in total.cells] == [
        ("ios", "number"),
        ("android", "string"),
        ("web", "number"),
    ]
    coupon = next(p for p in checkout_row.properties if p.path == "properties.coupon")
    assert [c.label for c in coupon.cells] == ["missing", "missing", "null"]
    assert [p.path for p in checkout_row.differing] == ["properties.coupon", "properties.total"]


def test_compare_shows_mixed_types_within_one_session() -> None:
    parity = compare(
        [
            session("ios", [checkout(1), checkout(1.5), checkout(2)]),
            session("android", [checkout(1), checkout(1.5)]),
        ]
    )

    total = next(p for p in parity.events[0].properties if p.path == "properties.total")
    assert total.state == "mixed"
    assert [c.types for c in total.cells] == [
        {"integer": 2, "number": 1},
        {"integer": 1, "number": 1},
    ]
    assert total.cells[0].label == "integer | number"


def test_compare_mixed_in_one_session_only_is_a_type_difference() -> None:
    parity = compare([session("ios", [checkout(1), checkout("1")]), session("web", [checkout(1)])])

    total = next(p for p in parity.events[0].properties if p.path == "properties.total")
    assert total.state == "type_differs"


def test_compare_same_events_and_types_is_in_parity() -> None:
    parity = compare(
        [session("ios", [checkout(1), ("x", {})]), session("web", [("x", {}), checkout(7)])]
    )

    assert parity.in_parity
    assert parity.only_in_some == [] and parity.differing_properties == []


def test_compare_property_present_in_some_events_of_a_session_is_not_missing() -> None:
    parity = compare(
        [
            session("ios", [checkout(1, coupon="A"), checkout(2)]),
            session("web", [checkout(3, coupon="B")]),
        ]
    )

    coupon = next(p for p in parity.events[0].properties if p.path == "properties.coupon")
    assert coupon.state == "same"
    assert [(c.present, c.events_read) for c in coupon.cells] == [(1, 2), (1, 1)]


def test_compare_unnamed_events_are_counted_apart_and_capped_sessions_named() -> None:
    parity = compare(
        [
            session("ios", [(None, {"properties": {"a": 1}}), ("x", {})], capped=True),
            session("web", [("x", {})]),
        ]
    )

    assert [row.event_name for row in parity.events] == ["x"]
    assert parity.unnamed == {"ios": 1}
    assert parity.capped == ("ios",)


def test_compare_an_event_counted_but_not_read_has_no_property_cell() -> None:
    """A capped session's older events are counted (rollups) but their properties unread."""
    ios = tally("ios", {"x": NameCounts(5, 0)}, [], capped=True)
    web = session("web", [("x", {"properties": {"a": 1}})])

    row = compare([ios, web]).events[0]

    assert row.missing_in == []
    assert [c.session for c in row.properties[0].cells] == ["web"]
    assert row.properties[0].state == "same"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ([], "too_few_sessions"),
        (["a"], "too_few_sessions"),
        (["a", "a", " "], "too_few_sessions"),
        ([str(i) for i in range(MAX_SESSIONS + 1)], "too_many_sessions"),
        (["a", "b" * 101], "invalid_session"),
        (["a", "b\x00"], "invalid_session"),
    ],
)
def test_read_sessions_refuses(values: list[str], code: str) -> None:
    with pytest.raises(Rejected) as refused:
        read_sessions(values)

    assert (refused.value.status, refused.value.code) == (400, code)


def test_read_sessions_keeps_order_and_drops_repeats() -> None:
    assert read_sessions(["web", " ios ", "web", "", "android"]) == ["web", "ios", "android"]


def test_parity_markdown_lists_the_same_differences_escaped() -> None:
    parity = compare(
        [
            session("ios|<b>", [checkout(1), ("signup", {})]),
            session("android", [checkout("1")]),
        ]
    )

    text = parity_markdown(
        parity,
        app_name="Shop *",
        app_id="shop",
        generated_at=NOW,
        view_url="http://x/apps/shop/parity",
        events_read=2000,
    )

    assert "# Platform parity: Shop \\* (shop)" in text
    assert "- Verdict: **DIFFERENCES FOUND**" in text
    assert "| signup | missing in android | 1 | MISSING |" in text
    assert "| checkout | properties.total | type differs | integer x1 | string x1 |" in text
    assert "ios\\|&lt;b&gt;" in text and "<b>" not in text


def test_parity_csv_has_a_row_per_event_and_property_per_session() -> None:
    parity = compare([session("ios", [checkout(1)]), session("web", [("other", {})])])

    rows = parity_csv_rows(parity)

    assert rows[0] == list(PARITY_COLUMNS)
    assert ["checkout", "", "web", 0, 0, "", "", "event missing"] in rows
    assert ["checkout", "properties.total", "ios", 1, "", 1, "integer", ""] in rows


def test_parity_json_names_sessions_differences_and_types() -> None:
    answer = parity_json(three_platforms(), app_id="shop", generated_at=NOW, events_read=2000)

    assert [s["session"] for s in answer["sessions"]] == ["ios", "android", "web"]
    assert answer["only_in_some"] == ["signup"]
    assert answer["properties_differing"] == 2
    checkout_json = answer["events"][1]
    total = next(p for p in checkout_json["properties"] if p["path"] == "properties.total")
    assert total["state"] == "type_differs"
    assert [cell["types"] for cell in total["sessions"]] == [
        {"number": 1},
        {"string": 1},
        {"number": 1},
    ]
