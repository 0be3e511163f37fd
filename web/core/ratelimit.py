"""Per-key token buckets: how many events an app may send to this process, and for how long."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# Buckets idle this long are forgotten, so a scan of many app ids cannot grow memory.
IDLE_SECONDS = 300.0
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows `rate` events per second per key on average, and bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = max(burst, rate)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, count: int = 1, now: float | None = None) -> float | None:
        """Take `count` tokens; None when allowed, else the seconds until they would be."""
        if self._rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if count <= bucket.tokens:
            bucket.tokens -= count
            return None
        if count > self._burst:
            return math.inf  # can never pass in one request
        return (count - bucket.tokens) / self._rate

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if now - b.updated > IDLE_SECONDS]:
            del self._buckets[key]
