"""Parity across platforms as files: the Markdown report, the CSV rows and the JSON answer.

Pure, like web/core/exports.py, whose escaping it uses: event names, property keys and
session ids are hostile text in every format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from web.core.exports import md_text
from web.core.parity import EventCell, EventRow, Parity, PropertyCell, PropertyRow

PARITY_COLUMNS = (
    "event_name",
    "property",
    "session",
    "events",
    "invalid",
    "present",
    "types",
    "difference",
)


def _cell_text(cell: EventCell) -> str:
    if not cell.sent:
        return "MISSING"
    return f"{cell.total} ({cell.invalid} invalid)" if cell.invalid else str(cell.total)


def _types_text(cell: PropertyCell | None) -> str:
    if cell is None:
        return "-"
    if not cell.types:
        return f"MISSING (0 of {cell.events_read})"
    return ", ".join(f"{kind} x{count}" for kind, count in cell.types.items())


def parity_csv_rows(parity: Parity) -> list[list[Any]]:
    """One row per event and session, then one per property and session that sent it."""
    rows: list[list[Any]] = [list(PARITY_COLUMNS)]
    for row in parity.events:
        for cell in row.cells:
            missing = "" if cell.sent else "event missing"
            row_cells = [row.event_name, "", cell.session, cell.total, cell.invalid]
            rows.append([*row_cells, "", "", missing])
        for prop in row.properties:
            for pcell in prop.cells:
                rows.append(
                    [
                        row.event_name,
                        prop.path,
                        pcell.session,
                        pcell.events_read,
                        "",
                        pcell.present,
                        "|".join(pcell.types),
                        "" if prop.state == "same" else prop.state_label,
                    ]
                )
    return rows


def parity_markdown(
    parity: Parity,
    *,
    app_name: str,
    app_id: str,
    generated_at: datetime,
    view_url: str,
    events_read: int,
) -> str:
    """The report: the summary, every event per session, then each property difference."""
    sessions = ", ".join(md_text(session) for session in parity.sessions)
    verdict = "IN PARITY" if parity.in_parity else "DIFFERENCES FOUND"
    invalid = "; ".join(f"{md_text(s)}: {n}" for s, n in parity.invalid.items())
    lines = [
        f"# Platform parity: {md_text(app_name)} ({md_text(app_id)})",
        "",
        f"- Sessions: {sessions}",
        f"- Generated: {generated_at.strftime('%Y-%m-%d %H:%M:%S')} UTC",
        f"- Events sent by only some sessions: {len(parity.only_in_some)}",
        f"- Properties differing: {len(parity.differing_properties)}",
        f"- Invalid events: {invalid}",
        f"- Verdict: **{verdict}**",
        f"- Live view: <{view_url}>",
    ]
    if parity.capped:
        capped = ", ".join(md_text(s) for s in parity.capped)
        lines.append(
            f"- Properties of {capped} are from the newest {events_read} events of each"
            " (counts are of every event)"
        )
    lines += ["", "## Events", ""]
    lines += _events_table(parity) if parity.events else ["No named events in these sessions."]
    lines += ["", "## Property differences", ""]
    differing = parity.differing_properties
    lines += _differences_table(parity, differing) if differing else ["None."]
    lines.append("")
    return "\n".join(lines)


def _header(first: list[str], sessions: tuple[str, ...]) -> list[str]:
    names = [md_text(session) for session in sessions]
    return [
        "| " + " | ".join([*first, *names]) + " |",
        "|" + "---|" * len(first) + "---|" * len(sessions),
    ]


def _events_table(parity: Parity) -> list[str]:
    lines = _header(["Event", "Difference"], parity.sessions)
    for row in parity.events:
        missing = ", ".join(md_text(s) for s in row.missing_in)
        difference = f"missing in {missing}" if missing else "-"
        cells = " | ".join(_cell_text(cell) for cell in row.cells)
        lines.append(f"| {md_text(row.event_name)} | {difference} | {cells} |")
    return lines


def _differences_table(parity: Parity, differing: list[tuple[EventRow, PropertyRow]]) -> list[str]:
    lines = _header(["Event", "Property", "Difference"], parity.sessions)
    for row, prop in differing:
        by_session = {cell.session: cell for cell in prop.cells}
        cells = " | ".join(
            _types_text(by_session.get(session)) if cell.sent else "event not sent"
            for session, cell in zip(parity.sessions, row.cells, strict=True)
        )
        lines.append(
            f"| {md_text(row.event_name)} | {md_text(prop.path)} | {prop.state_label} | {cells} |"
        )
    return lines


def parity_json(parity: Parity, *, app_id: str, generated_at: datetime, events_read: int) -> Any:
    """The API's answer (web/openapi_parity.py ParityReport describes it)."""
    return {
        "app_id": app_id,
        "generated_at": generated_at.isoformat(),
        "sessions": [
            {
                "session": session,
                "invalid": parity.invalid[session],
                "unnamed": parity.unnamed.get(session, 0),
                "capped": session in parity.capped,
            }
            for session in parity.sessions
        ],
        "events_read_per_session": events_read,
        "in_parity": parity.in_parity,
        "only_in_some": [row.event_name for row in parity.only_in_some],
        "properties_differing": len(parity.differing_properties),
        "events": [_event_json(row) for row in parity.events],
    }


def _event_json(row: EventRow) -> dict[str, Any]:
    return {
        "event_name": row.event_name,
        "missing_in": row.missing_in,
        "sessions": [
            {"session": cell.session, "events": cell.total, "invalid": cell.invalid}
            for cell in row.cells
        ],
        "properties": [
            {
                "path": prop.path,
                "state": prop.state,
                "sessions": [
                    {
                        "session": cell.session,
                        "types": cell.types,
                        "present": cell.present,
                        "events_read": cell.events_read,
                    }
                    for cell in prop.cells
                ],
            }
            for prop in row.properties
        ],
    }
