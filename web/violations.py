"""Violations: an app's failures and warnings, each grouped by fingerprint, over a window."""

from __future__ import annotations

from datetime import UTC, datetime

from quart import Blueprint, render_template, request

from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.insights import (
    DEFAULT_WINDOW,
    NEW_WITHIN,
    VIOLATION_HORIZON,
    WINDOWS,
    fold_violations,
)
from web.core.queries.dashboard import select_violation_groups

blueprint = Blueprint("violations", __name__)

# Failed events one page view reads from the rows at either end of its window at most (the
# hours between come from the hourly counts), and fingerprints it shows at most.
SCAN_LIMIT = 100_000
GROUPS_SHOWN = 200


@blueprint.get("/apps/<app_id>/violations")
async def violations_page(app_id: str) -> str:
    key = request.args.get("window") or DEFAULT_WINDOW
    window = WINDOWS.get(key)
    if window is None:
        raise Rejected(400, "invalid_window", f"window must be one of {', '.join(WINDOWS)}")
    now = datetime.now(UTC)
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
        groups = await select_violation_groups(
            conn,
            app_id,
            horizon=now - VIOLATION_HORIZON,
            window=now - window.span,
            bucket_seconds=window.bucket_seconds,
            scan_limit=SCAN_LIMIT,
            limit=GROUPS_SHOWN,
        )
    folded = fold_violations(groups, window, now=now)
    violations = [v for v in folded if v.group.severity == "error"]
    warnings = [v for v in folded if v.group.severity == "warning"]
    return await render_template(
        "violations.html",
        app=app,
        window=window,
        windows=WINDOWS.values(),
        violations=violations,
        warnings=warnings,
        warning_total=sum(v.group.count for v in warnings),
        new_count=sum(1 for v in violations if v.is_new),
        total=sum(v.group.count for v in violations),
        new_within_minutes=int(NEW_WITHIN.total_seconds() // 60),
        horizon_days=VIOLATION_HORIZON.days,
        groups_shown=GROUPS_SHOWN,
    )
