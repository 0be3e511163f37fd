"""The API description's hygiene paths (web/hygiene.py): the per-app switch and its types."""

from __future__ import annotations

from typing import Any

from web.hygiene import HygieneChange, HygieneSetting
from web.openapi_operations import READ, WRITE, answer, operation
from web.openapi_refs import Schema, ref_param

TAG: Schema = {
    "name": "hygiene",
    "description": "Warnings about personal data, secrets and sizes near a destination's limit.",
}
REQUESTS: tuple[Any, ...] = (HygieneChange,)
ANSWERS: tuple[Any, ...] = (HygieneSetting,)


def hygiene_paths() -> dict[str, Schema]:
    """GET and PUT /api/apps/{app_id}/hygiene: scoped as retention and alerts are."""
    return {
        "/api/apps/{app_id}/hygiene": {
            "parameters": [ref_param("AppId")],
            "get": operation(
                "get",
                "getHygiene",
                "hygiene",
                "Whether the app's events get hygiene warnings",
                scope=READ,
                answer=answer("The switch and the rules", "HygieneSetting"),
            ),
            "put": operation(
                "put",
                "saveHygiene",
                "hygiene",
                "Turn the app's hygiene checks on or off (on by default)",
                scope=WRITE,
                answer=answer("The switch saved", "HygieneSetting"),
                body="HygieneChange",
                refusals={"400": ("invalid_hygiene",)},
            ),
        },
    }
