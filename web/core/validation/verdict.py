"""The verdict: what validation says about one event, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
Status = Literal["valid", "invalid"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about an event, located by a JSON Pointer into it."""

    path: str
    rule: str
    message: str
    expected: Any = None
    actual: Any = None
    severity: Severity = "error"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
            "severity": self.severity,
        }


@dataclass(slots=True)  # not frozen: built per event (see web.core.queue.contract.QueuedEvent)
class Verdict:
    issues: tuple[Issue, ...] = ()
    plan_version: int | None = None

    @property
    def status(self) -> Status:
        # Warnings inform; only errors make an event invalid.
        if not self.issues:  # most events: no generator to build
            return "valid"
        return "invalid" if any(i.severity == "error" for i in self.issues) else "valid"

    def issues_as_dicts(self) -> list[dict[str, Any]]:
        if not self.issues:
            return []
        return [issue.as_dict() for issue in self.issues]
