"""The token bucket: average rate, bursts, and the wait it reports."""

from __future__ import annotations

import math

from web.core.ratelimit import RateLimiter


def test_rate_limiter_allows_a_burst_then_refuses_with_the_wait() -> None:
    limiter = RateLimiter(rate=10, burst=20)
    assert limiter.take("a", 20, now=0.0) is None
    wait = limiter.take("a", 5, now=0.0)
    assert wait is not None and math.isclose(wait, 0.5)


def test_rate_limiter_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=10)
    assert limiter.take("a", 10, now=0.0) is None
    assert limiter.take("a", 1, now=0.05) is not None
    assert limiter.take("a", 1, now=0.1) is None


def test_rate_limiter_keys_are_independent() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("a", 1, now=0.0) is None
    assert limiter.take("b", 1, now=0.0) is None
    assert limiter.take("a", 1, now=0.0) is not None


def test_rate_limiter_more_than_the_burst_can_never_pass() -> None:
    assert RateLimiter(rate=10, burst=10).take("a", 11, now=0.0) == math.inf


def test_rate_limiter_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst=0)
    assert all(limiter.take("a", 1_000_000, now=0.0) is None for _ in range(3))
