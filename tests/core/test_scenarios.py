"""The scenario engine: matching rules, assertion kinds, verdicts, and bad documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from web.core.queries.base import LogEntry
from web.core.scenarios import (
    InvalidScenario,
    Run,
    check_scenario,
    compile_scenario,
    judge_run,
)

CHECKOUT: dict[str, Any] = {
    "name": "checkout",
    "description": "Buy one thing",
    "steps": [
        {"event": "product_viewed"},
        {"event": "product_added", "assertions": [{"path": "/properties/sku", "present": True}]},
        {"event": "checkout_started"},
        {
            "event": "order_completed",
            "assertions": [
                {"path": "/properties/total", "schema": {"type": "number", "exclusiveMinimum": 0}}
            ],
        },
    ],
}
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def entry(number: int, name: str | None, **properties: Any) -> LogEntry:
    at = START + timedelta(seconds=number)
    return LogEntry(
        id=number,
        app_id="shop",
        event_id=f"e{number}",
        event_name=name,
        payload={"event": name, "properties": properties},
        status="valid",
        errors=[],
        plan_version=None,
        session="s1",
        received_at=at,
        created_at=at,
    )


def run_of(names: list[tuple[str | None, dict[str, Any]]], document: Any = CHECKOUT) -> Run:
    events = [entry(i + 1, name, **props) for i, (name, props) in enumerate(names)]
    return judge_run(compile_scenario(document), "s1", events)


GOOD: list[tuple[str | None, dict[str, Any]]] = [
    ("product_viewed", {}),
    ("product_added", {"sku": "A1"}),
    ("checkout_started", {}),
    ("order_completed", {"total": 12.5}),
]


def states(run: Run) -> list[str]:
    return [result.state for result in run.steps]


def test_scenario_in_order_passes_with_each_step_matched_by_its_event() -> None:
    run = run_of(GOOD)
    assert run.verdict == "passed" and run.decided
    assert states(run) == ["passed"] * 4
    assert [r.entry.event_id for r in run.steps if r.entry] == ["e1", "e2", "e3", "e4"]
    assert run.findings == ()


def test_scenario_missing_steps_keep_it_in_progress() -> None:
    run = run_of(GOOD[:2])
    assert run.verdict == "in_progress" and not run.decided
    assert states(run) == ["passed", "passed", "waiting", "waiting"]
    missing = [f.message for f in run.findings if f.kind == "missing"]
    assert missing == [
        "step 3 (checkout_started): missing, no checkout_started event yet",
        "step 4 (order_completed): missing, no order_completed event yet",
    ]


def test_scenario_out_of_order_fails_naming_the_step_it_overtook() -> None:
    run = run_of([GOOD[0], GOOD[2], GOOD[1], GOOD[3]])
    assert run.verdict == "failed"
    assert [r.out_of_order for r in run.steps] == [False, False, True, False]
    assert run.steps[2].ahead_of == (2,)
    (finding,) = [f for f in run.findings if f.kind == "out_of_order"]
    assert finding.message == (
        "step 3 (checkout_started): event e2 arrived before step 2 (product_added)"
    )
    assert finding.entry is not None and finding.entry.id == 2


def test_scenario_a_later_step_before_a_waiting_one_is_out_of_order_at_once() -> None:
    run = run_of([GOOD[0], GOOD[3]])
    assert run.verdict == "failed"
    assert run.steps[3].ahead_of == (2, 3)


def test_scenario_unexpected_and_repeated_events_are_reported_not_failing() -> None:
    run = run_of([GOOD[0], ("screen_viewed", {}), GOOD[0], (None, {}), *GOOD[1:]])
    assert run.verdict == "passed"
    kinds = [(f.kind, f.entry.event_id if f.entry else None) for f in run.findings]
    assert kinds == [("unexpected", "e2"), ("repeated", "e3"), ("unexpected", "e4")]
    assert run.findings[1].message == (
        "repeated product_viewed: event e3 after step 1 (product_viewed) had its event"
    )
    assert "(no name)" in run.findings[2].message


def test_scenario_strict_fails_on_unexpected_or_repeated_events() -> None:
    strict = {**CHECKOUT, "strict": True}
    assert run_of(GOOD, strict).verdict == "passed"
    assert run_of([*GOOD, ("screen_viewed", {})], strict).verdict == "failed"
    assert run_of([*GOOD, GOOD[3]], strict).verdict == "failed"


def test_scenario_steps_of_the_same_event_take_its_events_in_turn() -> None:
    twice = {"name": "two", "steps": [{"event": "a"}, {"event": "b"}, {"event": "a"}]}
    run = run_of([("a", {}), ("b", {}), ("a", {})], twice)
    assert run.verdict == "passed"
    run = run_of([("a", {}), ("a", {}), ("b", {})], twice)
    assert run.verdict == "failed" and run.steps[2].ahead_of == (2,)


def test_scenario_schema_assertion_fails_the_step_with_the_breaking_event() -> None:
    run = run_of([*GOOD[:3], ("order_completed", {"total": 0}), ("order_completed", {"total": 5})])
    assert run.verdict == "failed"
    step = run.steps[3]
    assert step.state == "failed" and step.entry is not None and step.entry.event_id == "e4"
    assert step.failure is not None
    assert (step.failure.assertion, step.failure.kind) == (1, "schema")
    assert "/properties/total" in step.failure.message
    assert "0 is less than or equal to the minimum of 0" in step.failure.message
    # The later good event does not rescue it: it is a repeat.
    assert [f.kind for f in run.findings] == ["failed_assertion", "repeated"]


@pytest.mark.parametrize(
    ("assertion", "properties", "why"),
    [
        ({"path": "/properties/n", "equals": 3}, {"n": 3.0}, None),
        ({"path": "/properties/n", "equals": 3}, {"n": "3"}, 'it is the string "3"'),
        ({"path": "/properties/n", "equals": 1}, {"n": True}, "it is the boolean true"),
        ({"path": "/properties/n", "equals": [1, {"a": None}]}, {"n": [1, {"a": None}]}, None),
        ({"path": "/properties/n", "equals": 3}, {}, "/properties/n is missing"),
        ({"path": "/properties/n", "present": True}, {"n": None}, None),
        ({"path": "/properties/n", "present": True}, {}, "/properties/n present: it is missing"),
        ({"path": "/properties/n", "present": False}, {}, None),
        ({"path": "/properties/n", "present": False}, {"n": 1}, "absent: it is the number 1"),
        ({"path": "/properties/n/1", "equals": "b"}, {"n": ["a", "b"]}, None),
        ({"path": "/properties/n/01", "present": True}, {"n": ["a", "b"]}, "it is missing"),
        ({"path": "/properties/a~1b", "equals": 1}, {"a/b": 1}, None),
        (
            {"path": "/properties/n", "schema": {"type": "string"}},
            {"n": 1},
            'is not of type "string"',
        ),
    ],
)
def test_scenario_assertion_kinds(
    assertion: dict[str, Any], properties: dict[str, Any], why: str | None
) -> None:
    document = {"name": "one", "steps": [{"event": "x", "assertions": [assertion]}]}
    run = run_of([("x", properties)], document)
    failure = run.steps[0].failure
    if why is None:
        assert failure is None and run.verdict == "passed"
    else:
        assert failure is not None and why in failure.message, failure
        assert run.verdict == "failed"


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        ([], [("", "a scenario must be a JSON object")]),
        ({"name": "x"}, [("/steps", "steps must be a list of 1 to 100 steps")]),
        ({"name": "Bad Name", "steps": [{"event": "a"}]}, [("/name", "a name is 1 to 64")]),
        ({"name": "checkout\n", "steps": [{"event": "a"}]}, [("/name", "a name is 1 to 64")]),
        ({"name": "x", "steps": [{"event": ""}]}, [("/steps/0/event", "names its event")]),
        ({"name": "x", "steps": ["a"]}, [("/steps/0", "a step is an object")]),
        ({"name": "x", "strict": 1, "steps": [{"event": "a"}]}, [("/strict", "true or false")]),
        ({"name": "x", "extra": 1, "steps": [{"event": "a"}]}, [("/extra", "unknown key")]),
        (
            {"name": "x", "steps": [{"event": "a", "assertions": [{"path": "p", "equals": 1}]}]},
            [("/steps/0/assertions/0/path", "JSON Pointer")],
        ),
        (
            {"name": "x", "steps": [{"event": "a", "assertions": [{"path": "/p"}]}]},
            [("/steps/0/assertions/0", "(this one has 0)")],
        ),
        (
            {
                "name": "x",
                "steps": [
                    {"event": "a", "assertions": [{"path": "/p", "equals": 1, "present": True}]}
                ],
            },
            [("/steps/0/assertions/0", "(this one has 2)")],
        ),
        (
            {
                "name": "x",
                "steps": [{"event": "a", "assertions": [{"path": "/p", "present": "yes"}]}],
            },
            [("/steps/0/assertions/0/present", "true or false")],
        ),
        (
            {
                "name": "x",
                "steps": [
                    {"event": "a", "assertions": [{"path": "/p", "schema": {"type": "numbr"}}]}
                ],
            },
            [("/steps/0/assertions/0/schema/type", "")],
        ),
        (
            {
                "name": "x",
                "steps": [
                    {
                        "event": "a",
                        "assertions": [
                            {"path": "/p", "schema": {"$ref": "https://example.com/s.json"}}
                        ],
                    }
                ],
            },
            [("/steps/0/assertions/0/schema", "")],
        ),
    ],
)
def test_scenario_bad_documents_are_problems_at_their_paths(
    document: Any, problems: list[tuple[str, str]]
) -> None:
    found = check_scenario(document)
    assert [(p.path, m in p.message) for p, (_, m) in zip(found, problems, strict=True)] == [
        (path, True) for path, _ in problems
    ], found
    with pytest.raises(InvalidScenario):
        compile_scenario(document)


def test_scenario_a_schema_failure_quotes_a_long_value_shortly() -> None:
    document = {
        "name": "one",
        "steps": [
            {"event": "x", "assertions": [{"path": "/properties/n", "schema": {"type": "number"}}]}
        ],
    }
    run = run_of([("x", {"n": "y" * 5000})], document)
    failure = run.steps[0].failure
    assert failure is not None and failure.message.endswith("...")
    assert len(failure.message) < 400


def test_scenario_a_document_naming_another_scenario_is_refused() -> None:
    (problem,) = check_scenario(CHECKOUT, "payment")
    assert (problem.path, problem.message) == (
        "/name",
        "the document is named 'checkout', not 'payment'",
    )
    assert check_scenario({k: v for k, v in CHECKOUT.items() if k != "name"}, "payment") == []
