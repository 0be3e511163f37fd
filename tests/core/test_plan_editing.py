"""The visual editor's edits: each one, its refusals, and that untouched parts stay as written."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from web.core import plan_editing as pe
from web.core.plan_editing import EditRefused
from web.core.validation.plan import check_plan

RICH: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "money": {"type": "number", "minimum": 0, "multipleOf": 0.01},
        "item": {
            "type": "object",
            "required": ["sku"],
            "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}},
        },
    },
    "description": "The shop's plan",
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["orderId", "total"],
            "properties": {
                "orderId": {"type": "string", "minLength": 1, "x-owner": "checkout"},
                "total": {"$ref": "#/$defs/money"},
                "placedAt": {"type": "string", "format": "date-time"},
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string"},
                            "options": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}},
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                },
                "payment": {"oneOf": [{"const": "card"}, {"const": "cash"}]},
            },
            "additionalProperties": True,
        },
        "Signed Up": {"type": "object"},
    },
    "common": {"type": "object", "properties": {"userId": {"type": "string"}}},
    "allow_unplanned": False,
    "naming": None,
}
ORDER = "/events/Order Completed"
ITEMS = f"{ORDER}/properties/items/items"


def dumped(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def refused(code: str, edit: Any, *args: Any) -> None:
    with pytest.raises(EditRefused) as caught:
        edit(*args)
    assert caught.value.code == code, caught.value.message


def test_rich_plan_is_a_valid_plan() -> None:
    assert check_plan(RICH) == []


# --- events ---------------------------------------------------------------------------------


def test_add_event_adds_an_empty_object_schema_last() -> None:
    edited = pe.add_event(RICH, "  Cart Viewed ")

    assert list(edited["events"]) == ["Order Completed", "Signed Up", "Cart Viewed"]
    assert edited["events"]["Cart Viewed"] == {"type": "object", "properties": {}}
    assert "Cart Viewed" not in RICH["events"], "the input document was changed"


def test_add_event_to_an_empty_document_creates_events() -> None:
    assert pe.add_event({}, "a") == {"events": {"a": {"type": "object", "properties": {}}}}


def test_add_event_refuses_a_taken_or_empty_name() -> None:
    refused("name_taken", pe.add_event, RICH, "Signed Up")
    refused("invalid_name", pe.add_event, RICH, "   ")
    refused("invalid_name", pe.add_event, RICH, "x" * 201)
    refused("invalid_document", pe.add_event, {"events": []}, "a")


def test_rename_event_keeps_its_place_and_schema() -> None:
    edited = pe.rename_event(RICH, ORDER, "Order Placed")

    assert list(edited["events"]) == ["Order Placed", "Signed Up"]
    assert edited["events"]["Order Placed"] == RICH["events"]["Order Completed"]


def test_rename_event_refuses_a_taken_name_and_a_non_event_pointer() -> None:
    refused("name_taken", pe.rename_event, RICH, ORDER, "Signed Up")
    refused("invalid_pointer", pe.rename_event, RICH, f"{ORDER}/properties/total", "x")
    refused("invalid_pointer", pe.rename_event, RICH, "/events/Nope", "x")


def test_remove_event_and_common() -> None:
    assert list(pe.remove(RICH, "/events/Signed Up")["events"]) == ["Order Completed"]
    assert "common" not in pe.remove(RICH, "/common")


# --- properties -----------------------------------------------------------------------------


def test_add_property_at_a_nested_array_of_objects() -> None:
    edited = pe.add_property(RICH, f"{ITEMS}/properties/options/items", "value", "number")

    options = edited["events"]["Order Completed"]["properties"]["items"]["items"]
    assert options["properties"]["options"]["items"]["properties"] == {
        "name": {"type": "string"},
        "value": {"type": "number"},
    }


def test_add_property_of_any_type_and_to_a_schema_without_properties() -> None:
    edited = pe.add_property(RICH, "/events/Signed Up", "plan", "")

    assert edited["events"]["Signed Up"] == {"type": "object", "properties": {"plan": {}}}


def test_add_property_refusals() -> None:
    refused("name_taken", pe.add_property, RICH, ORDER, "total")
    refused("invalid_value", pe.add_property, RICH, ORDER, "x", "text")
    refused("invalid_pointer", pe.add_property, RICH, "/$defs/item", "x")
    refused("invalid_pointer", pe.add_property, RICH, f"{ORDER}/oneOf", "x")
    refused("invalid_pointer", pe.add_property, RICH, "/events/Nope", "x")
    refused("invalid_pointer", pe.add_property, RICH, "events", "x")
    refused("invalid_pointer", pe.add_property, RICH, "/events", "x")


def test_rename_property_renames_it_in_place_and_in_required() -> None:
    edited = pe.rename_property(RICH, f"{ORDER}/properties/orderId", "order_id")

    order = edited["events"]["Order Completed"]
    assert list(order["properties"])[:2] == ["order_id", "total"]
    assert (
        order["properties"]["order_id"]
        == RICH["events"]["Order Completed"]["properties"]["orderId"]
    )
    assert order["required"] == ["order_id", "total"]


def test_rename_property_refusals() -> None:
    refused("name_taken", pe.rename_property, RICH, f"{ORDER}/properties/orderId", "total")
    refused("invalid_pointer", pe.rename_property, RICH, f"{ORDER}/properties/nope", "x")
    refused("invalid_pointer", pe.rename_property, RICH, ORDER, "x")


def test_remove_property_removes_it_from_required_too() -> None:
    edited = pe.remove(RICH, f"{ORDER}/properties/total")

    order = edited["events"]["Order Completed"]
    assert "total" not in order["properties"]
    assert order["required"] == ["orderId"]


def test_remove_a_required_only_property_and_an_item_schema() -> None:
    plan = {"events": {"e": {"required": ["a"]}}}
    assert pe.remove(plan, "/events/e/properties/a") == {"events": {"e": {}}}
    edited = pe.remove(RICH, f"{ORDER}/properties/items/items")
    assert edited["events"]["Order Completed"]["properties"]["items"] == {
        "type": "array",
        "minItems": 1,
    }
    refused("invalid_pointer", pe.remove, RICH, f"{ORDER}/properties/nope")
    refused("invalid_pointer", pe.remove, RICH, f"{ORDER}/properties/orderId/items")


def test_set_required_adds_and_removes_and_drops_an_empty_list() -> None:
    on = pe.set_required(RICH, f"{ORDER}/properties/placedAt", True)
    assert on["events"]["Order Completed"]["required"] == ["orderId", "total", "placedAt"]
    plan = {"events": {"e": {"required": ["a"], "properties": {"a": {}}}}}
    assert pe.set_required(plan, "/events/e/properties/a", False) == {
        "events": {"e": {"properties": {"a": {}}}}
    }
    nested = pe.set_required(RICH, f"{ITEMS}/properties/sku", True)
    assert nested["events"]["Order Completed"]["properties"]["items"]["items"]["required"] == [
        "sku"
    ]


# --- rules ----------------------------------------------------------------------------------


def prop(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["events"]["Order Completed"]["properties"][name]
    return found


def test_set_type_one_union_nullable_and_none() -> None:
    at = f"{ORDER}/properties/orderId"
    assert prop(pe.set_type(RICH, at, ["integer"]), "orderId")["type"] == "integer"
    assert prop(pe.set_type(RICH, at, ["null", "string"]), "orderId")["type"] == [
        "string",
        "null",
    ]
    assert "type" not in prop(pe.set_type(RICH, at, []), "orderId")
    refused("invalid_value", pe.set_type, RICH, at, ["text"])


def test_set_type_to_the_same_types_changes_nothing() -> None:
    plan = {"events": {"e": {"properties": {"a": {"type": ["null", "string"]}}}}}
    assert pe.set_type(plan, "/events/e/properties/a", ["string", "null"]) == plan


@pytest.mark.parametrize(
    ("rule", "text", "value"),
    [
        ("pattern", " ^[A-Z]+$ ", "^[A-Z]+$"),
        ("format", "email", "email"),
        ("description", "The order's id", "The order's id"),
        ("minimum", "0", 0),
        ("maximum", "99.5", 99.5),
        ("minLength", "3", 3),
        ("maxLength", "64", 64),
        ("enum", "USD\nEUR\n\n", ["USD", "EUR"]),
    ],
)
def test_set_rule_sets_each_rule(rule: str, text: str, value: Any) -> None:
    edited = pe.set_rule(RICH, f"{ORDER}/properties/orderId", rule, text)

    assert prop(edited, "orderId")[rule] == value
    assert prop(edited, "orderId")["x-owner"] == "checkout"


def test_set_rule_with_empty_text_clears_the_rule() -> None:
    edited = pe.set_rule(RICH, f"{ORDER}/properties/orderId", "minLength", "  ")

    assert prop(edited, "orderId") == {"type": "string", "x-owner": "checkout"}


def test_enum_values_follow_the_type() -> None:
    plan = {
        "events": {
            "e": {
                "properties": {
                    "n": {"type": "integer"},
                    "b": {"type": "boolean"},
                    "s": {"type": ["string", "null"]},
                }
            }
        }
    }
    at = "/events/e/properties/"
    assert pe.set_rule(plan, at + "n", "enum", "1\n2.5")["events"]["e"]["properties"]["n"][
        "enum"
    ] == [1, 2.5]
    assert pe.set_rule(plan, at + "b", "enum", "true")["events"]["e"]["properties"]["b"][
        "enum"
    ] == [True]
    assert pe.set_rule(plan, at + "s", "enum", "a\nnull")["events"]["e"]["properties"]["s"][
        "enum"
    ] == ["a", None]
    refused("invalid_value", pe.set_rule, plan, at + "n", "enum", "one")
    refused("invalid_value", pe.set_rule, plan, at + "b", "enum", "yes")
    refused("invalid_value", pe.set_rule, plan, at + "s", "enum", "a\na")


def test_enum_text_shows_strings_bare_and_others_as_json() -> None:
    assert pe.enum_text(["USD", 1, None, True]) == "USD\n1\nnull\ntrue"
    assert pe.enum_text("not a list") == ""


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ("minimum", "ten"),
        ("minimum", "NaN"),
        ("maximum", "true"),
        ("minLength", "-1"),
        ("maxLength", "2.5"),
        ("pattern", "a\x00"),
        ("const", "1"),
    ],
)
def test_set_rule_refuses_bad_values_and_unknown_rules(rule: str, text: str) -> None:
    code = "invalid_rule" if rule == "const" else "invalid_value"
    refused(code, pe.set_rule, RICH, f"{ORDER}/properties/orderId", rule, text)


def test_set_rule_on_event_and_common_descriptions() -> None:
    edited = pe.set_rule(RICH, ORDER, "description", "When an order is paid")
    edited = pe.set_rule(edited, "/common", "description", "Every event")

    assert edited["events"]["Order Completed"]["description"] == "When an order is paid"
    assert edited["common"]["description"] == "Every event"


def test_add_items_describes_an_array_of_objects() -> None:
    plan = {"events": {"e": {"properties": {"tags": {"type": "array"}}}}}
    edited = pe.add_items(plan, "/events/e/properties/tags")
    assert edited["events"]["e"]["properties"]["tags"]["items"] == {
        "type": "object",
        "properties": {},
    }
    refused("name_taken", pe.add_items, edited, "/events/e/properties/tags")


def test_settings_and_common() -> None:
    assert pe.set_naming(RICH, "snake_case")["naming"] == "snake_case"
    assert pe.set_naming(RICH, "")["naming"] is None
    refused("invalid_value", pe.set_naming, RICH, "kebab")
    assert pe.set_allow_unplanned(RICH, True)["allow_unplanned"] is True
    assert pe.add_common({})["common"] == {"type": "object", "properties": {}}
    refused("name_taken", pe.add_common, RICH)


def test_pointers_with_escaped_names() -> None:
    plan = pe.add_event({}, "a/b~c")
    pointer = pe.make_pointer(["events", "a/b~c"])
    assert pointer == "/events/a~1b~0c"
    edited = pe.add_property(plan, pointer, "x/y")
    assert edited["events"]["a/b~c"]["properties"] == {"x/y": {"type": "string"}}
    refused("invalid_pointer", pe.parse_pointer, "events/x")


# --- the dispatcher and what the form shows -------------------------------------------------


def test_apply_edit_dispatches_by_op_and_refuses_unknown_ones() -> None:
    edited = pe.apply_edit(
        RICH,
        "set_rule",
        {"pointer": f"{ORDER}/properties/orderId", "rule": "pattern", "value": "x"},
    )
    assert prop(edited, "orderId")["pattern"] == "x"
    typed = pe.apply_edit(RICH, "set_type", {"pointer": ORDER + "/properties/total"}, ["string"])
    assert prop(typed, "total") == {"$ref": "#/$defs/money", "type": "string"}
    assert pe.apply_edit(RICH, "set_required", {"pointer": f"{ORDER}/properties/total"})["events"][
        "Order Completed"
    ]["required"] == ["orderId"]
    refused("invalid_edit", pe.apply_edit, RICH, "drop_table", {})


def test_others_lists_what_the_form_does_not_model() -> None:
    order = RICH["events"]["Order Completed"]
    assert pe.others(order, top=True) == {"additionalProperties": True}
    assert pe.others(order["properties"]["payment"]) == {
        "oneOf": order["properties"]["payment"]["oneOf"]
    }
    assert pe.others({"type": 3, "properties": [], "minimum": "1"}) == {
        "type": 3,
        "properties": [],
        "minimum": "1",
    }
    assert pe.plan_others(RICH) == {
        "$schema": RICH["$schema"],
        "$defs": RICH["$defs"],
        "description": RICH["description"],
    }


# --- round trip -----------------------------------------------------------------------------


def test_every_edit_leaves_the_untouched_parts_byte_for_byte() -> None:
    original = copy.deepcopy(RICH)
    edited = pe.set_rule(RICH, f"{ITEMS}/properties/sku", "pattern", "^[A-Z]+$")
    edited = pe.set_rule(edited, f"{ORDER}/properties/placedAt", "description", "When paid")
    edited = pe.add_property(edited, "/events/Signed Up", "plan")

    assert original == RICH
    assert dumped(edited["$defs"]) == dumped(RICH["$defs"])
    assert dumped(edited["common"]) == dumped(RICH["common"])
    order, before = edited["events"]["Order Completed"], RICH["events"]["Order Completed"]
    for name in ("orderId", "total", "payment"):
        assert dumped(order["properties"][name]) == dumped(before["properties"][name])
    # Undo the three edits by hand: what is left is the original, byte for byte.
    del order["properties"]["items"]["items"]["properties"]["sku"]["pattern"]
    del order["properties"]["placedAt"]["description"]
    edited["events"]["Signed Up"] = {"type": "object"}
    assert dumped(edited) == dumped(RICH)
    assert check_plan(edited) == []


def test_a_plan_built_from_empty_is_valid() -> None:
    plan = pe.add_event({"events": {}, "allow_unplanned": False, "naming": None}, "Checkout")
    at = "/events/Checkout"
    plan = pe.add_property(plan, at, "orderId")
    plan = pe.set_required(plan, f"{at}/properties/orderId", True)
    plan = pe.set_rule(plan, f"{at}/properties/orderId", "pattern", "^O-\\d+$")
    plan = pe.add_property(plan, at, "total", "number")
    plan = pe.set_rule(plan, f"{at}/properties/total", "minimum", "0")
    plan = pe.add_property(plan, at, "lines", "array")
    plan = pe.add_items(plan, f"{at}/properties/lines")
    plan = pe.add_property(plan, f"{at}/properties/lines/items", "at", "string")
    plan = pe.set_rule(plan, f"{at}/properties/lines/items/properties/at", "format", "date-time")

    assert check_plan(plan) == []
    assert plan["events"]["Checkout"] == {
        "type": "object",
        "properties": {
            "orderId": {"type": "string", "pattern": "^O-\\d+$"},
            "total": {"type": "number", "minimum": 0},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"at": {"type": "string", "format": "date-time"}},
                },
            },
        },
        "required": ["orderId"],
    }
