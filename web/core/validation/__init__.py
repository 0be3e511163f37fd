"""The validation engine: pure functions from (plan, event) to a verdict; no I/O, no asyncio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web.core.validation.envelope import check_envelope
from web.core.validation.verdict import Issue, Verdict

__all__ = ["Issue", "Verdict", "validate"]


def validate(event: Mapping[str, Any]) -> Verdict:
    """Judge one event. Tracking plans extend this; today it checks the envelope."""
    return Verdict(issues=tuple(check_envelope(event)))
