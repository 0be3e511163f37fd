"""The validation engine: pure functions from (plan, event) to a verdict; no I/O, no asyncio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web.core.validation.envelope import check_envelope
from web.core.validation.plan import CompiledPlan
from web.core.validation.verdict import Issue, Verdict

__all__ = ["CompiledPlan", "Issue", "Verdict", "validate"]


def validate(event: Mapping[str, Any], plan: CompiledPlan | None = None) -> Verdict:
    """Judge one event: against its app's plan, or by the envelope rules when it has none."""
    if plan is None:
        return Verdict(issues=tuple(check_envelope(event)))
    return plan.judge(event)
