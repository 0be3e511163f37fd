"""Edits the visual plan editor makes to a plan document, each addressed by a JSON Pointer.

Every edit takes a document and returns a new one, touching only the keys it names: a
keyword the editor does not model ($defs, $ref, oneOf, additionalProperties, unknown
keywords...) is carried over untouched, in its place and order. Bad pointers and values
raise EditRefused with a machine-readable code; nothing here does I/O.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from web.core.validation.naming import CONVENTIONS

# The JSON types a property may take; more than one is a union, "null" makes it nullable.
TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
# The rules set_rule writes, by the kind of value each takes.
TEXT_RULES = ("pattern", "format", "description")
NUMBER_RULES = ("minimum", "maximum")
LENGTH_RULES = ("minLength", "maxLength")
RULES = (*TEXT_RULES, *NUMBER_RULES, *LENGTH_RULES, "enum")
# The keywords of a schema the form shows as fields; every other one is shown read-only.
MODELED = frozenset({"type", "properties", "required", "items", *RULES})
# The plan's own keys the form edits; the others ($defs, $schema, description) are read-only.
PLAN_MODELED = frozenset({"events", "common", "allow_unplanned", "naming"})
MAX_NAME = 200
MAX_VALUE = 10_000


class EditRefused(ValueError):
    """An edit that cannot be made: a pointer that names nothing editable, or a bad value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- pointers -----------------------------------------------------------------------------


def parse_pointer(text: str) -> list[str]:
    """A JSON Pointer's reference tokens; EditRefused for text that is not one."""
    if not isinstance(text, str) or not text.startswith("/"):
        raise EditRefused("invalid_pointer", f"{text!r} is not a JSON Pointer (it starts with /)")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def make_pointer(parts: Sequence[str]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _schema_at(document: dict[str, Any], parts: Sequence[str]) -> dict[str, Any]:
    """The editable schema a pointer names: an event's, the common one, or one nested in
    them through properties/<name> and items. Anything else is refused."""
    where = make_pointer(parts)
    if not parts or parts[0] not in ("events", "common") or parts == ["events"]:
        raise EditRefused("invalid_pointer", f"{where} is not an event's or common's schema")
    node: Any = document.get("events") if parts[0] == "events" else document
    steps = [parts[1]] if parts[0] == "events" else ["common"]
    rest = list(parts[2:] if parts[0] == "events" else parts[1:])
    while rest:
        if rest[0] == "properties" and len(rest) >= 2:
            steps += rest[:2]
            rest = rest[2:]
        elif rest[0] == "items":
            steps.append(rest.pop(0))
        else:
            raise EditRefused("invalid_pointer", f"{where} is not a schema the form edits")
    for step in steps:
        node = node.get(step) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise EditRefused("invalid_pointer", f"{where} names no schema in the plan")
    return node


def _property_at(document: dict[str, Any], parts: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The schema holding a property (its parent) and the property's name."""
    if len(parts) < 3 or parts[-2] != "properties":
        raise EditRefused("invalid_pointer", f"{make_pointer(parts)} is not a property")
    return _schema_at(document, parts[:-2]), parts[-1]


# ---- names and values ---------------------------------------------------------------------


def _name(value: str, what: str) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise EditRefused("invalid_name", f"a {what} name must not be empty")
    if len(name) > MAX_NAME or "\x00" in name:
        raise EditRefused("invalid_name", f"a {what} name is at most {MAX_NAME} characters")
    return name


def _renamed(mapping: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    """The mapping with one key renamed in its place, so the order is kept."""
    return {(new if key == old else key): value for key, value in mapping.items()}


def _number(text: str, rule: str, *, whole: bool = False) -> int | float:
    try:
        value = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EditRefused("invalid_value", f"{rule} must be a number, not {text.strip()!r}")
    if whole and (not isinstance(value, int) or value < 0):
        raise EditRefused("invalid_value", f"{rule} must be a whole number, 0 or more")
    return value


def _enum_values(text: str, types: Sequence[str]) -> list[Any]:
    """One value a line: numbers when the property is numeric, booleans when it is boolean,
    null for the line `null` when it is nullable, strings otherwise."""
    values: list[Any] = []
    kinds = set(types) - {"null"}
    for line in text.splitlines():
        item = line.strip()
        if not item:
            continue
        if item == "null" and "null" in types:
            values.append(None)
        elif kinds and kinds <= {"number", "integer"}:
            values.append(_number(item, "an enum value"))
        elif kinds == {"boolean"}:
            if item not in ("true", "false"):
                raise EditRefused("invalid_value", f"{item!r} is not true or false")
            values.append(item == "true")
        else:
            values.append(item)
    if len(values) != len({orjson.dumps(v) for v in values}):
        raise EditRefused("invalid_value", "enum values must differ from each other")
    return values


def types_of(schema: Mapping[str, Any]) -> list[str]:
    """The types a schema names, as a list (none: any type)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def enum_text(values: Any) -> str:
    """An enum as the form shows it: one value a line, strings bare, others as JSON."""
    if not isinstance(values, list):
        return ""
    return "\n".join(v if isinstance(v, str) else orjson.dumps(v).decode() for v in values)


# ---- the edits ----------------------------------------------------------------------------


def _events(document: dict[str, Any]) -> dict[str, Any]:
    events = document.setdefault("events", {})
    if not isinstance(events, dict):
        raise EditRefused("invalid_document", "the plan's events is not an object: fix it in JSON")
    return events


def add_event(document: dict[str, Any], name: str) -> dict[str, Any]:
    result = copy.deepcopy(document)
    events, name = _events(result), _name(name, "event")
    if name in events:
        raise EditRefused("name_taken", f"the plan already has an event {name!r}")
    events[name] = {"type": "object", "properties": {}}
    return result


def rename_event(document: dict[str, Any], pointer: str, name: str) -> dict[str, Any]:
    result = copy.deepcopy(document)
    parts = parse_pointer(pointer)
    _schema_at(result, parts)
    if len(parts) != 2 or parts[0] != "events":
        raise EditRefused("invalid_pointer", f"{pointer} is not an event")
    new = _name(name, "event")
    if new != parts[1] and new in result["events"]:
        raise EditRefused("name_taken", f"the plan already has an event {new!r}")
    result["events"] = _renamed(result["events"], parts[1], new)
    return result


def add_property(
    document: dict[str, Any], pointer: str, name: str, kind: str = "string"
) -> dict[str, Any]:
    """A new property in the object schema at pointer, of one type (or any, for "")."""
    result = copy.deepcopy(document)
    schema, name = _schema_at(result, parse_pointer(pointer)), _name(name, "property")
    if kind and kind not in TYPES:
        raise EditRefused("invalid_value", f"type must be one of {', '.join(TYPES)}")
    properties = schema.setdefault("properties", {})
    if not isinstance(properties, dict):
        raise EditRefused("invalid_document", f"{pointer}/properties is not an object")
    if name in properties:
        raise EditRefused("name_taken", f"{pointer} already has a property {name!r}")
    properties[name] = {"type": kind} if kind else {}
    return result


def rename_property(document: dict[str, Any], pointer: str, name: str) -> dict[str, Any]:
    """The property renamed in its place, and in its parent's required list."""
    result = copy.deepcopy(document)
    parent, old = _property_at(result, parse_pointer(pointer))
    new = _name(name, "property")
    properties = parent.get("properties")
    if not isinstance(properties, dict) or old not in properties:
        raise EditRefused("invalid_pointer", f"{pointer} names no property")
    if new != old and new in properties:
        raise EditRefused("name_taken", f"there is already a property {new!r}")
    parent["properties"] = _renamed(properties, old, new)
    required = parent.get("required")
    if isinstance(required, list):
        parent["required"] = [new if item == old else item for item in required]
    return result


def remove(document: dict[str, Any], pointer: str) -> dict[str, Any]:
    """Remove an event, the common schema, a property (and its required entry) or items."""
    result = copy.deepcopy(document)
    parts = parse_pointer(pointer)
    if parts == ["common"] and "common" in result:
        del result["common"]
    elif len(parts) == 2 and parts[0] == "events":
        _schema_at(result, parts)
        del result["events"][parts[1]]
    elif parts[-1] == "items":
        _schema_at(result, parts)  # there are items to remove
        del _schema_at(result, parts[:-1])["items"]
    else:
        parent, name = _property_at(result, parts)
        properties = parent.get("properties")
        required = parent.get("required")
        listed = isinstance(required, list) and name in required
        if not (isinstance(properties, dict) and name in properties) and not listed:
            raise EditRefused("invalid_pointer", f"{pointer} names no property")
        if isinstance(properties, dict):
            properties.pop(name, None)
        if listed:
            _set_required_list(parent, name, False)
    return result


def _set_required_list(parent: dict[str, Any], name: str, required: bool) -> None:
    listed = parent.get("required")
    names = list(listed) if isinstance(listed, list) else []
    if required and name not in names:
        names.append(name)
    elif not required:
        names = [item for item in names if item != name]
    if names:
        parent["required"] = names
    else:
        parent.pop("required", None)


def set_required(document: dict[str, Any], pointer: str, required: bool) -> dict[str, Any]:
    result = copy.deepcopy(document)
    parent, name = _property_at(result, parse_pointer(pointer))
    _set_required_list(parent, name, required)
    return result


def set_type(document: dict[str, Any], pointer: str, kinds: Sequence[str]) -> dict[str, Any]:
    """One type, a union (with "null": nullable), or none (any type)."""
    result = copy.deepcopy(document)
    schema = _schema_at(result, parse_pointer(pointer))
    unknown = [kind for kind in kinds if kind not in TYPES]
    if unknown:
        raise EditRefused("invalid_value", f"{unknown[0]!r} is not a type: {', '.join(TYPES)}")
    chosen = [kind for kind in TYPES if kind in kinds]
    if not chosen:
        schema.pop("type", None)
    elif set(chosen) != set(types_of(schema)) or not _shown_in_form("type", schema.get("type")):
        schema["type"] = chosen[0] if len(chosen) == 1 else chosen
    return result


def set_rule(document: dict[str, Any], pointer: str, rule: str, text: str) -> dict[str, Any]:
    """Set a rule from the text the form sends, or clear it when the text is empty."""
    if rule not in RULES:
        raise EditRefused("invalid_rule", f"rule must be one of {', '.join(RULES)}")
    if len(text) > MAX_VALUE or "\x00" in text:
        raise EditRefused("invalid_value", f"{rule} is at most {MAX_VALUE} characters")
    result = copy.deepcopy(document)
    schema = _schema_at(result, parse_pointer(pointer))
    if not text.strip():
        schema.pop(rule, None)
        return result
    value: Any
    if rule in TEXT_RULES:
        value = text if rule == "description" else text.strip()
    elif rule in NUMBER_RULES:
        value = _number(text, rule)
    elif rule in LENGTH_RULES:
        value = _number(text, rule, whole=True)
    else:
        value = _enum_values(text, types_of(schema))
    schema[rule] = value
    return result


def add_items(document: dict[str, Any], pointer: str) -> dict[str, Any]:
    """An array's item schema, an object to describe (arrays of objects are the usual case)."""
    result = copy.deepcopy(document)
    schema = _schema_at(result, parse_pointer(pointer))
    if "items" in schema:
        raise EditRefused("name_taken", f"{pointer} already describes its items")
    schema["items"] = {"type": "object", "properties": {}}
    return result


def add_common(document: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    if result.get("common") is not None:
        raise EditRefused("name_taken", "the plan already has common properties")
    result["common"] = {"type": "object", "properties": {}}
    return result


def set_naming(document: dict[str, Any], naming: str) -> dict[str, Any]:
    if naming and naming not in CONVENTIONS:
        raise EditRefused("invalid_value", f"naming must be one of {', '.join(CONVENTIONS)}")
    result = copy.deepcopy(document)
    result["naming"] = naming or None
    return result


def set_allow_unplanned(document: dict[str, Any], allowed: bool) -> dict[str, Any]:
    result = copy.deepcopy(document)
    result["allow_unplanned"] = allowed
    return result


def _shown_in_form(key: str, value: Any) -> bool:
    """Whether the form shows this keyword as fields: a modeled one, of the shape it edits."""
    if key not in MODELED:
        return False
    if key == "type":
        return isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(kind, str) for kind in value)
        )
    if key in ("properties", "items"):
        return isinstance(value, dict)
    if key == "required":
        return isinstance(value, list) and all(isinstance(name, str) for name in value)
    if key == "enum":
        return isinstance(value, list)
    if key in NUMBER_RULES or key in LENGTH_RULES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def others(schema: Mapping[str, Any], *, top: bool = False) -> dict[str, Any]:
    """The keywords the form does not show as fields, kept as they are and shown read-only.

    An event's (or the common) schema, `top`, shows only its description and properties.
    """
    return {
        key: value
        for key, value in schema.items()
        if not _shown_in_form(key, value)
        or (top and key not in ("description", "properties", "required", "type"))
        or (top and key == "type" and value != "object")
    }


def plan_others(document: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's keys the form does not edit ($defs, $schema, description...), read-only."""
    return {key: value for key, value in document.items() if key not in PLAN_MODELED}


def apply_edit(
    document: dict[str, Any], op: str, fields: Mapping[str, str], kinds: Sequence[str] = ()
) -> dict[str, Any]:
    """One edit the form asks for by name: op, and the fields it reads (pointer, name, rule,
    value; kinds are the types checked for set_type)."""
    pointer, name = fields.get("pointer", ""), fields.get("name", "")
    value = fields.get("value", "")
    edits: dict[str, Any] = {
        "add_event": lambda: add_event(document, name),
        "rename_event": lambda: rename_event(document, pointer, name),
        "add_property": lambda: add_property(document, pointer, name, fields.get("kind", "string")),
        "rename_property": lambda: rename_property(document, pointer, name),
        "remove": lambda: remove(document, pointer),
        "set_required": lambda: set_required(document, pointer, value == "on"),
        "set_type": lambda: set_type(document, pointer, kinds),
        "set_rule": lambda: set_rule(document, pointer, fields.get("rule", ""), value),
        "add_items": lambda: add_items(document, pointer),
        "add_common": lambda: add_common(document),
        "set_naming": lambda: set_naming(document, value),
        "set_allow_unplanned": lambda: set_allow_unplanned(document, value == "on"),
    }
    edit = edits.get(op)
    if edit is None:
        raise EditRefused("invalid_edit", f"op must be one of {', '.join(edits)}")
    result: dict[str, Any] = edit()
    return result
