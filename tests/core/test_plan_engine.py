"""The tracking-plan engine: plan documents checked and compiled, events judged against them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sample_plans import STRING_PRICE_ISSUE
from web.core.validation import Issue, Verdict, validate
from web.core.validation.plan import InvalidPlan, PlanProblem, check_plan, compile_plan

QUICK_START = {"eventName": "user_login", "userId": 123, "timestamp": "2025-12-10T15:45:00Z"}
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
UNCHECKED: Any = object()


def judge(plan: dict[str, Any], event: dict[str, Any], version: int = 1) -> Verdict:
    return compile_plan(plan, version).judge(event)


def errors_of(verdict: Verdict) -> list[Issue]:
    return [issue for issue in verdict.issues if issue.severity == "error"]


def warnings_of(verdict: Verdict) -> list[Issue]:
    return [issue for issue in verdict.issues if issue.severity == "warning"]


def one_event(schema: dict[str, Any], name: str = "order_completed") -> dict[str, Any]:
    """A plan with one event whose schema is `schema`."""
    return {"events": {name: schema}}


def with_property(
    prop: str, rules: dict[str, Any], name: str = "order_completed"
) -> dict[str, Any]:
    """A plan with one event that has one property governed by `rules`."""
    return one_event({"type": "object", "properties": {prop: rules}}, name)


def event(**fields: Any) -> dict[str, Any]:
    return {"eventName": "order_completed", **fields}


# --- one table row per rule -------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCase:
    plan: dict[str, Any]
    event: dict[str, Any]
    path: str
    rule: str
    actual: Any = UNCHECKED
    expected: Any = UNCHECKED
    message: str | None = None
    status: str = "invalid"
    severity: str = "error"


FAILING: dict[str, RuleCase] = {
    "type": RuleCase(
        with_property("price", {"type": "number"}),
        event(price="12.99"),
        "/price",
        "type",
        actual="12.99",
        message='price must be a number, got the string "12.99"',
    ),
    "required": RuleCase(
        one_event({"type": "object", "required": ["orderId"]}),
        event(price=1),
        "/orderId",
        "required",
        expected="orderId",
        message="missing required property orderId",
    ),
    "enum": RuleCase(
        with_property("currency", {"enum": ["USD", "EUR", "GBP"]}),
        event(currency="usd"),
        "/currency",
        "enum",
        actual="usd",
        expected=["USD", "EUR", "GBP"],
        message='currency must be one of USD, EUR, GBP, got "usd"',
    ),
    "const": RuleCase(
        with_property("platform", {"const": "ios"}),
        event(platform="android"),
        "/platform",
        "const",
        actual="android",
        expected="ios",
    ),
    "pattern": RuleCase(
        with_property("sku", {"type": "string", "pattern": "^SKU-[0-9]+$"}),
        event(sku="sku-12"),
        "/sku",
        "pattern",
        actual="sku-12",
        expected="^SKU-[0-9]+$",
    ),
    "format-date-time": RuleCase(
        with_property("paidAt", {"type": "string", "format": "date-time"}),
        event(paidAt="2025-12-10 15:45"),
        "/paidAt",
        "format",
        actual="2025-12-10 15:45",
        expected="date-time",
    ),
    "format-date": RuleCase(
        with_property("day", {"type": "string", "format": "date"}),
        event(day="2025-02-30"),
        "/day",
        "format",
        actual="2025-02-30",
        expected="date",
    ),
    "format-email": RuleCase(
        with_property("email", {"type": "string", "format": "email"}),
        event(email="not-an-email"),
        "/email",
        "format",
        actual="not-an-email",
        expected="email",
    ),
    "format-uri": RuleCase(
        with_property("page", {"type": "string", "format": "uri"}),
        event(page="/relative/path"),
        "/page",
        "format",
        actual="/relative/path",
        expected="uri",
    ),
    "format-uuid": RuleCase(
        with_property("cartId", {"type": "string", "format": "uuid"}),
        event(cartId="1234-not-a-uuid"),
        "/cartId",
        "format",
        actual="1234-not-a-uuid",
        expected="uuid",
    ),
    "format-ipv4": RuleCase(
        with_property("ip", {"type": "string", "format": "ipv4"}),
        event(ip="256.1.1.1"),
        "/ip",
        "format",
        actual="256.1.1.1",
        expected="ipv4",
    ),
    "minimum": RuleCase(
        with_property("quantity", {"type": "integer", "minimum": 1}),
        event(quantity=0),
        "/quantity",
        "minimum",
        actual=0,
        expected=1,
    ),
    "maximum": RuleCase(
        with_property("quantity", {"type": "integer", "maximum": 99}),
        event(quantity=100),
        "/quantity",
        "maximum",
        actual=100,
        expected=99,
    ),
    "exclusiveMinimum": RuleCase(
        with_property("price", {"type": "number", "exclusiveMinimum": 0}),
        event(price=0),
        "/price",
        "exclusiveMinimum",
        actual=0,
        expected=0,
    ),
    "minLength": RuleCase(
        with_property("coupon", {"type": "string", "minLength": 4}),
        event(coupon="AB"),
        "/coupon",
        "minLength",
        actual="AB",
        expected=4,
    ),
    "maxLength": RuleCase(
        with_property("coupon", {"type": "string", "maxLength": 4}),
        event(coupon="ABCDE"),
        "/coupon",
        "maxLength",
        actual="ABCDE",
        expected=4,
    ),
    "minItems": RuleCase(
        with_property("products", {"type": "array", "minItems": 1}),
        event(products=[]),
        "/products",
        "minItems",
        actual=[],
        expected=1,
    ),
    "additionalProperties": RuleCase(
        one_event(
            {
                "type": "object",
                "properties": {"eventName": {"type": "string"}, "price": {"type": "number"}},
                "additionalProperties": False,
            }
        ),
        event(price=1, cupon="X"),
        "/cupon",
        "additionalProperties",
        actual="cupon",
    ),
    "unplanned_event": RuleCase(
        one_event({"type": "object"}),
        {"eventName": "order_refunded"},
        "/eventName",
        "unplanned_event",
        actual="order_refunded",
    ),
    "uniqueItems": RuleCase(
        with_property("tags", {"type": "array", "uniqueItems": True}),
        event(tags=["sale", "sale"]),
        "/tags",
        "uniqueItems",
        actual=["sale", "sale"],
    ),
    "multipleOf": RuleCase(
        with_property("amountCents", {"type": "integer", "multipleOf": 5}),
        event(amountCents=7),
        "/amountCents",
        "multipleOf",
        actual=7,
        expected=5,
    ),
}

# The same plans with an event that obeys them: proof the rule is not simply always failing.
PASSING: dict[str, dict[str, Any]] = {
    "type": event(price=12.99),
    "required": event(orderId="o-1"),
    "enum": event(currency="USD"),
    "const": event(platform="ios"),
    "pattern": event(sku="SKU-12"),
    "format-date-time": event(paidAt="2025-12-10T15:45:00Z"),
    "format-date": event(day="2024-02-29"),
    "format-email": event(email="qa@example.com"),
    "format-uri": event(page="https://shop.example/cart?x=1"),
    "format-uuid": event(cartId="0b7d3c1e-9f0a-4c5e-8a39-1f2b3c4d5e6f"),
    "format-ipv4": event(ip="192.168.0.1"),
    "minimum": event(quantity=1),
    "maximum": event(quantity=99),
    "exclusiveMinimum": event(price=0.01),
    "minLength": event(coupon="ABCD"),
    "maxLength": event(coupon="ABCD"),
    "minItems": event(products=[{"id": 1}]),
    "additionalProperties": event(price=1),
    "unplanned_event": event(),
    "uniqueItems": event(tags=["sale", "new"]),
    "multipleOf": event(amountCents=15),
}


@pytest.mark.parametrize("case", list(FAILING.values()), ids=list(FAILING))
def test_judge_rule_violation_reports_path_and_rule(case: RuleCase) -> None:
    verdict = judge(case.plan, case.event)

    assert verdict.status == case.status
    found = [i for i in verdict.issues if (i.path, i.rule) == (case.path, case.rule)]
    assert len(found) == 1, verdict.issues_as_dicts()
    issue = found[0]
    assert issue.severity == case.severity
    assert issue.message, "every issue carries a sentence"
    if case.message is not None:
        assert issue.message == case.message
    if case.actual is not UNCHECKED:
        assert issue.actual == case.actual
    if case.expected is not UNCHECKED:
        assert issue.expected == case.expected, issue
    # Nothing but the one planted problem is reported.
    assert [(i.path, i.rule) for i in errors_of(verdict)] == [(case.path, case.rule)]


@pytest.mark.parametrize("rule", list(PASSING), ids=list(PASSING))
def test_judge_rule_obeyed_is_valid_without_issues(rule: str) -> None:
    verdict = judge(FAILING[rule].plan, PASSING[rule])

    assert verdict.status == "valid"
    assert verdict.issues == ()


def test_judge_issue_as_dict_has_the_six_fields() -> None:
    verdict = judge(FAILING["type"].plan, FAILING["type"].event)

    assert verdict.issues_as_dicts() == [STRING_PRICE_ISSUE]


# --- the quick-start event and planned/unplanned events ----------------------------------------


def test_judge_quick_start_event_with_empty_events_plan_is_valid() -> None:
    verdict = judge({"events": {}}, QUICK_START)

    assert verdict.status == "valid"
    assert verdict.issues == ()


def test_judge_quick_start_event_with_user_login_planned_is_valid() -> None:
    plan = one_event(
        {
            "type": "object",
            "required": ["userId", "timestamp"],
            "properties": {
                "userId": {"type": "integer"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        name="user_login",
    )

    verdict = judge(plan, QUICK_START)

    assert verdict.status == "valid"
    assert verdict.issues == ()


def test_judge_empty_events_plan_accepts_any_named_event() -> None:
    verdict = judge({"events": {}}, {"eventName": "anything_at_all", "x": [1, {"y": None}]})

    assert verdict.status == "valid"
    assert verdict.issues == ()


def test_judge_empty_events_plan_still_applies_envelope_rules() -> None:
    verdict = judge({"events": {}}, {"userId": 1})

    assert verdict.status == "invalid"
    assert [(i.path, i.rule) for i in verdict.issues] == [("/eventName", "required")]


def test_judge_unplanned_event_message_names_the_event() -> None:
    verdict = judge(one_event({"type": "object"}), {"eventName": "order_refunded"})

    (issue,) = verdict.issues
    assert "order_refunded" in issue.message
    assert "not in the tracking plan" in issue.message


def test_judge_allow_unplanned_true_gives_valid_with_warning() -> None:
    plan = {**one_event({"type": "object"}), "allow_unplanned": True}

    verdict = judge(plan, {"eventName": "order_refunded"})

    assert verdict.status == "valid"
    assert [(i.path, i.rule, i.severity) for i in verdict.issues] == [
        ("/eventName", "unplanned_event", "warning")
    ]
    assert verdict.issues[0].actual == "order_refunded"


def test_judge_unplanned_event_under_other_name_key_points_at_that_key() -> None:
    verdict = judge(one_event({"type": "object"}), {"event": "order_refunded"})

    assert [(i.path, i.rule) for i in verdict.issues] == [("/event", "unplanned_event")]


# --- paths, all errors ----------------------------------------------------------------------


def test_judge_nested_array_item_error_has_json_pointer_path() -> None:
    plan = with_property(
        "products",
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"price": {"type": "number"}},
                "required": ["price"],
            },
        },
    )
    products = [{"price": 1}, {"price": 2.5}, {"price": "12.99"}]

    verdict = judge(plan, event(products=products))

    assert verdict.status == "invalid"
    assert [(i.path, i.rule, i.actual) for i in verdict.issues] == [
        ("/products/2/price", "type", "12.99")
    ]
    assert verdict.issues[0].message == 'price must be a number, got the string "12.99"'


def test_judge_required_inside_nested_object_points_at_missing_key() -> None:
    plan = with_property("cart", {"type": "object", "required": ["id"]})

    verdict = judge(plan, event(cart={"total": 3}))

    assert [(i.path, i.rule) for i in verdict.issues] == [("/cart/id", "required")]


def test_judge_reports_all_errors_not_only_the_first() -> None:
    plan = one_event(
        {
            "type": "object",
            "required": ["orderId", "price", "currency"],
            "properties": {
                "orderId": {"type": "string"},
                "price": {"type": "number", "minimum": 0},
                "currency": {"enum": ["USD", "EUR", "GBP"]},
                "quantity": {"type": "integer", "maximum": 10},
            },
            "additionalProperties": True,
        }
    )
    bad = event(price="12.99", currency="usd", quantity=11)

    verdict = judge(plan, bad)

    assert verdict.status == "invalid"
    assert sorted((i.path, i.rule) for i in errors_of(verdict)) == [
        ("/currency", "enum"),
        ("/orderId", "required"),
        ("/price", "type"),
        ("/quantity", "maximum"),
    ]


def test_judge_additional_properties_reports_each_unexpected_property() -> None:
    plan = one_event(
        {"type": "object", "properties": {"eventName": {}}, "additionalProperties": False}
    )

    verdict = judge(plan, event(a=1, b=2))

    assert sorted((i.path, i.rule, i.actual) for i in verdict.issues) == [
        ("/a", "additionalProperties", "a"),
        ("/b", "additionalProperties", "b"),
    ]


def test_judge_pointer_escapes_slash_and_tilde_in_property_names() -> None:
    plan = with_property("a/b~c", {"type": "number"})

    verdict = judge(plan, event(**{"a/b~c": "x"}))

    assert [i.path for i in verdict.issues] == ["/a~1b~0c"]


# --- naming conventions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("convention", "bad_event", "bad_paths", "good_event"),
    [
        pytest.param(
            "snake_case",
            {"eventName": "OrderCompleted", "cartValue": 1, "properties": {"itemId": 2}},
            ["/eventName", "/cartValue", "/properties/itemId"],
            {"eventName": "order_completed", "cart_value": 1, "properties": {"item_id": 2}},
            id="snake_case",
        ),
        pytest.param(
            "camelCase",
            {"eventName": "order_completed", "cart_value": 1, "properties": {"Item Id": 2}},
            ["/eventName", "/cart_value", "/properties/Item Id"],
            {"eventName": "orderCompleted", "cartValue": 1, "properties": {"itemId": 2}},
            id="camelCase",
        ),
        pytest.param(
            "Title Case",
            {"eventName": "order completed", "cart_value": 1, "properties": {"itemId": 2}},
            ["/eventName", "/cart_value", "/properties/itemId"],
            {"eventName": "Order Completed", "Cart Value": 1, "properties": {"Item Id": 2}},
            id="Title Case",
        ),
    ],
)
def test_judge_naming_violations_are_warnings_only(
    convention: str, bad_event: dict[str, Any], bad_paths: list[str], good_event: dict[str, Any]
) -> None:
    plan = {"events": {}, "naming": convention}

    bad = judge(plan, bad_event)
    good = judge(plan, good_event)

    assert bad.status == "valid"
    assert sorted(i.path for i in bad.issues) == sorted(bad_paths)
    assert {(i.rule, i.severity) for i in bad.issues} == {("naming", "warning")}
    assert all(convention in i.message for i in bad.issues)
    assert good.status == "valid"
    assert good.issues == ()


def test_judge_naming_warnings_do_not_hide_errors() -> None:
    plan = {**with_property("price", {"type": "number"}), "naming": "camelCase"}

    verdict = judge(plan, event(price="x", cart_value=1))

    assert verdict.status == "invalid"
    assert sorted((i.path, i.rule, i.severity) for i in verdict.issues) == [
        ("/cart_value", "naming", "warning"),
        ("/eventName", "naming", "warning"),
        ("/price", "type", "error"),
    ]


def test_judge_naming_ignores_envelope_and_sdk_keys() -> None:
    verdict = judge({"events": {}, "naming": "snake_case"}, QUICK_START)

    assert verdict.status == "valid"
    assert verdict.issues == ()


# --- common, $defs, dialects ----------------------------------------------------------------


def test_judge_common_schema_applies_to_every_event() -> None:
    plan = {
        "events": {"a": {"type": "object"}, "b": {"type": "object"}},
        "common": {"type": "object", "required": ["userId"]},
    }

    verdicts = {name: judge(plan, {"eventName": name}) for name in ("a", "b")}
    with_user = judge(plan, {"eventName": "b", "userId": 1})

    for verdict in verdicts.values():
        assert verdict.status == "invalid"
        assert [(i.path, i.rule) for i in verdict.issues] == [("/userId", "required")]
    assert with_user.status == "valid"


def test_judge_common_schema_applies_even_with_no_events_planned() -> None:
    plan = {"events": {}, "common": {"properties": {"userId": {"type": "integer"}}}}

    verdict = judge(plan, {"eventName": "anything", "userId": "123"})

    assert verdict.status == "invalid"
    assert [(i.path, i.rule) for i in verdict.issues] == [("/userId", "type")]


def test_judge_plan_level_defs_usable_through_ref() -> None:
    plan = {
        "$defs": {"money": {"type": "number", "minimum": 0}},
        "events": {
            "order_completed": {
                "type": "object",
                "properties": {"price": {"$ref": "#/$defs/money"}},
            }
        },
        "common": {"properties": {"tax": {"$ref": "#/$defs/money"}}},
    }

    negative = judge(plan, event(price=-1))
    string_tax = judge(plan, event(price=1, tax="0.2"))
    fine = judge(plan, event(price=1, tax=0.2))

    assert [(i.path, i.rule) for i in negative.issues] == [("/price", "minimum")]
    assert [(i.path, i.rule) for i in string_tax.issues] == [("/tax", "type")]
    assert fine.status == "valid"


def test_judge_event_defs_merge_with_plan_defs() -> None:
    plan = {
        "$defs": {"money": {"type": "number"}},
        "events": {
            "order_completed": {
                "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                "properties": {
                    "price": {"$ref": "#/$defs/money"},
                    "currency": {"$ref": "#/$defs/code"},
                },
            }
        },
    }

    verdict = judge(plan, event(price="1", currency="usd"))

    assert sorted((i.path, i.rule) for i in verdict.issues) == [
        ("/currency", "pattern"),
        ("/price", "type"),
    ]


@pytest.mark.parametrize(
    ("where", "values", "status_07", "status_2020"),
    [
        # Draft-07 tuple validation: `items` as an array checks position by position.
        pytest.param("items", ["a", "b"], "invalid", None, id="items-array"),
        # 2020-12 spells that prefixItems; draft-07 does not know the keyword and ignores it.
        pytest.param("prefixItems", ["a", "b"], "valid", "invalid", id="prefixItems"),
    ],
)
def test_judge_draft_07_schema_uses_draft_07_semantics(
    where: str, values: list[Any], status_07: str, status_2020: str | None
) -> None:
    rules = {where: [{"type": "string"}, {"type": "integer"}]}
    draft_07 = one_event({"$schema": DRAFT_07, "properties": {"pair": rules}})
    draft_2020 = one_event({"properties": {"pair": rules}})

    assert judge(draft_07, event(pair=values)).status == status_07
    if status_2020 is None:
        # In 2020-12 `items` must be one schema: the plan itself is refused.
        assert [p.path for p in check_plan(draft_2020)] == [
            "/events/order_completed/properties/pair/items"
        ]
    else:
        assert judge(draft_2020, event(pair=values)).status == status_2020


def test_judge_draft_07_ignores_keywords_beside_ref() -> None:
    base = {"$defs": {"n": {"type": "number"}}}
    rules = {"$ref": "#/$defs/n", "minimum": 5}
    draft_07 = {**base, **one_event({"$schema": DRAFT_07, "properties": {"q": rules}})}
    draft_2020 = {**base, **one_event({"properties": {"q": rules}})}

    assert judge(draft_07, event(q=1)).status == "valid"
    assert [(i.path, i.rule) for i in judge(draft_2020, event(q=1)).issues] == [("/q", "minimum")]


def test_judge_plan_level_schema_sets_dialect_for_every_event() -> None:
    plan = {
        "$schema": DRAFT_07,
        "events": {"e": {"properties": {"pair": {"items": [{"type": "string"}]}}}},
    }

    assert check_plan(plan) == []
    assert judge(plan, {"eventName": "e", "pair": [1]}).status == "invalid"
    assert judge(plan, {"eventName": "e", "pair": ["a", 1]}).status == "valid"


def test_judge_draft_07_still_asserts_formats() -> None:
    plan = one_event({"$schema": DRAFT_07, "properties": {"day": {"format": "date"}}})

    verdict = judge(plan, event(day="10/12/2025"))

    assert [(i.path, i.rule) for i in verdict.issues] == [("/day", "format")]


# --- the verdict's plan version ---------------------------------------------------------------


def test_judge_verdict_records_plan_version() -> None:
    compiled = compile_plan({"events": {}}, 7)

    assert compiled.version == 7
    assert compiled.judge(QUICK_START).plan_version == 7
    assert compiled.judge({"eventName": 3}).plan_version == 7


def test_validate_without_plan_has_no_plan_version() -> None:
    assert validate(QUICK_START).plan_version is None
    assert validate(QUICK_START, compile_plan({"events": {}}, 2)).plan_version == 2


# --- checking plan documents ------------------------------------------------------------------


def test_check_plan_accepts_every_documented_key() -> None:
    plan = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "Shop iOS",
        "$defs": {"money": {"type": "number"}},
        "events": {"order_completed": {"properties": {"price": {"$ref": "#/$defs/money"}}}},
        "common": {"type": "object"},
        "allow_unplanned": True,
        "naming": "snake_case",
    }

    assert check_plan(plan) == []
    assert check_plan({}) == []
    assert check_plan({"events": {}, "naming": None, "common": None}) == []


@pytest.mark.parametrize(
    ("document", "paths"),
    [
        pytest.param({"events": {}, "evnets": {}}, ["/evnets"], id="unknown-key"),
        pytest.param(one_event({"type": "strin"}), ["/events/order_completed/type"], id="bad-type"),
        pytest.param(
            with_property("price", {"type": "numbr"}),
            ["/events/order_completed/properties/price/type"],
            id="bad-nested-type",
        ),
        pytest.param({"common": {"type": 1}}, ["/common/type"], id="bad-common"),
        pytest.param({"events": {}, "naming": "kebab-case"}, ["/naming"], id="bad-naming"),
        pytest.param({"events": {}, "allow_unplanned": "yes"}, ["/allow_unplanned"], id="bool"),
        pytest.param({"events": []}, ["/events"], id="events-not-object"),
        pytest.param({"events": {"e": 3}}, ["/events/e"], id="schema-not-object"),
        pytest.param({"events": {" ": {}}}, ["/events/ "], id="blank-event-name"),
        pytest.param(
            {"events": {"a/b~c": {"type": "strin"}}}, ["/events/a~1b~0c/type"], id="escaped"
        ),
        pytest.param({"events": {"e": {"minLength": -1}}}, ["/events/e/minLength"], id="minLen"),
        pytest.param([], [""], id="array-plan"),
        pytest.param("plan", [""], id="string-plan"),
        pytest.param(None, [""], id="null-plan"),
    ],
)
def test_check_plan_problem_paths(document: Any, paths: list[str]) -> None:
    problems = check_plan(document)

    assert [p.path for p in problems] == paths
    assert all(isinstance(p, PlanProblem) and p.message for p in problems)


def test_check_plan_reports_every_problem_at_once() -> None:
    document = {
        "evnets": {},
        "events": {"a": {"type": "strin"}, "b": {"required": "x"}},
        "allow_unplanned": 1,
        "naming": "kebab",
    }

    paths = [p.path for p in check_plan(document)]

    assert sorted(paths) == [
        "/allow_unplanned",
        "/events/a/type",
        "/events/b/required",
        "/evnets",
        "/naming",
    ]


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"$ref": "#/$defs/missing"}, id="top"),
        pytest.param({"properties": {"x": {"$ref": "#/$defs/missing"}}}, id="nested"),
    ],
)
def test_check_plan_dangling_ref_is_a_problem_under_the_event(schema: dict[str, Any]) -> None:
    problems = check_plan(one_event(schema, "e"))

    assert len(problems) == 1
    assert problems[0].path.startswith("/events/e")
    assert "missing" in problems[0].message


def test_check_plan_unknown_dialect_is_a_problem_at_its_schema_key() -> None:
    problems = check_plan(one_event({"$schema": "urn:example:no-such-dialect"}, "e"))

    assert [p.path for p in problems] == ["/events/e/$schema"]


@pytest.mark.parametrize(
    "events",
    [
        pytest.param({}, id="no-events"),
        pytest.param({"a": {}, "b": {"$ref": "#/$defs/money"}}, id="two-events"),
    ],
)
def test_check_plan_bad_plan_level_def_is_reported_where_it_is_written(
    events: dict[str, Any],
) -> None:
    document = {"$defs": {"money": {"type": "numbr"}}, "events": events}

    problems = check_plan(document)

    # Once, at the path the author wrote it, not once per event under a merged copy.
    assert [p.path for p in problems] == ["/$defs/money/type"]


def test_check_plan_defs_not_an_object_is_a_problem() -> None:
    assert [p.path for p in check_plan({"$defs": [], "events": {}})] == ["/$defs"]


@pytest.mark.parametrize(
    "events",
    [pytest.param({}, id="no-events"), pytest.param({"a": {}, "b": {}}, id="two-events")],
)
def test_check_plan_unknown_plan_level_dialect_is_reported_at_schema_key(
    events: dict[str, Any],
) -> None:
    document = {"$schema": "https://example.com/my-dialect", "events": events}

    assert [p.path for p in check_plan(document)] == ["/$schema"]


def test_check_plan_problem_messages_name_the_key() -> None:
    (unknown,) = check_plan({"evnets": {}})
    (naming,) = check_plan({"naming": "kebab"})

    assert "evnets" in unknown.message
    assert all(c in naming.message for c in ("snake_case", "camelCase", "Title Case"))


@pytest.fixture
def listening_port(tmp_path: Path) -> Iterator[tuple[int, Callable[[], str]]]:
    """An HTTP server in its own process (a fetch may hold the GIL) that logs each request.

    Yields its port and a function returning the request log so far.
    """
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    log_path = tmp_path / "requests.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().decode()
        port = int(banner.split(" port ")[1].split()[0])
        yield port, lambda: log_path.read_text()
    finally:
        server.terminate()
        server.wait(5)
        assert server.stdout is not None
        server.stdout.close()


@pytest.mark.parametrize(
    "schema_at",
    [
        pytest.param(lambda url: {"$schema": url}, id="remote-dialect"),
        pytest.param(lambda url: {"properties": {"x": {"$ref": url}}}, id="remote-ref"),
    ],
)
def test_check_plan_never_fetches_urls_named_in_the_plan(
    listening_port: tuple[int, Callable[[], str]], schema_at: Any
) -> None:
    port, request_log = listening_port
    plan = one_event(schema_at(f"http://127.0.0.1:{port}/schema.json"), "e")

    started = time.monotonic()
    problems = check_plan(plan)
    took = time.monotonic() - started

    # Saving a plan must not make the server call out to addresses a user chose (SSRF),
    # and a $ref must resolve within the plan.
    assert "GET" not in request_log()
    assert took < 1.0, f"check_plan took {took:.1f} s"
    assert [p.path for p in problems] != []
    assert all(p.path.startswith("/events/e") for p in problems)


def test_compile_plan_raises_invalid_plan_with_problems() -> None:
    with pytest.raises(InvalidPlan) as raised:
        compile_plan({"events": {"e": {"type": "strin"}}, "naming": "kebab"}, 1)

    assert [p.path for p in raised.value.problems] == ["/events/e/type", "/naming"]
    assert "/events/e/type" in str(raised.value)


def test_compile_plan_refuses_non_object_plan() -> None:
    with pytest.raises(InvalidPlan) as raised:
        compile_plan([], 1)  # type: ignore[arg-type]

    assert [p.path for p in raised.value.problems] == [""]


def test_compile_plan_keeps_settings_and_schemas() -> None:
    schema = {"type": "object", "required": ["x"]}
    compiled = compile_plan(
        {"events": {"e": schema}, "allow_unplanned": True, "naming": "camelCase"}, 4
    )

    assert set(compiled.events) == {"e"}
    assert compiled.allow_unplanned is True
    assert compiled.naming == "camelCase"
    assert compiled.schemas == {"e": schema}
    assert compiled.common is None
