"""A scenario run's report in words, as JSON and as Markdown (pure: the run is handed in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from web.core.exports import md_text
from web.core.scenarios import Finding, FindingKind, Run, StepResult

EXTRA_KINDS: tuple[FindingKind, ...] = ("out_of_order", "repeated", "unexpected")
VERDICT_WORDS = {"passed": "PASSED", "failed": "FAILED", "in_progress": "IN PROGRESS"}
STATE_WORDS = {"passed": "passed", "failed": "FAILED", "waiting": "waiting"}
FINDING_ORDER = ("failed_assertion", "out_of_order", "missing", "repeated", "unexpected")
FINDING_TITLES = {
    "failed_assertion": "Failed assertions",
    "out_of_order": "Out of order",
    "missing": "Missing",
    "repeated": "Repeated",
    "unexpected": "Unexpected",
}


def event_path(app_id: str, entry_id: int) -> str:
    """The event detail page of a stored event (web/detail.py)."""
    return f"/apps/{app_id}/events/{entry_id}"


def summary_line(run: Run) -> str:
    """One sentence: the scenario, the session, the verdict and how far it got."""
    steps = len(run.scenario.steps)
    extra = f"; only the first {run.events_judged} events were read" if run.truncated else ""
    return (
        f"Scenario {run.scenario.name} in session {run.session}:"
        f" {VERDICT_WORDS[run.verdict]} ({run.passed_steps} of {steps} steps passed,"
        f" {run.events_judged} events){extra}"
    )


def ordered_findings(run: Run) -> list[Finding]:
    return sorted(run.findings, key=lambda finding: FINDING_ORDER.index(finding.kind))


def run_text(run: Run) -> str:
    """The report's words: the summary line, then each finding on a line of its own."""
    lines = [summary_line(run)]
    lines += [f"- {finding.message}" for finding in ordered_findings(run)]
    return "\n".join(lines)


def run_json(run: Run, *, app_id: str, revision: int, generated_at: datetime) -> dict[str, Any]:
    """The run as the API answers it (web/openapi_scenarios.py RunReport)."""
    counts = {"steps": len(run.steps), **dict.fromkeys(("passed", "failed", "waiting"), 0)}
    for result in run.steps:
        counts[result.state] += 1
    for kind in EXTRA_KINDS:
        counts[kind] = run.count(kind)
    return {
        "app_id": app_id,
        "scenario": run.scenario.name,
        "revision": revision,
        "session": run.session,
        "verdict": run.verdict,
        "decided": run.decided,
        "summary": summary_line(run),
        "text": run_text(run),
        "counts": counts,
        "steps": [_step_json(result, app_id) for result in run.steps],
        "findings": [_finding_json(finding, app_id) for finding in ordered_findings(run)],
        "events_judged": run.events_judged,
        "truncated": run.truncated,
        "generated_at": generated_at.isoformat(),
    }


def _step_json(result: StepResult, app_id: str) -> dict[str, Any]:
    entry, failure = result.entry, result.failure
    return {
        "number": result.step.number,
        "event": result.step.event,
        "state": result.state,
        "out_of_order": result.out_of_order,
        "ahead_of": list(result.ahead_of),
        "event_id": entry.event_id if entry else None,
        "event_url": event_path(app_id, entry.id) if entry else None,
        "failure": (
            {
                "assertion": failure.assertion,
                "path": failure.path,
                "kind": failure.kind,
                "message": failure.message,
            }
            if failure
            else None
        ),
    }


def _finding_json(finding: Finding, app_id: str) -> dict[str, Any]:
    entry = finding.entry
    return {
        "kind": finding.kind,
        "message": finding.message,
        "step": finding.step,
        "event_id": entry.event_id if entry else None,
        "event_url": event_path(app_id, entry.id) if entry else None,
    }


def run_markdown(
    run: Run, *, app_id: str, revision: int, generated_at: datetime, base_url: str
) -> str:
    """The run report as Markdown: summary, each step's state, the findings with links."""
    lines = [
        f"# Scenario run: {md_text(run.scenario.name)} in session {md_text(run.session)}",
        "",
        f"- App: {md_text(app_id)}",
        f"- Scenario revision: {revision}",
        f"- Generated: {generated_at.strftime('%Y-%m-%d %H:%M:%S')} UTC",
        f"- Verdict: **{VERDICT_WORDS[run.verdict]}**",
        f"- {md_text(summary_line(run))}",
        "",
        "## Steps",
        "",
        "| # | Event | State | Event id | Why |",
        "|---:|---|---|---|---|",
    ]
    for result in run.steps:
        entry = result.entry
        state = STATE_WORDS[result.state] + (" (out of order)" if result.out_of_order else "")
        link = (
            f"[{md_text(entry.event_id)}](<{base_url}{event_path(app_id, entry.id)}>)"
            if entry
            else "-"
        )
        why = md_text(result.failure.message) if result.failure else ""
        lines.append(
            f"| {result.step.number} | {md_text(result.step.event)} | {state} | {link} | {why} |"
        )
    for kind in FINDING_ORDER:
        found = [finding for finding in run.findings if finding.kind == kind]
        if found:
            lines += ["", f"## {FINDING_TITLES[kind]}", ""]
            lines += [f"- {md_text(finding.message)}" for finding in found]
    lines.append("")
    return "\n".join(lines)
