"""Events and coverage as files: CSV (safe to open in a spreadsheet), NDJSON and Markdown.

Pure: callers stream the rows in. Event data is hostile in every format: CSV cells that a
spreadsheet would run as a formula are neutralised, Markdown cells are escaped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from web.core.insights import Coverage, CoverageRow
from web.core.queries.base import LogEntry

# Spreadsheets treat a cell starting with one of these as a formula (OWASP: CSV injection);
# tab and carriage return also start one in some of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EVENT_COLUMNS = (
    "id",
    "event_id",
    "event_name",
    "status",
    "received_at",
    "stored_at",
    "session",
    "plan_version",
    "error_count",
    "warning_count",
    "errors",
    "payload",
)


def csv_cell(value: Any) -> str:
    """A value as CSV text, with a leading ' when a spreadsheet would read it as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


def event_csv_row(entry: LogEntry) -> list[Any]:
    errors = [e for e in entry.errors if e.get("severity") != "warning"]
    warnings = [e for e in entry.errors if e.get("severity") == "warning"]
    return [
        entry.id,
        entry.event_id,
        entry.event_name,
        entry.status,
        entry.received_at,
        entry.created_at,
        entry.session,
        entry.plan_version,
        len(errors),
        len(warnings),
        " | ".join(f"{e.get('path') or '/'}: {e.get('message')}" for e in entry.errors),
        orjson.dumps(entry.payload).decode(),
    ]


def event_ndjson(entry: LogEntry) -> bytes:
    record = {
        "id": entry.id,
        "event_id": entry.event_id,
        "event_name": entry.event_name,
        "status": entry.status,
        "received_at": entry.received_at.isoformat(),
        "stored_at": entry.created_at.isoformat(),
        "session": entry.session,
        "plan_version": entry.plan_version,
        "errors": entry.errors,
        "payload": entry.payload,
    }
    return orjson.dumps(record) + b"\n"


def events_csv(entries: Iterable[LogEntry]) -> bytes:
    """Rows of EVENT_COLUMNS (the header is the caller's), as one piece of the file."""
    return csv_lines(event_csv_row(entry) for entry in entries).encode()


def events_ndjson(entries: Iterable[LogEntry]) -> bytes:
    return b"".join(event_ndjson(entry) for entry in entries)


# ---- coverage sign-off ----------------------------------------------------------------------

COVERAGE_COLUMNS = (
    "event_name",
    "planned",
    "state",
    "events",
    "invalid",
    "first_seen",
    "last_seen",
)
SCENARIO_RUN_COLUMNS = ("scenario", "verdict", "steps_passed", "steps", "summary")
# Inline specials; cells never start a line, so list and heading markers need no escape,
# and brackets escaped make a link impossible.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#!|~])")


def md_text(value: Any) -> str:
    """Text that Markdown shows as written: specials escaped, HTML made inert, one line."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class ScenarioRunLine:
    """A scenario run of the session, as the coverage sign-off lists it."""

    name: str
    verdict: str  # passed, failed or in_progress
    passed_steps: int
    steps: int
    summary: str

    @property
    def verdict_label(self) -> str:
        return {"passed": "PASSED", "failed": "FAILED"}.get(self.verdict, "IN PROGRESS")


def coverage_csv_rows(report: Coverage, runs: Sequence[ScenarioRunLine] = ()) -> list[list[Any]]:
    """The coverage table; a session's scenario runs follow as a second table after a blank row."""
    rows: list[list[Any]] = [list(COVERAGE_COLUMNS)]
    for row in [*report.planned, *report.unplanned]:
        rows.append(
            [
                row.event_name,
                "no" if row.state == "unplanned" else "yes",
                row.state_label,
                row.total,
                row.invalid,
                row.first_seen,
                row.last_seen,
            ]
        )
    if runs:
        rows += [[], list(SCENARIO_RUN_COLUMNS)]
        rows += [[r.name, r.verdict, r.passed_steps, r.steps, r.summary] for r in runs]
    return rows


def coverage_markdown(
    report: Coverage,
    *,
    app_name: str,
    app_id: str,
    scope: str,
    plan_version: int | None,
    generated_at: datetime,
    view_url: str,
    runs: Sequence[ScenarioRunLine] = (),
) -> str:
    """The QA sign-off: scope, verdict, each planned event's state, the unplanned ones, and
    a session's scenario runs."""
    plan = f"version {plan_version}" if plan_version else "none"
    percent = f"{report.percent:.0f} %" if report.percent is not None else "n/a"
    verdict = "READY TO SIGN OFF" if report.signed_off else "NOT READY"
    lines = [
        f"# Tracking coverage: {md_text(app_name)} ({md_text(app_id)})",
        "",
        f"- Scope: {md_text(scope)}",
        f"- Tracking plan: {plan}",
        f"- Generated: {generated_at.strftime('%Y-%m-%d %H:%M:%S')} UTC",
        f"- Planned events seen: {report.seen} of {len(report.planned)} ({percent})",
        f"- Missing: {report.missing}; seen with invalid events: {report.failing};"
        f" unplanned: {len(report.unplanned)}; events without a name: {report.unnamed}",
        f"- Verdict: **{verdict}**",
        f"- Live view: <{view_url}>",
        "",
        "## Planned events",
        "",
    ]
    lines += _md_table(report.planned) if report.planned else ["No events in the plan."]
    lines += ["", "## Unplanned events", ""]
    lines += _md_table(report.unplanned) if report.unplanned else ["None."]
    if runs:
        lines += ["", "## Scenario runs", "", "| Scenario | Verdict | Steps passed | Report |"]
        lines.append("|---|---|---:|---|")
        lines += [
            f"| {md_text(r.name)} | {r.verdict_label} | {r.passed_steps} of {r.steps} |"
            f" {md_text(r.summary)} |"
            for r in runs
        ]
    lines += ["", "---", "", "Signed off by: ____________________  Date: ____________", ""]
    return "\n".join(lines)


def _md_table(rows: Sequence[CoverageRow]) -> list[str]:
    lines = ["| Event | State | Events | Invalid | Last seen (UTC) |", "|---|---|---:|---:|---|"]
    for row in rows:
        last = row.last_seen.strftime("%Y-%m-%d %H:%M:%S") if row.last_seen else "-"
        mark = {"seen": "OK", "failing": "FAIL", "missing": "MISSING", "unplanned": "EXTRA"}
        lines.append(
            f"| {md_text(row.event_name)} | {mark[row.state]}: {row.state_label} |"
            f" {row.total} | {row.invalid} | {last} |"
        )
    return lines
