"""The API description's scenario paths (web/scenarios_api.py) and the types of their bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from web.api_types import Count, Int4, Timestamp
from web.core.scenarios import MAX_ASSERTIONS, MAX_DESCRIPTION, MAX_STEPS
from web.openapi_operations import READ, WRITE, answer, operation, query
from web.openapi_refs import Schema, ref_param
from web.query_api import MAX_WAIT_SECONDS

TAG: Schema = {
    "name": "scenarios",
    "description": "Scenarios: ordered expected events with assertions, run against a test"
    " session (docs/SCENARIOS.md).",
}
ScenarioName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


@with_config(ConfigDict(extra="forbid"))
class ScenarioAssertion(TypedDict):
    """A check on the step's event: `path` (a JSON Pointer into the event as sent) and exactly
    one of `equals` (a JSON value), `present` (true or false) or `schema` (JSON Schema)."""

    path: Annotated[
        str, Field(pattern=r"^/", description="a JSON Pointer, such as /properties/total")
    ]
    equals: NotRequired[Any]
    present: NotRequired[bool]
    schema: NotRequired[Annotated[Any, Field(description="a JSON Schema the value must pass")]]


@with_config(ConfigDict(extra="forbid"))
class ScenarioStep(TypedDict):
    """One expected event, by name, and what must hold of it."""

    event: Annotated[str, Field(min_length=1)]
    description: NotRequired[Description]
    assertions: NotRequired[Annotated[list[ScenarioAssertion], Field(max_length=MAX_ASSERTIONS)]]


@with_config(ConfigDict(extra="forbid"))
class ScenarioDocument(TypedDict):
    """A scenario as stored and as kept in git; `name`, when given, must be the path's name.
    Checked when saved (400 invalid_scenario, each problem located by a JSON Pointer)."""

    name: NotRequired[ScenarioName]
    description: NotRequired[Description]
    strict: NotRequired[
        Annotated[bool, Field(description="repeated or unexpected events fail the run")]
    ]
    steps: Annotated[list[ScenarioStep], Field(min_length=1, max_length=MAX_STEPS)]


class SavedScenario(TypedDict):
    """A stored scenario: updated in place, `revision` counting its saves."""

    app_id: str
    name: str
    revision: Int4
    created_at: Timestamp
    updated_at: Timestamp
    scenario: ScenarioDocument


class ScenarioEntry(TypedDict):
    """A scenario as listed: its name and its steps' events."""

    name: str
    description: str
    steps: list[str]
    revision: Int4
    updated_at: Timestamp


class ScenarioList(TypedDict):
    """The app's scenarios, by name."""

    scenarios: list[ScenarioEntry]


Verdict = Literal["passed", "failed", "in_progress"]


class AssertionFailure(TypedDict):
    """The first assertion of a step its event does not meet, and why."""

    assertion: Annotated[int, Field(ge=1)]
    path: str
    kind: Literal["equals", "present", "schema"]
    message: str


class RunStep(TypedDict):
    """A step's state, the event that decided it, and a link to that event's detail page."""

    number: Annotated[int, Field(ge=1)]
    event: str
    state: Literal["waiting", "passed", "failed"]
    out_of_order: bool
    ahead_of: Annotated[list[int], Field(description="earlier steps it arrived before")]
    event_id: str | None
    event_url: str | None
    failure: AssertionFailure | None


class RunFinding(TypedDict):
    """Something the run found: a failed assertion, a step out of order or missing, an event
    repeated or unexpected."""

    kind: Literal["failed_assertion", "out_of_order", "missing", "repeated", "unexpected"]
    message: str
    step: int | None
    event_id: str | None
    event_url: str | None


class RunCounts(TypedDict):
    steps: Count
    passed: Count
    failed: Count
    waiting: Count
    out_of_order: Count
    repeated: Count
    unexpected: Count


class RunReport(TypedDict):
    """A scenario judged against a test session's events: its verdict and its report."""

    app_id: str
    scenario: str
    revision: Int4
    session: str
    verdict: Verdict
    decided: Annotated[bool, Field(description="passed or failed: a long poll ends here")]
    summary: str
    text: Annotated[str, Field(description="the report in words: the summary, then findings")]
    counts: RunCounts
    steps: list[RunStep]
    findings: list[RunFinding]
    events_judged: Count
    truncated: bool
    generated_at: Timestamp


REQUESTS: tuple[Any, ...] = (ScenarioDocument,)
ANSWERS: tuple[Any, ...] = (SavedScenario, ScenarioList, RunReport)

_PARAMETERS = [
    ref_param("AppId"),
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]
# Like the query API, the scenario API answers no other site's page (web/security.py).
_SAME_SITE = {"403": ("cross_site_request",)}
_UNKNOWN = {"404": ("unknown_scenario",), **_SAME_SITE}


_BASE = "/api/apps/{app_id}/scenarios"
_RUN_PARAMETERS = [
    *_PARAMETERS,
    {"name": "session", "in": "path", "required": True, "schema": {"type": "string"}},
]


def scenario_paths() -> dict[str, Schema]:
    """List, get, save, delete a scenario; a run's report (long-polled with ?wait=)."""
    return {
        _BASE: {
            "parameters": [ref_param("AppId")],
            "get": operation(
                "get",
                "listScenarios",
                "scenarios",
                "The app's scenarios",
                scope=READ,
                answer=answer("The scenarios", "ScenarioList"),
                refusals=_SAME_SITE,
            ),
        },
        f"{_BASE}/{{name}}": {"parameters": _PARAMETERS, **_scenario_operations()},
        **_run_paths(),
    }


def _scenario_operations() -> dict[str, Schema]:
    return {
        "get": operation(
            "get",
            "getScenario",
            "scenarios",
            "One scenario",
            scope=READ,
            answer=answer("The scenario", "SavedScenario"),
            refusals=_UNKNOWN,
        ),
        "put": operation(
            "put",
            "putScenario",
            "scenarios",
            "Save a scenario (201 when new); it is checked first",
            scope=WRITE,
            answer=answer("The scenario as saved", "SavedScenario"),
            body="ScenarioDocument",
            description="A refused scenario's problems are in the error's"
            " `problems`, each located by a JSON Pointer. 201 when it is new.",
            refusals={
                "400": ("invalid_scenario", "invalid_scenario_name", "null_character"),
                **_SAME_SITE,
            },
        ),
        "delete": operation(
            "delete",
            "deleteScenario",
            "scenarios",
            "Delete a scenario",
            scope=WRITE,
            answer=None,
            status="204",
            refusals=_UNKNOWN,
        ),
    }


def _run_paths() -> dict[str, Schema]:
    """A run's report as JSON (long-polled with ?wait=) and as Markdown."""
    wait = query(
        "wait",
        {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
        "Seconds to wait for the run to be decided (passed or failed); the"
        " answer comes at once when it is, else when the wait is over.",
    )
    markdown = {"text/markdown": {"schema": {"type": "string"}}}
    return {
        f"{_BASE}/{{name}}/runs/{{session}}": {
            "parameters": _RUN_PARAMETERS,
            "get": operation(
                "get",
                "getScenarioRun",
                "scenarios",
                "The scenario judged against a test session's events: verdict and report",
                scope=READ,
                answer=answer("The run's report", "RunReport"),
                parameters=[wait],
                refusals={**_UNKNOWN, "400": ("invalid_session", "invalid_wait")},
            ),
        },
        "/apps/{app_id}/scenarios/{name}/runs/{session}.md": {
            "parameters": _RUN_PARAMETERS,
            "get": operation(
                "get",
                "exportScenarioRunMd",
                "export",
                "A scenario run's report as Markdown: verdict, steps, findings with links",
                scope=READ,
                answer={"description": "The run's report", "content": markdown},
                refusals={"404": ("unknown_scenario",), "400": ("invalid_session",)},
            ),
        },
    }
