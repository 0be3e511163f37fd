"""Validation micro-benchmark: judging a typical event against a compiled plan, per event."""

from __future__ import annotations

import time
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


def measure(event: dict[str, Any], rounds: int, hygiene: bool = False) -> dict[str, float]:
    """Judging one event, as ingest does: with the hygiene checks when `hygiene` (the event's
    size is known there, from the JSON it was read from)."""
    plan = compile_plan(PLAN, 1)
    size = len(orjson.dumps(event))

    def judge() -> None:
        verdict = plan.judge(event)
        if hygiene:
            add_hygiene(verdict, event, size)

    for _ in range(1000):  # warm up
        judge()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        judge()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {
        "p50_ms": percentile(samples, 0.50) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "per_second": rounds / sum(samples),
    }


def run(rounds: int = 50_000) -> dict[str, dict[str, float]]:
    return {
        "valid event": measure(EVENT, rounds),
        "invalid event (4 errors)": measure(INVALID_EVENT, rounds),
        # The event carries an email: hygiene adds one warning (issue 17).
        "valid event + hygiene": measure(EVENT, rounds, hygiene=True),
        "invalid event + hygiene": measure(INVALID_EVENT, rounds, hygiene=True),
        "clean event + hygiene": measure(CLEAN_EVENT, rounds, hygiene=True),
    }


if __name__ == "__main__":
    for name, figures in run().items():
        print(
            f"{name:26} p50 {figures['p50_ms']:.4f} ms  p99 {figures['p99_ms']:.4f} ms"
            f"  {figures['per_second']:,.0f}/s"
        )
