"""Which failures are worth retrying: a database that is away comes back; bad data does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import asyncpg

# Failures of the connection or the server's state: retried with capped backoff, forever,
# so a database outage of any length never parks an event.
_TRANSIENT = (
    OSError,
    TimeoutError,
    ConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a pooled connection left mid-operation by a terminate
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.ReadOnlySQLTransactionError,
)
# Failures caused by the data itself: the same event fails the same way every time.
_PERMANENT = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    asyncpg.UntranslatableCharacterError,
    KeyError,
    TypeError,
    ValueError,
)


# An error that is neither (a bug, say) is retried this many times, then parked.
UNKNOWN_ERROR_RETRIES = 10
# A periodic job runs again at its next interval anyway: Dramatiq retries it only a few
# times, for a database or broker that was briefly away.
PERIODIC_RETRIES = 3


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, _PERMANENT) and not is_transient(exc)


def should_retry(retries: int, exc: BaseException) -> bool:
    """Dramatiq's retry_when: transient failures forever (backoff is capped), bad data never."""
    if is_transient(exc):
        return True
    if is_permanent(exc):
        return False
    return retries < UNKNOWN_ERROR_RETRIES


def retry_briefly(retries: int, exc: BaseException) -> bool:
    """retry_when for periodic and alert actors: a few tries, never for bad data."""
    return retries < PERIODIC_RETRIES and (is_transient(exc) or not is_permanent(exc))


class RetryPolicy(TypedDict):
    """An actor's Dramatiq retry options: retry_when decides, the backoff doubles between these."""

    retry_when: Callable[[int, BaseException], bool]
    min_backoff: int  # milliseconds
    max_backoff: int


# Storing events: a database outage is retried forever with backoff capped at 30 s; bad data
# is not retried.
RETRY_UNTIL_STORED = RetryPolicy(retry_when=should_retry, min_backoff=200, max_backoff=30_000)
# Periodic and alert actors: PERIODIC_RETRIES tries, 1 to 8 s apart (the cap is never reached).
RETRY_BRIEFLY = RetryPolicy(retry_when=retry_briefly, min_backoff=1_000, max_backoff=10_000)
