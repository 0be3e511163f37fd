"""What the dashboard derives from stored events: tiles, violation groups, coverage, chart shapes.

Pure: the callers read the database (web.core.queries) and hand the rows in; nothing here
does I/O. Charts are geometry for server-rendered SVG (no inline style: classes only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from web.core.queries.dashboard import MinuteCount, NameActivity, NameCount, ViolationGroup

# ---- charts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Outline:
    """Rectangles of one class as one SVG path's `d`."""

    css: str
    d: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG drawing of rectangles in a width x height viewBox."""

    width: int
    height: int
    label: str
    rects: tuple[Rect, ...] = ()

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"

    @property
    def outlines(self) -> tuple[Outline, ...]:
        """The rectangles without a title, one SVG path per class: a page of a hundred
        sparklines draws a hundred paths, not thousands of rects to escape and lay out."""
        drawn: dict[str, list[str]] = {}
        for rect in self.rects:
            if not rect.title:
                drawn.setdefault(rect.css, []).append(
                    f"M{rect.x:g} {rect.y:g}h{rect.width:g}v{rect.height:g}h{-rect.width:g}z"
                )
        return tuple(Outline(css, "".join(moves)) for css, moves in drawn.items())

    @property
    def titled(self) -> tuple[Rect, ...]:
        """The rectangles with a title (a tooltip), each drawn on its own."""
        return tuple(rect for rect in self.rects if rect.title)


def column_chart(
    layers: Sequence[Sequence[float]],
    classes: Sequence[str],
    *,
    width: int,
    height: int,
    label: str,
    titles: Sequence[str] = (),
    top: float | None = None,
    gap: float = 1.0,
) -> Chart:
    """Stacked columns: layers[k][i] is layer k of column i, drawn bottom-up in layer order.

    Scaled so the tallest column, or `top` when given, reaches the top edge.
    """
    columns = max((len(layer) for layer in layers), default=0)
    if columns == 0:
        return Chart(width, height, label)
    # Column by column, each layer's value (0 where a layer is shorter).
    padded = [list(layer) + [0] * (columns - len(layer)) for layer in layers]
    stacks = list(zip(*padded, strict=True))
    peak = top or max(sum(stack) for stack in stacks) or 1
    slot = width / columns
    bar = _r(max(slot - gap, 0.5))
    rects = []
    for i, stack in enumerate(stacks):
        bottom = float(height)
        x = _r(i * slot)
        title = titles[i] if i < len(titles) else ""
        for value, css in zip(stack, classes, strict=True):
            if value <= 0:
                continue
            # At least a pixel, so one event among thousands still shows.
            size = max(min(value / peak, 1.0) * (height - 1), 1.0)
            bottom -= size
            rects.append(Rect(x, _r(bottom), bar, _r(size), css, title))
    return Chart(width, height, label, rects=tuple(rects))


def meter(value: int, maximum: int, *, width: int, height: int, label: str, css: str) -> Chart:
    """One horizontal bar: value as a share of maximum."""
    share = value / maximum if maximum > 0 else 0.0
    rect = Rect(0.0, 0.0, _r(max(share * width, 1.0 if value else 0.0)), float(height), css)
    return Chart(width, height, label, rects=(Rect(0, 0, width, height, "meter-track"), rect))


def _r(number: float) -> float:
    return round(number, 2)


# ---- tiles ----------------------------------------------------------------------------------

TILE_MINUTES = 60
SHARE_BUCKET_MINUTES = 5
TOP_FAILING = 5


@dataclass(frozen=True, slots=True)
class TopFailing:
    event_name: str | None
    count: int
    bar: Chart


@dataclass(frozen=True)
class Tiles:
    since: datetime
    last_minute: int
    peak_per_minute: int
    total: int
    invalid: int
    per_minute: Chart
    share_chart: Chart
    top_failing: list[TopFailing]

    @property
    def share_invalid(self) -> float | None:
        return self.invalid / self.total if self.total else None


def build_tiles(
    minutes: Sequence[MinuteCount], top: Sequence[NameCount], *, since: datetime
) -> Tiles:
    """The three tiles over TILE_MINUTES from `since`; minutes counted from `since`."""
    totals, invalid = _minute_columns(minutes, since)
    return Tiles(
        since=since,
        last_minute=totals[-1],
        peak_per_minute=max(totals),
        total=sum(totals),
        invalid=sum(invalid),
        per_minute=_per_minute_chart(totals, invalid, since),
        share_chart=_share_chart(totals, invalid, since),
        top_failing=_top_failing(top),
    )


def _minute_columns(minutes: Sequence[MinuteCount], since: datetime) -> tuple[list[int], list[int]]:
    """Events and invalid events in each of the TILE_MINUTES minutes from `since`."""
    totals = [0] * TILE_MINUTES
    invalid = [0] * TILE_MINUTES
    for minute in minutes:
        index = int((minute.start - since) / timedelta(minutes=1))
        index = min(max(index, 0), TILE_MINUTES - 1)
        totals[index] += minute.total
        invalid[index] += minute.invalid
    return totals, invalid


def _per_minute_chart(totals: list[int], invalid: list[int], since: datetime) -> Chart:
    """The first tile: events per minute, valid under invalid."""
    valid = [t - i for t, i in zip(totals, invalid, strict=True)]
    titles = [
        f"{(since + timedelta(minutes=i)).strftime('%H:%M')} UTC: {totals[i]} events,"
        f" {invalid[i]} invalid"
        for i in range(TILE_MINUTES)
    ]
    return column_chart(
        [valid, invalid],
        ["bar-valid", "bar-invalid"],
        width=240,
        height=48,
        label=f"Events per minute over the last {TILE_MINUTES} minutes; peak {max(totals)}",
        titles=titles,
    )


def _share_chart(totals: list[int], invalid: list[int], since: datetime) -> Chart:
    """The second tile: the share of invalid events per SHARE_BUCKET_MINUTES."""
    shares: list[float] = []
    titles = []
    for start in range(0, TILE_MINUTES, SHARE_BUCKET_MINUTES):
        bucket_total = sum(totals[start : start + SHARE_BUCKET_MINUTES])
        bucket_invalid = sum(invalid[start : start + SHARE_BUCKET_MINUTES])
        shares.append(bucket_invalid / bucket_total if bucket_total else 0.0)
        titles.append(
            f"from {(since + timedelta(minutes=start)).strftime('%H:%M')} UTC:"
            f" {bucket_invalid} of {bucket_total} invalid"
        )
    return column_chart(
        [shares],
        ["bar-invalid"],
        width=240,
        height=48,
        label=f"Share of invalid events per {SHARE_BUCKET_MINUTES} minutes, 0 to 100 %",
        titles=titles,
        top=1.0,
        gap=3.0,
    )


def _top_failing(top: Sequence[NameCount]) -> list[TopFailing]:
    """The third tile: the events failing most, each with a bar against the first."""
    most = max((item.count for item in top), default=0)
    return [
        TopFailing(
            item.event_name,
            item.count,
            meter(
                item.count,
                most,
                width=100,
                height=8,
                label=f"{item.count} invalid",
                css="bar-invalid",
            ),
        )
        for item in top
    ]


# ---- violations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    label: str
    span: timedelta
    buckets: int

    @property
    def bucket_seconds(self) -> float:
        return self.span.total_seconds() / self.buckets


WINDOWS = {
    "1h": Window("1h", "last hour", timedelta(hours=1), 12),
    "24h": Window("24h", "last 24 hours", timedelta(hours=24), 24),
    "7d": Window("7d", "last 7 days", timedelta(days=7), 28),
}
DEFAULT_WINDOW = "24h"
# How far back "first seen" looks, whatever the window: a fingerprint is new when it was
# first seen within NEW_WITHIN and not at all in the rest of this horizon.
VIOLATION_HORIZON = timedelta(days=7)
NEW_WITHIN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Violation:
    group: ViolationGroup
    counts: tuple[int, ...]
    sparkline: Chart
    is_new: bool


def fold_violations(
    groups: Sequence[ViolationGroup], window: Window, *, now: datetime
) -> list[Violation]:
    """Each group with its per-bucket counts drawn as a sparkline, and whether it is new."""
    folded = []
    for group in groups:
        counts = [0] * window.buckets
        for bucket, count in group.buckets.items():
            index = min(max(int(bucket), 0), window.buckets - 1)
            counts[index] += int(count)
        chart = column_chart(
            [counts],
            ["bar-invalid"],
            width=120,
            height=24,
            label=f"{group.count} failures over the {window.label}, peak {max(counts)} per"
            f" {_duration(window.bucket_seconds)}",
        )
        folded.append(Violation(group, tuple(counts), chart, group.first_seen >= now - NEW_WITHIN))
    return folded


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        hours = seconds / 3600
        return "hour" if hours == 1 else f"{hours:g} hours"
    minutes = seconds / 60
    return "minute" if minutes == 1 else f"{minutes:g} minutes"


# ---- coverage -------------------------------------------------------------------------------

CoverageState = Literal["seen", "failing", "missing", "unplanned"]
STATE_LABELS: dict[str, str] = {
    "seen": "seen, all valid",
    "failing": "seen, some invalid",
    "missing": "missing",
    "unplanned": "not in the plan",
}


@dataclass(frozen=True, slots=True)
class CoverageRow:
    event_name: str
    state: CoverageState
    total: int = 0
    invalid: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(frozen=True)
class Coverage:
    planned: list[CoverageRow] = field(default_factory=list)  # in the plan's order
    unplanned: list[CoverageRow] = field(default_factory=list)
    unnamed: int = 0  # events without a name

    @property
    def seen(self) -> int:
        return sum(1 for row in self.planned if row.state != "missing")

    @property
    def missing(self) -> int:
        return sum(1 for row in self.planned if row.state == "missing")

    @property
    def failing(self) -> int:
        return sum(1 for row in self.planned if row.state == "failing")

    @property
    def percent(self) -> float | None:
        return 100.0 * self.seen / len(self.planned) if self.planned else None

    @property
    def signed_off(self) -> bool:
        """Every planned event seen and none of them ever invalid, nothing unplanned."""
        return bool(self.planned) and self.missing == self.failing == len(self.unplanned) == 0


def build_coverage(planned: Sequence[str], activity: Sequence[NameActivity]) -> Coverage:
    seen = {item.event_name: item for item in activity if item.event_name is not None}
    rows = []
    for name in planned:
        item = seen.get(name)
        if item is None:
            rows.append(CoverageRow(name, "missing"))
        else:
            state: CoverageState = "failing" if item.invalid else "seen"
            rows.append(_row(item, name, state))
    planned_set = set(planned)
    unplanned = [
        _row(item, name, "unplanned")
        for name, item in sorted(seen.items())
        if name not in planned_set
    ]
    unnamed = sum(item.total for item in activity if item.event_name is None)
    return Coverage(rows, unplanned, unnamed)


def _row(item: NameActivity, name: str, state: CoverageState) -> CoverageRow:
    return CoverageRow(name, state, item.total, item.invalid, item.first_seen, item.last_seen)
