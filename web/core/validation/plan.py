"""Tracking plans: check a plan document, compile it once per version, judge events with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import jsonschema_rs

from web.core.validation.envelope import check_envelope, event_name_of, name_key_of
from web.core.validation.messages import issues_from_error, pointer
from web.core.validation.naming import CONVENTIONS, Convention, check_naming
from web.core.validation.verdict import Issue, Verdict

PLAN_KEYS = frozenset(
    {"events", "common", "allow_unplanned", "naming", "$defs", "$schema", "description"}
)
DEFAULT_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The dialects a plan may name. Anything else would make the server fetch a URL of the plan
# author's choosing, so it is refused rather than retrieved.
KNOWN_DIALECTS = frozenset(
    {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema",
    }
)


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """Something wrong with a plan document, located by a JSON Pointer into it."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class InvalidPlan(ValueError):
    def __init__(self, problems: list[PlanProblem]) -> None:
        super().__init__("; ".join(f"{p.path or '/'}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class CompiledPlan:
    version: int
    events: Mapping[str, jsonschema_rs.Validator]
    common: jsonschema_rs.Validator | None = None
    allow_unplanned: bool = False
    naming: Convention | None = None
    schemas: Mapping[str, Any] = field(default_factory=dict)

    def judge(self, event: Mapping[str, Any]) -> Verdict:
        issues = check_envelope(event)
        name = event_name_of(event)
        name = name if isinstance(name, str) else None
        if name is not None and self.events:
            validator = self.events.get(name)
            if validator is not None:
                issues += _schema_issues(validator, event)
            else:
                issues.append(_unplanned(event, name, self.allow_unplanned))
        if self.common is not None:
            issues += _schema_issues(self.common, event)
        if self.naming is not None:
            issues += check_naming(event, name, self.naming)
        return Verdict(issues=tuple(issues), plan_version=self.version)


def _schema_issues(validator: jsonschema_rs.Validator, event: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for error in validator.iter_errors(event):
        issues += issues_from_error(error, event)
    return issues


def _unplanned(event: Mapping[str, Any], name: str, allowed: bool) -> Issue:
    if allowed:
        message = f"event {name!r} is not in the tracking plan (allowed: allow_unplanned is on)"
    else:
        message = f"event {name!r} is not in the tracking plan"
    return Issue(
        f"/{name_key_of(event)}",
        "unplanned_event",
        message,
        None,
        name,
        severity="warning" if allowed else "error",
    )


def check_plan(document: Any) -> list[PlanProblem]:
    """Every problem with a plan document, each at the path where it is written."""
    if not isinstance(document, dict):
        return [PlanProblem("", "a tracking plan must be a JSON object")]
    problems = [
        PlanProblem(
            pointer([key]), f"unknown key {key!r}; a plan has {', '.join(sorted(PLAN_KEYS))}"
        )
        for key in document
        if key not in PLAN_KEYS
    ]
    if "$schema" in document and not _known_dialect(document["$schema"]):
        problems.append(_unknown_dialect(["$schema"]))
    defs = document.get("$defs", {})
    if not isinstance(defs, dict):
        problems.append(PlanProblem("/$defs", "$defs must be an object of name -> schema"))
        defs = {}
    for name, schema in defs.items():
        problems += _structure_problems(schema, ["$defs", name], document)
    # Event schemas compile against the plan's $schema and $defs: only once those are sound.
    can_compile = not problems
    events = document.get("events", {})
    if not isinstance(events, dict):
        problems.append(PlanProblem("/events", "events must be an object of event name -> schema"))
        events = {}
    for name, schema in events.items():
        if not name.strip():
            problems.append(
                PlanProblem(pointer(["events", name]), "an event name must not be empty")
            )
        problems += _schema_problems(schema, ["events", name], document, can_compile)
    if "common" in document and document["common"] is not None:
        problems += _schema_problems(document["common"], ["common"], document, can_compile)
    if not isinstance(document.get("allow_unplanned", False), bool):
        problems.append(PlanProblem("/allow_unplanned", "allow_unplanned must be true or false"))
    if document.get("naming") not in (None, *CONVENTIONS):
        problems.append(
            PlanProblem("/naming", f"naming must be one of {', '.join(CONVENTIONS)} or null")
        )
    return problems


def compile_plan(document: Mapping[str, Any], version: int) -> CompiledPlan:
    """Compile every schema of a checked plan; raises InvalidPlan if it was not checked."""
    problems = check_plan(document)
    if problems:
        raise InvalidPlan(problems)
    events = cast(dict[str, Any], document.get("events") or {})
    common = document.get("common")
    return CompiledPlan(
        version=version,
        events={name: _validator(schema, document) for name, schema in events.items()},
        common=_validator(common, document) if common is not None else None,
        allow_unplanned=bool(document.get("allow_unplanned", False)),
        naming=document.get("naming"),
        schemas=dict(events),
    )


def _with_plan_context(schema: Any, plan: Mapping[str, Any]) -> Any:
    """The schema as compiled: the plan's $defs and $schema apply inside every event schema."""
    if not isinstance(schema, dict):
        return schema
    merged = dict(schema)
    if "$schema" not in merged:
        merged["$schema"] = plan.get("$schema", DEFAULT_DIALECT)
    plan_defs = plan.get("$defs")
    if isinstance(plan_defs, dict):
        merged["$defs"] = {**plan_defs, **(schema.get("$defs") or {})}
    return merged


def _validator(schema: Any, plan: Mapping[str, Any]) -> jsonschema_rs.Validator:
    # offline: a $ref to a URL is an error, never a request from the server.
    return jsonschema_rs.validator_for(
        _with_plan_context(schema, plan), validate_formats=True, offline=True
    )


def _known_dialect(uri: Any) -> bool:
    return (
        isinstance(uri, str)
        and uri.rstrip("#").replace(
            "https://json-schema.org/draft-0", "http://json-schema.org/draft-0"
        )
        in KNOWN_DIALECTS
    )


def _unknown_dialect(at: list[str | int]) -> PlanProblem:
    return PlanProblem(
        pointer(at),
        "unknown $schema: use https://json-schema.org/draft/2020-12/schema (the default)"
        " or http://json-schema.org/draft-07/schema#",
    )


def _structure_problems(
    schema: Any, at: list[str | int], plan: Mapping[str, Any]
) -> list[PlanProblem]:
    """Is this a well-formed schema of its dialect? (References are resolved later.)"""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [PlanProblem(pointer(at), "a schema must be a JSON object (or true/false)")]
    dialect = schema.get("$schema", plan.get("$schema", DEFAULT_DIALECT))
    if not _known_dialect(dialect):
        # A plan-level $schema is reported once, where it is written.
        return [_unknown_dialect([*at, "$schema"])] if "$schema" in schema else []
    try:
        jsonschema_rs.meta.validate({**schema, "$schema": dialect})
    except jsonschema_rs.ValidationError as exc:
        return [PlanProblem(pointer([*at, *exc.instance_path]), exc.message)]
    return []


def _schema_problems(
    schema: Any, at: list[str | int], plan: Mapping[str, Any], can_compile: bool
) -> list[PlanProblem]:
    """Structure first, then compile with the plan's $defs, which finds dangling $refs."""
    problems = _structure_problems(schema, at, plan)
    if problems or not can_compile or isinstance(schema, bool):
        return problems
    try:
        _validator(schema, plan)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        return [PlanProblem(pointer(at), str(exc).splitlines()[0])]
    return []
