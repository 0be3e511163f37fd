"""The API description's references and shared shapes: refs to components, JSON answers."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def ref_param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def json_response(description: str, schema: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}
