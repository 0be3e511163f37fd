"""Tracking plans as stored things: save a version, compare two, re-judge stored events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from web.core.apps import unknown_app
from web.core.errors import Rejected
from web.core.queries.apps import lock_app
from web.core.queries.base import Connection, LogEntry, PlanVersion
from web.core.queries.events import notify
from web.core.queries.plans import insert_plan_version
from web.core.validation import Verdict
from web.core.validation.envelope import is_rfc3339, json_type
from web.core.validation.plan import CompiledPlan, PlanProblem, check_plan, compile_plan
from web.core.validation.verdict import Issue

# Postgres NOTIFY channel that tells every web process an app's plan changed (payload: app id).
PLANS_CHANNEL = "lvd_plans"
# Stored events one re-validation reads at most, newest first.
REVALIDATE_LIMIT = 10_000
EXAMPLES_PER_OUTCOME = 20
# Example events kept for each (outcome, event name, rule) of a report's breakdown.
EXAMPLES_PER_RULE = 3


async def save_plan(conn: Connection, app_id: str, document: Any) -> PlanVersion:
    """Check and store a new plan version, and announce it, in one transaction.

    The caller owns no transaction here: this function opens one, so the version number,
    the app's current version and the notification commit together or not at all.
    """
    refuse_problems(document)
    async with conn.transaction():
        if await lock_app(conn, app_id) is None:
            raise unknown_app(app_id)
        saved = await insert_plan_version(conn, app_id, document)
        await notify(conn, PLANS_CHANNEL, app_id)
    return saved


def refuse_problems(document: Any) -> None:
    """Rejected (400 invalid_plan, the problems in its details) unless the plan checks."""
    reject_problems("invalid_plan", "plan", check_plan(document))


def reject_problems(code: str, what: str, problems: list[PlanProblem]) -> None:
    """Rejected (400 `code`, every problem located in its details) when a document has any:
    a plan's, a scenario's."""
    if problems:
        raise Rejected(
            400,
            code,
            f"the {what} has {len(problems)} problem(s); the first: "
            f"{problems[0].path or '/'}: {problems[0].message}",
            {"problems": [problem.as_dict() for problem in problems]},
        )


# ---- diff ----------------------------------------------------------------------------------

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    change: ChangeKind
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "change": self.change, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class PlanDiff:
    events_added: list[str]
    events_removed: list[str]
    events_changed: dict[str, list[Change]]
    settings_changed: list[Change]

    @property
    def is_empty(self) -> bool:
        return not (
            self.events_added or self.events_removed or self.events_changed or self.settings_changed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_added": self.events_added,
            "events_removed": self.events_removed,
            "events_changed": {
                name: [c.as_dict() for c in changes]
                for name, changes in self.events_changed.items()
            },
            "settings_changed": [c.as_dict() for c in self.settings_changed],
        }


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> PlanDiff:
    old_events: dict[str, Any] = old.get("events") or {}
    new_events: dict[str, Any] = new.get("events") or {}
    changed = {
        name: changes
        for name in sorted(old_events.keys() & new_events.keys())
        if (changes := diff_values(old_events[name], new_events[name], ""))
    }
    settings: list[Change] = []
    for key in sorted((old.keys() | new.keys()) - {"events"}):
        settings += diff_values(old.get(key), new.get(key), f"/{key}")
    return PlanDiff(
        events_added=sorted(new_events.keys() - old_events.keys()),
        events_removed=sorted(old_events.keys() - new_events.keys()),
        events_changed=changed,
        settings_changed=settings,
    )


def diff_values(old: Any, new: Any, path: str) -> list[Change]:
    """Structural differences between two JSON values, as JSON Pointer changes."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}/{_escape(key)}"
            if key not in old:
                changes.append(Change(child, "added", new=new[key]))
            elif key not in new:
                changes.append(Change(child, "removed", old=old[key]))
            else:
                changes += diff_values(old[key], new[key], child)
        return changes
    if old is None:
        return [Change(path, "added", new=new)]
    if new is None:
        return [Change(path, "removed", old=old)]
    return [Change(path, "changed", old=old, new=new)]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


# ---- draft from traffic ---------------------------------------------------------------------

# The keys that name and identify an event: not properties a plan describes.
ENVELOPE_KEYS = frozenset({"eventName", "event", "event_name", "event_id", "messageId", "uuid"})


def draft_plan(payloads_by_event: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A plan proposed from events seen: per event, the types seen and the always-present keys."""
    events = {}
    for name in sorted(payloads_by_event):
        samples = [
            {k: v for k, v in payload.items() if k not in ENVELOPE_KEYS}
            for payload in payloads_by_event[name]
        ]
        events[name] = _object_schema(samples)
    return {"events": events, "allow_unplanned": False}


def _object_schema(samples: list[dict[str, Any]]) -> dict[str, Any]:
    present = Counter(key for sample in samples for key in sample)
    properties = {
        key: _value_schema([sample[key] for sample in samples if key in sample])
        for key in sorted(present)
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = sorted(key for key, count in present.items() if count == len(samples))
    if required:
        schema["required"] = required
    return schema


def _value_schema(values: list[Any]) -> dict[str, Any]:
    types = sorted({json_type(value) for value in values})
    if "integer" in types and "number" in types:
        types.remove("integer")
    schema: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if types == ["object"]:
        return _object_schema(values)
    if types == ["array"]:
        items = [item for value in values for item in value]
        if items:
            schema["items"] = _value_schema(items)
    elif types == ["string"] and all(is_rfc3339(value) for value in values):
        schema["format"] = "date-time"
    return schema


# ---- re-validation --------------------------------------------------------------------------

Outcome = Literal["fixed", "newly_failing", "still_invalid", "still_valid"]


@dataclass(frozen=True, slots=True)
class Rejudged:
    id: int
    event_id: str
    event_name: str | None
    was: str
    now: str
    first_problem: Issue | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_name": self.event_name,
            "was": self.was,
            "now": self.now,
            "first_problem": self.first_problem.as_dict() if self.first_problem else None,
        }


@dataclass(frozen=True, slots=True)
class RuleChange:
    """How many events of one name changed outcome through one rule, with a few of them."""

    outcome: Outcome
    event_name: str | None
    rule: str
    count: int
    examples: tuple[Rejudged, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "event_name": self.event_name,
            "rule": self.rule,
            "count": self.count,
            "examples": [example.as_dict() for example in self.examples],
        }


RuleKey = tuple[Outcome, str | None, str]


@dataclass
class RevalidationReport:
    version: int
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Rejudged]] = field(default_factory=dict)
    rule_counts: Counter[RuleKey] = field(default_factory=Counter)
    rule_examples: dict[RuleKey, list[Rejudged]] = field(default_factory=dict)

    def add(self, entry: LogEntry, verdict: Verdict) -> None:
        outcome = _outcome(entry.status, verdict.status)
        self.counts[outcome] += 1
        errors = [issue for issue in verdict.issues if issue.severity == "error"]
        judged = Rejudged(
            entry.id,
            entry.event_id,
            entry.event_name,
            entry.status,
            verdict.status,
            errors[0] if errors else None,
        )
        shown = self.examples.setdefault(outcome, [])
        if len(shown) < EXAMPLES_PER_OUTCOME:
            shown.append(judged)
        if outcome == "newly_failing":
            rules = [issue.rule for issue in errors]
        elif outcome == "fixed":
            rules = [str(e.get("rule")) for e in entry.errors if e.get("severity") != "warning"]
        else:
            return
        for rule in dict.fromkeys(rules or ["(none)"]):
            key: RuleKey = (outcome, entry.event_name, rule)
            self.rule_counts[key] += 1
            kept = self.rule_examples.setdefault(key, [])
            if len(kept) < EXAMPLES_PER_RULE:
                kept.append(judged)

    def changes(self) -> list[RuleChange]:
        """Newly failing and fixed events by event name and rule, the most first (an event
        that breaks two rules counts under each)."""
        return [
            RuleChange(*key, count, tuple(self.rule_examples[key]))
            for key, count in sorted(
                self.rule_counts.items(), key=lambda item: (-item[1], str(item[0]))
            )
        ]

    def as_dict(self) -> dict[str, Any]:
        outcomes: tuple[Outcome, ...] = ("fixed", "newly_failing", "still_invalid", "still_valid")
        return {
            "version": self.version,
            "judged": sum(self.counts.values()),
            "counts": {outcome: self.counts.get(outcome, 0) for outcome in outcomes},
            "examples": {
                outcome: [r.as_dict() for r in self.examples.get(outcome, [])]
                for outcome in outcomes
            },
        }


def _outcome(was: str, now: str) -> Outcome:
    if was == now:
        return "still_valid" if now == "valid" else "still_invalid"
    return "fixed" if now == "valid" else "newly_failing"


def revalidate(plan: CompiledPlan, entries: list[LogEntry]) -> RevalidationReport:
    """Judge stored events against a plan version and say what changed; stores nothing."""
    report = RevalidationReport(plan.version)
    for entry in entries:
        report.add(entry, plan.judge(entry.payload))
    return report


def compile_version(saved: PlanVersion) -> CompiledPlan:
    return compile_plan(saved.document, saved.version)
