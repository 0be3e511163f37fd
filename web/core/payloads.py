"""One stored event shown to a person: its JSON as marked lines, its schema, a replay command.

Pure. Lines carry text only; the template escapes every one of them, so a payload is
shown as written and never interpreted.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from web.core.validation.envelope import ID_KEYS

LineKind = str  # string | number | boolean | null | open | close | empty | missing


@dataclass(frozen=True, slots=True)
class Finding:
    """What the verdict said at one JSON Pointer."""

    rule: str
    severity: str  # error | warning


@dataclass(frozen=True, slots=True)
class JsonLine:
    depth: int
    key: str | None  # the key as JSON text, or None for array items and the root
    text: str
    kind: LineKind
    comma: bool
    pointer: str
    findings: tuple[Finding, ...] = ()

    @property
    def mark(self) -> str:
        """error, warning or "" : the worst finding at this node."""
        severities = {finding.severity for finding in self.findings}
        return "error" if "error" in severities else "warning" if severities else ""

    @property
    def rules(self) -> str:
        return ", ".join(dict.fromkeys(finding.rule for finding in self.findings))


@dataclass
class _Marks:
    at: dict[str, list[Finding]] = field(default_factory=dict)
    # Pointer of an existing container -> (label, pointer) of children the verdict names
    # but the payload lacks (a missing required property, for one).
    absent: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def findings_by_pointer(errors: Iterable[Mapping[str, Any]]) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for error in errors:
        path = error.get("path")
        if not isinstance(path, str):
            continue
        severity = "warning" if error.get("severity") == "warning" else "error"
        found.setdefault(path, []).append(Finding(str(error.get("rule") or ""), severity))
    return found


def json_lines(value: Any, findings: Mapping[str, Sequence[Finding]]) -> list[JsonLine]:
    """The value pretty-printed one node per line, each line marked with the findings at it."""
    marks = _Marks()
    for pointer, found in findings.items():
        tokens = split_pointer(pointer)
        if tokens is None:
            continue
        depth, node = _deepest(value, tokens)
        at = join_pointer(tokens[:depth])
        if depth == len(tokens) or not isinstance(node, (dict, list)):
            marks.at.setdefault(at, []).extend(found)
        else:
            label = "/".join(tokens[depth:])
            marks.absent.setdefault(at, []).append((label, pointer))
            marks.at.setdefault(pointer, []).extend(found)
    lines: list[JsonLine] = []
    _walk(value, None, "", 0, False, marks, lines)
    return lines


def _walk(
    value: Any,
    key: str | None,
    pointer: str,
    depth: int,
    comma: bool,
    marks: _Marks,
    lines: list[JsonLine],
) -> None:
    found = tuple(marks.at.get(pointer, ()))
    if isinstance(value, (dict, list)):
        children: list[tuple[str | None, str, Any]]
        if isinstance(value, dict):
            children = [(_json(k), f"{pointer}/{escape_token(k)}", v) for k, v in value.items()]
            brackets = "{}"
        else:
            children = [(None, f"{pointer}/{i}", v) for i, v in enumerate(value)]
            brackets = "[]"
        absent = sorted(marks.absent.get(pointer, []))
        if not children and not absent:
            lines.append(JsonLine(depth, key, brackets, "empty", comma, pointer, found))
            return
        lines.append(JsonLine(depth, key, brackets[0], "open", False, pointer, found))
        last = len(children) + len(absent) - 1
        for index, (child_key, child_pointer, child) in enumerate(children):
            _walk(child, child_key, child_pointer, depth + 1, index < last, marks, lines)
        for index, (label, absent_pointer) in enumerate(absent, start=len(children)):
            missing = tuple(marks.at.get(absent_pointer, ()))
            lines.append(
                JsonLine(
                    depth + 1,
                    _json(label),
                    "(missing)",
                    "missing",
                    index < last,
                    absent_pointer,
                    missing,
                )
            )
        lines.append(JsonLine(depth, None, brackets[1], "close", comma, pointer))
        return
    lines.append(JsonLine(depth, key, _json(value), _kind(value), comma, pointer, found))


def _kind(value: Any) -> LineKind:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _deepest(value: Any, tokens: list[str]) -> tuple[int, Any]:
    """How many tokens resolve in value, and the node the last of them reaches."""
    node = value
    for depth, token in enumerate(tokens):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return depth, node
    return len(tokens), node


def escape_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def split_pointer(pointer: str) -> list[str] | None:
    """RFC 6901 tokens; None when the text is not a JSON Pointer."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        return None
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def join_pointer(tokens: Sequence[str]) -> str:
    return "".join(f"/{escape_token(token)}" for token in tokens)


# ---- the schema it was judged against -------------------------------------------------------


def schema_findings(
    schema: Any, findings: Mapping[str, Sequence[Finding]]
) -> dict[str, list[Finding]]:
    """Where in an event schema each finding points: the subschema of the failing value, and
    the keyword its rule names (`type`, `format`, `required`, …) where the schema has it."""
    found: dict[str, list[Finding]] = {}
    for pointer, items in findings.items():
        tokens = split_pointer(pointer)
        if tokens is None:
            continue
        node: Any = schema
        at: list[str] = []
        parent: Any = None
        parent_at: list[str] = []
        complete = True
        for token in tokens:
            step = _subschema(node, token)
            if step is None:
                complete = False  # node is now the object that lacks or refuses the key
                break
            parent, parent_at = node, at
            node, at = step[0], [*at, *step[1]]
        if complete and at:
            found.setdefault(join_pointer(at), []).extend(items)
        for finding in items:
            if isinstance(node, dict) and finding.rule in node:
                found.setdefault(join_pointer([*at, finding.rule]), []).append(finding)
            elif complete and isinstance(parent, dict) and finding.rule in parent:
                # A declared property that is missing: `required` lives in the parent.
                found.setdefault(join_pointer([*parent_at, finding.rule]), []).append(finding)
    return found


def _subschema(node: Any, token: str) -> tuple[Any, list[str]] | None:
    if not isinstance(node, dict):
        return None
    properties = node.get("properties")
    if isinstance(properties, dict) and token in properties:
        return properties[token], ["properties", token]
    if token.isdigit() and isinstance(node.get("items"), dict):
        return node["items"], ["items"]
    return None


# ---- replay ---------------------------------------------------------------------------------


def replay_body(payload: Any) -> Any:
    """The payload without its event id: a replay with the same id would be dropped as a
    duplicate (storage is exactly-once per id), so the server assigns a fresh one."""
    if isinstance(payload, dict):
        return {key: value for key, value in payload.items() if key not in ID_KEYS}
    return payload


def curl_command(
    url: str, payload: Any, *, session: str | None = None, write_key: str | None = None
) -> str:
    """A shell command that sends the event again; every argument is shell-quoted."""
    args = [["curl", "-sS", "-X", "POST", url], ["-H", "Content-Type: application/json"]]
    if session:
        args.append(["-H", f"X-LVD-Session: {session}"])
    if write_key:
        args.append(["-H", f"X-Write-Key: {write_key}"])
    args.append(["--data-raw", _json(replay_body(payload))])
    return " \\\n  ".join(" ".join(shlex.quote(arg) for arg in line) for line in args)
