"""GET /docs: the API reference, rendered on the server from the /openapi.json document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from quart import Blueprint, render_template

from web.context import services
from web.openapi import openapi_document
from web.openapi_refs import Schema

blueprint = Blueprint("api_docs", __name__)

_METHODS = ("get", "post", "put", "patch", "delete")
_SCHEMA_REF = "#/components/schemas/"


@dataclass(frozen=True)
class Field:
    """A parameter or a property: its name, where it goes, its type in words."""

    name: str
    where: str
    required: bool
    type: str
    refs: list[str]
    description: str


@dataclass(frozen=True)
class Payload:
    """A body: its media types and schema."""

    media_types: list[str]
    type: str
    refs: list[str]
    required: bool = True


@dataclass(frozen=True)
class Answer:
    """One documented status: what it means, its body, and the error codes it may carry."""

    status: str
    description: str
    body: Payload | None
    codes: list[str]


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str
    summary: str
    description: str
    access: str
    parameters: list[Field]
    body: Payload | None
    answers: list[Answer]


@dataclass(frozen=True)
class Group:
    name: str
    description: str
    operations: list[Operation]


@dataclass(frozen=True)
class SchemaDoc:
    name: str
    description: str
    type: str
    fields: list[Field]
    json: str


@blueprint.get("/docs")
async def page() -> str:
    document = openapi_document(services().settings.limits)
    return await render_template(
        "api_docs.html",
        info=document["info"],
        groups=groups(document),
        schemes=document["components"]["securitySchemes"],
        schemas=schema_docs(document),
    )


def groups(document: dict[str, Any]) -> list[Group]:
    """Every operation, grouped by its first tag, in the document's order of tags."""
    by_tag: dict[str, list[Operation]] = {tag["name"]: [] for tag in document["tags"]}
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            if method in item:
                found = _operation(document, path, method, item[method], shared)
                by_tag.setdefault(item[method]["tags"][0], []).append(found)
    described = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    return [Group(name, described.get(name, ""), ops) for name, ops in by_tag.items() if ops]


def _operation(
    document: dict[str, Any], path: str, method: str, op: Schema, shared: list[Schema]
) -> Operation:
    parameters = [_resolve(document, p) for p in [*shared, *op.get("parameters", [])]]
    body = op.get("requestBody")
    return Operation(
        id=op["operationId"],
        method=method.upper(),
        path=path,
        summary=op.get("summary", ""),
        description=op.get("description", ""),
        access=_access(op.get("security", [{}])),
        parameters=[_parameter(p) for p in parameters],
        body=_payload(body["content"], body.get("required", False)) if body else None,
        answers=[
            _answer(status, _resolve(document, response))
            for status, response in op["responses"].items()
        ],
    )


def _access(security: list[Schema]) -> str:
    ways = []
    for requirement in security:
        for scheme, scopes in requirement.items():
            ways.append(f"{scheme} ({', '.join(scopes)})" if scopes else scheme)
    open_to_all = any(not requirement for requirement in security)
    said = " or ".join(ways)
    if open_to_all:
        return f"{said}; none needed while sign-in is not required" if said else "none"
    return said


def _parameter(parameter: Schema) -> Field:
    schema = parameter.get("schema", {})
    return Field(
        name=parameter["name"],
        where=parameter["in"],
        required=bool(parameter.get("required")),
        type=type_text(schema),
        refs=refs_in(schema),
        description=parameter.get("description", schema.get("description", "")),
    )


def _payload(content: dict[str, Any], required: bool) -> Payload:
    schemas = [media.get("schema", {}) for media in content.values()]
    first = schemas[0] if schemas else {}
    return Payload(list(content), type_text(first), refs_in(first), required)


def _answer(status: str, response: Schema) -> Answer:
    content = response.get("content")
    codes: list[str] = []
    if content:
        for media in content.values():
            codes += _codes(media.get("schema", {}))
    body = _payload(content, True) if content and any(m for m in content.values()) else None
    return Answer(status, response.get("description", ""), body, codes)


def _codes(schema: Schema) -> list[str]:
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    return list(code.get("enum", []))


def _resolve(document: dict[str, Any], item: Schema) -> Schema:
    while "$ref" in item and item["$ref"].startswith("#/components/"):
        _, _, kind, name = item["$ref"].split("/", 3)
        item = document["components"][kind][name]
    return item


def type_text(schema: Schema) -> str:
    """A schema in a few words: `string (date-time)`, `array of Issue`, `integer | null`."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_SCHEMA_REF)
    for key, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
        if key in schema:
            return joiner.join(type_text(part) for part in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(_json(value) for value in schema["enum"])
    if "const" in schema:
        return _json(schema["const"])
    kind = schema.get("type", "any")
    text = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if text == "array":
        text = f"array of {type_text(schema.get('items', {}))}"
    elif text == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {type_text(schema['additionalProperties'])}"
    limits = [
        f"{word} {schema[key]}"
        for key, word in _LIMITS
        if key in schema and not isinstance(schema[key], bool)
    ]
    if "format" in schema:
        limits.insert(0, str(schema["format"]))
    return f"{text} ({', '.join(limits)})" if limits else text


_LIMITS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("minLength", "length >="),
    ("maxLength", "length <="),
    ("minItems", "items >="),
    ("maxItems", "items <="),
    ("pattern", "matching"),
)


def refs_in(schema: Any) -> list[str]:
    """The component schemas a schema names, in order, once each."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
                found[ref.removeprefix(_SCHEMA_REF)] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return list(found)


def schema_docs(document: dict[str, Any]) -> list[SchemaDoc]:
    """Every component schema: its properties as a table and the schema itself as JSON."""
    docs = []
    for name, schema in sorted(document["components"]["schemas"].items()):
        required = set(schema.get("required", []))
        fields = [
            Field(
                key,
                "",
                key in required,
                type_text(value),
                refs_in(value),
                value.get("description", ""),
            )
            for key, value in schema.get("properties", {}).items()
        ]
        docs.append(
            SchemaDoc(
                name, schema.get("description", ""), type_text(schema), fields, _pretty(schema)
            )
        )
    return docs


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
