"""Validation micro-benchmark: judging a typical event against a compiled plan, per event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from lvd.loadtest import percentile
from web.core.validation.hygiene import add_hygiene
from web.core.validation.plan import compile_plan

PLAN: dict[str, Any] = {
    "$defs": {
        "product": {
            "type": "object",
            "required": ["sku", "price", "quantity"],
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                "price": {"type": "number", "minimum": 0},
                "quantity": {"type": "integer", "minimum": 1},
            },
        }
    },
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["eventName", "orderId", "total", "currency", "products"],
            "properties": {
                "eventName": {"const": "Order Completed"},
                "orderId": {"type": "string", "minLength": 6},
                "userId": {"type": "integer"},
                "email": {"type": "string", "format": "email"},
                "timestamp": {"type": "string", "format": "date-time"},
                "total": {"type": "number", "minimum": 0},
                "currency": {"enum": ["USD", "EUR", "GBP"]},
                "coupon": {"type": ["string", "null"]},
                "affiliation": {"type": "string"},
                "products": {"type": "array", "items": {"$ref": "#/$defs/product"}},
            },
        }
    },
    "naming": "camelCase",
}
EVENT: dict[str, Any] = {
    "eventName": "Order Completed",
    "orderId": "ORD-918273",
    "userId": 123,
    "email": "qa@example.com",
    "timestamp": "2025-12-10T15:45:00Z",
    "total": 59.97,
    "currency": "USD",
    "coupon": None,
    "affiliation": "web",
    "products": [
        {"sku": "ABC-0001", "price": 19.99, "quantity": 1},
        {"sku": "ABC-0002", "price": 19.99, "quantity": 2},
    ],
}
INVALID_EVENT: dict[str, Any] = {**EVENT, "total": "59.97", "currency": "usd", "products": [{}]}
# No personal data: what hygiene costs on the events most apps send.
CLEAN_EVENT: dict[str, Any] = {k: v for k, v in EVENT.items() if k != "email"}


Variant = Callable[[int], dict[str, Any]]


def measure(
    event: dict[str, Any], rounds: int, hygiene: bool = False, fresh: Variant | None = None
) -> dict[str, float]:
    """Judging one event, as ingest does: with the hygiene checks when `hygiene` (the event's
    JSON text is there already, from parsing). `fresh(i)`, when given, makes
    round i's event (built outside the timing), so its ids are values never seen before."""
    plan = compile_plan(PLAN, 1)

    def judge(judged: dict[str, Any], text: str) -> None:
        verdict = plan.judge(judged)
        if hygiene:
            add_hygiene(verdict, judged, text)

    text = orjson.dumps(event).decode()
    for _ in range(1000):  # warm up
        judge(event, text)
    samples = []
    for i in range(rounds):
        judged = fresh(i) if fresh else event
        # Ingest has the text already (parsing writes it once): made outside the timing.
        judged_text = orjson.dumps(judged).decode() if fresh else text
        started = time.perf_counter()
        judge(judged, judged_text)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {
        "p50_ms": percentile(samples, 0.50) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "per_second": rounds / sum(samples),
    }


def fresh_order(i: int) -> dict[str, Any]:
    """The clean event with an order id, a time and SKUs no event had before."""
    return {
        **CLEAN_EVENT,
        "orderId": f"ORD-{i:06d}",
        "timestamp": f"2025-12-10T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "products": [
            {"sku": f"ABC-{i % 10_000:04d}", "price": 19.99, "quantity": 1},
            {"sku": f"XYZ-{i % 10_000:04d}", "price": 19.99, "quantity": 2},
        ],
    }


def run(rounds: int = 50_000) -> dict[str, dict[str, float]]:
    return {
        "valid event": measure(EVENT, rounds),
        "invalid event (4 errors)": measure(INVALID_EVENT, rounds),
        "fresh valid event": measure(CLEAN_EVENT, rounds, fresh=fresh_order),
        # Issue 17. The first two carry an email: hygiene adds a warning to each.
        "valid event + hygiene": measure(EVENT, rounds, hygiene=True),
        "invalid event + hygiene": measure(INVALID_EVENT, rounds, hygiene=True),
        "fresh valid + hygiene": measure(CLEAN_EVENT, rounds, hygiene=True, fresh=fresh_order),
    }


if __name__ == "__main__":
    for name, figures in run().items():
        print(
            f"{name:26} p50 {figures['p50_ms']:.4f} ms  p99 {figures['p99_ms']:.4f} ms"
            f"  {figures['per_second']:,.0f}/s"
        )
