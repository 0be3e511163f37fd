"""The sample tracking plan the tests share (an order, varied per test) and its price issue."""

from __future__ import annotations

from typing import Any


def order_completed(
    *currencies: str,
    price: dict[str, Any] | None = None,
    required: tuple[str, ...] = ("orderId", "currency"),
    **more_properties: dict[str, Any],
) -> dict[str, Any]:
    """The schema of an order: an orderId, a price (0 or more unless given) and a currency
    (USD or EUR unless named)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {
            "orderId": {"type": "string"},
            "price": price or {"type": "number", "minimum": 0},
            "currency": {"enum": list(currencies or ("USD", "EUR"))},
            **more_properties,
        },
    }


# What a plan's {"type": "number"} price rule reports for a price sent as the string "12.99".
STRING_PRICE_ISSUE: dict[str, Any] = {
    "path": "/price",
    "rule": "type",
    "message": 'price must be a number, got the string "12.99"',
    "expected": ["number"],
    "actual": "12.99",
    "severity": "error",
}
