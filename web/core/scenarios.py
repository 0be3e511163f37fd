"""Scenarios: check a scenario document, and judge a test session's events against it (pure).

A scenario is an ordered list of steps; each step names an event and may assert on the
event's values (JSON Pointers into the event as sent): `equals` a JSON value, `present`
true or false, or a JSON Schema fragment (`schema`, compiled offline like plans).

Matching rules (docs/SCENARIOS.md says the same):

1. The session's events are read in arrival order: received_at, then row id.
2. Which event a step takes: the k-th step naming event N takes the k-th event named N.
   Nothing else counts, so a step is decided by the first event that can fill it.
3. A step is `waiting` until its event arrives; then `passed` if every assertion holds,
   else `failed`, naming the first assertion that does not hold and why. Later events never
   change a decided step.
4. Out of order: a step whose event arrived while an earlier step was still waiting, or
   before an earlier step's event. (Whatever that earlier step takes later comes after it.)
5. Repeated: an event named N beyond the number of steps naming N.
   Unexpected: an event whose name no step names (an event without a name included).
6. Verdict: `failed` when a step failed or is out of order, and, for a `strict` scenario,
   when an event is repeated or unexpected; otherwise `passed` once every step passed;
   otherwise `in_progress` (missing: the steps still waiting). A failed run stays failed;
   a passed one stays passed unless the scenario is strict and an extra event arrives.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema_rs
import orjson

from web.core.payloads import split_pointer
from web.core.queries.base import LogEntry
from web.core.validation.envelope import describe
from web.core.validation.messages import pointer
from web.core.validation.plan import PlanProblem, _schema_problems, _validator

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: $ would allow a final \n
SCENARIO_KEYS = ("name", "description", "strict", "steps")
STEP_KEYS = ("event", "description", "assertions")
ASSERTION_KINDS = ("equals", "present", "schema")
MAX_STEPS = 100
MAX_ASSERTIONS = 20
MAX_DESCRIPTION = 2000
# Characters of a schema error's message a finding keeps.
MAX_SAID = 300

StepState = Literal["waiting", "passed", "failed"]
Verdict = Literal["passed", "failed", "in_progress"]
FindingKind = Literal["failed_assertion", "out_of_order", "missing", "repeated", "unexpected"]


class InvalidScenario(ValueError):
    def __init__(self, problems: list[PlanProblem]) -> None:
        super().__init__("; ".join(f"{p.path or '/'}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Assertion:
    path: str
    kind: str  # one of ASSERTION_KINDS
    expected: Any
    validator: jsonschema_rs.Validator | None = None

    def describe(self) -> str:
        if self.kind == "present":
            return f"{self.path} {'present' if self.expected else 'absent'}"
        if self.kind == "equals":
            return f"{self.path} equals {_json_text(self.expected)}"
        return f"{self.path} matches {_json_text(self.expected)}"


@dataclass(frozen=True, slots=True)
class Step:
    number: int  # 1-based, as people count steps
    event: str
    assertions: tuple[Assertion, ...] = ()
    description: str = ""

    @property
    def label(self) -> str:
        return f"step {self.number} ({self.event})"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    description: str = ""
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    """One assertion of a step that the step's event does not meet."""

    assertion: int  # 1-based, in the step's list
    path: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    state: StepState
    entry: LogEntry | None = None  # the event that passed or failed it
    failure: Failure | None = None
    ahead_of: tuple[int, ...] = ()  # earlier step numbers it arrived before

    @property
    def out_of_order(self) -> bool:
        return bool(self.ahead_of)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    message: str
    step: int | None = None
    entry: LogEntry | None = None


@dataclass(frozen=True, slots=True)
class Run:
    scenario: Scenario
    session: str
    steps: tuple[StepResult, ...]
    findings: tuple[Finding, ...]
    verdict: Verdict
    events_judged: int
    truncated: bool = False  # the session had more events than were read

    @property
    def decided(self) -> bool:
        return self.verdict != "in_progress"

    @property
    def passed_steps(self) -> int:
        return sum(result.state == "passed" for result in self.steps)

    def count(self, kind: FindingKind) -> int:
        return sum(finding.kind == kind for finding in self.findings)


# ---- checking and compiling ----------------------------------------------------------------


def check_scenario(document: Any, name: str | None = None) -> list[PlanProblem]:
    """Every problem with a scenario document, each at the JSON Pointer where it is written.

    `name`: the name it is saved under; a document naming another is refused.
    """
    if not isinstance(document, dict):
        return [PlanProblem("", "a scenario must be a JSON object")]
    problems = _unknown_keys(
        document, [], SCENARIO_KEYS, f"a scenario has {', '.join(SCENARIO_KEYS)}"
    )
    given = document.get("name", name)
    if not isinstance(given, str) or not NAME_PATTERN.fullmatch(given):
        problems.append(
            PlanProblem(
                "/name", "a name is 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit"
            )
        )
    elif name is not None and given != name:
        problems.append(PlanProblem("/name", f"the document is named {given!r}, not {name!r}"))
    problems += _text_problems(document, ["description"])
    if not isinstance(document.get("strict", False), bool):
        problems.append(PlanProblem("/strict", "strict must be true or false"))
    steps = document.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        problems.append(PlanProblem("/steps", f"steps must be a list of 1 to {MAX_STEPS} steps"))
        return problems
    for index, step in enumerate(steps):
        problems += _step_problems(step, ["steps", index])
    return problems


def _unknown_keys(
    node: Mapping[str, Any], at: list[str | int], known: Sequence[str], hint: str
) -> list[PlanProblem]:
    return [
        PlanProblem(pointer([*at, key]), f"unknown key {key!r}; {hint}")
        for key in node
        if key not in known
    ]


def _text_problems(node: Mapping[str, Any], at: list[str | int]) -> list[PlanProblem]:
    value = node.get(str(at[-1]), "")
    if isinstance(value, str) and len(value) <= MAX_DESCRIPTION:
        return []
    return [
        PlanProblem(pointer(at), f"a description is text of at most {MAX_DESCRIPTION} characters")
    ]


def _step_problems(step: Any, at: list[str | int]) -> list[PlanProblem]:
    if not isinstance(step, dict):
        return [
            PlanProblem(pointer(at), 'a step is an object such as {"event": "order_completed"}')
        ]
    problems = _unknown_keys(step, at, STEP_KEYS, f"a step has {', '.join(STEP_KEYS)}")
    event = step.get("event")
    if not isinstance(event, str) or not event.strip() or "\x00" in event:
        problems.append(PlanProblem(pointer([*at, "event"]), "a step names its event (text)"))
    problems += _text_problems(step, [*at, "description"])
    assertions = step.get("assertions", [])
    if not isinstance(assertions, list) or len(assertions) > MAX_ASSERTIONS:
        where = pointer([*at, "assertions"])
        return [*problems, PlanProblem(where, f"assertions is a list of at most {MAX_ASSERTIONS}")]
    for index, assertion in enumerate(assertions):
        problems += _assertion_problems(assertion, [*at, "assertions", index])
    return problems


def _assertion_problems(assertion: Any, at: list[str | int]) -> list[PlanProblem]:
    shape = 'an assertion is {"path": "/properties/x"} and one of equals, present or schema'
    if not isinstance(assertion, dict):
        return [PlanProblem(pointer(at), shape)]
    problems = _unknown_keys(assertion, at, ("path", *ASSERTION_KINDS), shape)
    path = assertion.get("path")
    if not isinstance(path, str) or not path or split_pointer(path) is None:
        problems.append(
            PlanProblem(pointer([*at, "path"]), "path is a JSON Pointer such as /properties/total")
        )
    kinds = [kind for kind in ASSERTION_KINDS if kind in assertion]
    if len(kinds) != 1:
        problems.append(PlanProblem(pointer(at), f"{shape} (this one has {len(kinds)})"))
    elif kinds[0] == "present" and not isinstance(assertion["present"], bool):
        problems.append(PlanProblem(pointer([*at, "present"]), "present must be true or false"))
    elif kinds[0] == "schema":
        problems += _schema_problems(assertion["schema"], [*at, "schema"], {}, True)
    return problems


def compile_scenario(document: Mapping[str, Any], name: str | None = None) -> Scenario:
    """The scenario a checked document describes; InvalidScenario with every problem if not."""
    problems = check_scenario(document, name)
    if problems:
        raise InvalidScenario(problems)
    steps = tuple(
        Step(
            number=index + 1,
            event=step["event"],
            assertions=tuple(_assertion(item) for item in step.get("assertions", [])),
            description=step.get("description", ""),
        )
        for index, step in enumerate(document["steps"])
    )
    return Scenario(
        name=document.get("name", name),
        steps=steps,
        description=document.get("description", ""),
        strict=document.get("strict", False),
    )


def _assertion(item: Mapping[str, Any]) -> Assertion:
    kind = next(kind for kind in ASSERTION_KINDS if kind in item)
    validator = _validator(item["schema"], {}) if kind == "schema" else None
    return Assertion(item["path"], kind, item[kind], validator)


# ---- judging a session -------------------------------------------------------------------------


def judge_run(
    scenario: Scenario, session: str, events: Sequence[LogEntry], *, truncated: bool = False
) -> Run:
    """The run of `scenario` over a session's events, given in arrival order (rule 1)."""
    by_name: dict[str, list[Step]] = defaultdict(list)
    for step in scenario.steps:
        by_name[step.event].append(step)
    taken: dict[int, tuple[int, LogEntry]] = {}  # step number -> (position, event)
    extras: list[Finding] = []
    seen: dict[str, int] = defaultdict(int)
    for position, entry in enumerate(events):
        name = entry.event_name
        candidates = by_name.get(name or "") if name else None
        if not candidates:
            extras.append(_unexpected(entry))
            continue
        seen[name or ""] += 1
        if seen[name or ""] <= len(candidates):
            taken[candidates[seen[name or ""] - 1].number] = (position, entry)
        else:
            extras.append(_repeated(candidates[-1], entry))
    results = tuple(_result(step, taken, scenario.steps) for step in scenario.steps)
    findings = [finding for result in results for finding in _step_findings(result, scenario)]
    findings += extras
    return Run(
        scenario,
        session,
        results,
        tuple(findings),
        _verdict(scenario, results, extras),
        len(events),
        truncated,
    )


def _result(
    step: Step, taken: Mapping[int, tuple[int, LogEntry]], steps: Sequence[Step]
) -> StepResult:
    if step.number not in taken:
        return StepResult(step, "waiting")
    position, entry = taken[step.number]
    ahead_of = tuple(
        earlier.number
        for earlier in steps[: step.number - 1]
        if earlier.number not in taken or taken[earlier.number][0] > position
    )
    failure = first_failure(step, entry.payload)
    return StepResult(step, "failed" if failure else "passed", entry, failure, ahead_of)


def _step_findings(result: StepResult, scenario: Scenario) -> list[Finding]:
    step, entry = result.step, result.entry
    found = []
    if result.state == "waiting":
        found.append(
            Finding("missing", f"{step.label}: missing, no {step.event} event yet", step.number)
        )
    if result.failure is not None and entry is not None:
        message = f"{step.label}: event {entry.event_id} fails {result.failure.message}"
        found.append(Finding("failed_assertion", message, step.number, entry))
    if result.ahead_of and entry is not None:
        earlier = ", ".join(scenario.steps[number - 1].label for number in result.ahead_of)
        message = f"{step.label}: event {entry.event_id} arrived before {earlier}"
        found.append(Finding("out_of_order", message, step.number, entry))
    return found


def _unexpected(entry: LogEntry) -> Finding:
    name = entry.event_name or "(no name)"
    return Finding(
        "unexpected", f"unexpected event {entry.event_id} ({name}): no step names it", None, entry
    )


def _repeated(step: Step, entry: LogEntry) -> Finding:
    message = f"repeated {step.event}: event {entry.event_id} after {step.label} had its event"
    return Finding("repeated", message, step.number, entry)


def _verdict(
    scenario: Scenario, results: Sequence[StepResult], extras: Sequence[Finding]
) -> Verdict:
    if any(result.state == "failed" or result.out_of_order for result in results):
        return "failed"
    if scenario.strict and extras:
        return "failed"
    if all(result.state == "passed" for result in results):
        return "passed"
    return "in_progress"


# ---- assertions --------------------------------------------------------------------------------

_MISSING = object()
# An array index in a JSON Pointer: digits without a leading zero.
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


def first_failure(step: Step, event: Any) -> Failure | None:
    """The first of the step's assertions the event does not meet, and why; None if all hold."""
    for number, assertion in enumerate(step.assertions, start=1):
        message = assertion_failure(assertion, event)
        if message is not None:
            return Failure(number, assertion.path, assertion.kind, message)
    return None


def assertion_failure(assertion: Assertion, event: Any) -> str | None:
    """Why the event does not meet the assertion, as a sentence; None when it does."""
    value = resolve(event, assertion.path)
    path = assertion.path
    if assertion.kind == "present":
        if assertion.expected and value is _MISSING:
            return f"{path} present: it is missing"
        if not assertion.expected and value is not _MISSING:
            return f"{path} absent: it is {describe(value)}"
        return None
    if value is _MISSING:
        return f"{assertion.describe()}: {path} is missing"
    if assertion.kind == "equals":
        if json_equal(value, assertion.expected):
            return None
        return f"{assertion.describe()}: it is {describe(value)}"
    assert assertion.validator is not None  # compiled with its schema
    for error in assertion.validator.iter_errors(value):
        inner = pointer(list(error.instance_path))
        # The library's message quotes the value whole; a report line quotes a little of it.
        said = (
            error.message
            if len(error.message) <= MAX_SAID
            else error.message[: MAX_SAID - 3] + "..."
        )
        return f"{assertion.describe()}: at {path}{inner}, {said}"
    return None


def resolve(document: Any, path: str) -> Any:
    """The value a JSON Pointer names in a document, or _MISSING."""
    tokens = split_pointer(path)
    if tokens is None:
        return _MISSING
    node = document
    for part in tokens:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _INDEX.fullmatch(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON means it: 1 equals 1.0, but true is not 1 and "1" is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
