"""The scenario editor's form: its fields to a scenario document and back, and its edit actions.

The form keeps what was typed (an assertion's value as text), so a value that is not yet
JSON stays in its field with its problem beside it instead of being lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from web.core.scenarios import ASSERTION_KINDS, MAX_ASSERTIONS, MAX_STEPS, check_scenario
from web.core.validation.plan import PlanProblem

_ACTION = re.compile(
    r"^(add_step|remove_step|up|down|add_assertion|remove_assertion)(?:-(\d+))?(?:-(\d+))?$"
)


@dataclass
class AssertionRow:
    path: str = ""
    kind: str = "equals"
    value: str = ""


@dataclass
class StepRow:
    event: str = ""
    description: str = ""
    assertions: list[AssertionRow] = field(default_factory=list)


@dataclass
class Draft:
    name: str
    description: str = ""
    strict: bool = False
    steps: list[StepRow] = field(default_factory=lambda: [StepRow()])

    @classmethod
    def from_document(cls, name: str, document: Mapping[str, Any]) -> Draft:
        steps = [
            StepRow(
                step.get("event", ""),
                step.get("description", ""),
                [_row(item) for item in step.get("assertions", [])],
            )
            for step in document.get("steps", [])
        ]
        return cls(name, document.get("description", ""), document.get("strict", False), steps)

    @classmethod
    def from_form(cls, name: str, form: Mapping[str, str]) -> Draft:
        steps = []
        for i in range(MAX_STEPS + 1):
            if f"step-{i}-event" not in form:
                break
            rows = []
            for j in range(MAX_ASSERTIONS + 1):
                prefix = f"step-{i}-assertion-{j}"
                if f"{prefix}-path" not in form:
                    break
                rows.append(
                    AssertionRow(
                        form[f"{prefix}-path"].strip(),
                        form.get(f"{prefix}-kind", "equals"),
                        form.get(f"{prefix}-value", ""),
                    )
                )
            steps.append(
                StepRow(
                    form[f"step-{i}-event"].strip(), form.get(f"step-{i}-description", ""), rows
                )
            )
        return cls(name, form.get("description", ""), form.get("strict") == "on", steps)

    def apply(self, action: str) -> None:
        """An edit the form's buttons ask for: add, remove or move a step; add or remove an
        assertion. Unknown actions and numbers out of range do nothing."""
        match = _ACTION.fullmatch(action)
        if match is None:
            return
        verb, first, second = match[1], _number(match[2]), _number(match[3])
        steps = self.steps
        if verb == "add_step" and len(steps) < MAX_STEPS:
            steps.append(StepRow())
        elif first is None or not 0 <= first < len(steps):
            return
        elif verb == "remove_step" and len(steps) > 1:
            del steps[first]
        elif verb == "up" and first > 0:
            steps[first - 1], steps[first] = steps[first], steps[first - 1]
        elif verb == "down" and first < len(steps) - 1:
            steps[first + 1], steps[first] = steps[first], steps[first + 1]
        elif verb == "add_assertion" and len(steps[first].assertions) < MAX_ASSERTIONS:
            steps[first].assertions.append(AssertionRow())
        elif verb == "remove_assertion" and second is not None:
            rows = steps[first].assertions
            if 0 <= second < len(rows):
                del rows[second]

    def document(self) -> tuple[dict[str, Any], list[PlanProblem]]:
        """The scenario document the form describes, and every problem with it."""
        problems: list[PlanProblem] = []
        steps = []
        for i, step in enumerate(self.steps):
            built: dict[str, Any] = {"event": step.event}
            if step.description:
                built["description"] = step.description
            if step.assertions:
                built["assertions"] = [
                    _assertion(row, f"/steps/{i}/assertions/{j}", problems)
                    for j, row in enumerate(step.assertions)
                ]
            steps.append(built)
        document: dict[str, Any] = {"name": self.name}
        if self.description:
            document["description"] = self.description
        if self.strict:
            document["strict"] = True
        document["steps"] = steps
        return document, problems + check_scenario(document, self.name)


def _row(item: Mapping[str, Any]) -> AssertionRow:
    kind = next((kind for kind in ASSERTION_KINDS if kind in item), "equals")
    value = item.get(kind)
    text = ("true" if value else "false") if kind == "present" else _json_text(value)
    return AssertionRow(item.get("path", ""), kind, text)


def _assertion(row: AssertionRow, at: str, problems: list[PlanProblem]) -> dict[str, Any]:
    kind = row.kind if row.kind in ASSERTION_KINDS else "equals"
    text = row.value.strip()
    value: Any
    if kind == "present":
        value = text.lower() != "false"
    else:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            if kind == "schema":
                problems.append(
                    PlanProblem(f"{at}/schema", 'a schema is JSON, such as {"type": "number"}')
                )
            # An equals value that is not JSON is taken as the text it is.
            value = {} if kind == "schema" else row.value
    return {"path": row.path, kind: value}


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _number(text: str | None) -> int | None:
    return int(text) if text is not None else None
