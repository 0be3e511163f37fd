"""Worker processes killed or stopped under load: nothing accepted is lost or stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import pytest

from lvd.loadtest import Report

from .conftest import (
    APP_ID,
    STOPS,
    Process,
    Stack,
    assert_all_alive,
    assert_no_dead_letters,
    assert_queue_drained,
    check_oracle,
    deliver_stop,
    figure,
    start_load,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.faults

RATE = 250.0  # requests per second, one event each
# The line the actor logs after its transaction committed and before Dramatiq acks.
STORED_LINE = b": stored "


async def stored_ids(stack: Stack, event_ids: list[str]) -> set[str]:
    rows = await stack.fetch(
        "SELECT DISTINCT event_id FROM log_entries WHERE app_id = $1"
        " AND event_id = ANY($2::text[])",
        APP_ID,
        event_ids,
    )
    return {row["event_id"] for row in rows}


async def wait_stored(stack: Stack, event_ids: list[str], within: float, message: str) -> float:
    async def all_stored() -> bool:
        return len(await stored_ids(stack, event_ids)) == len(set(event_ids))

    return await wait_until(all_stored, within=within, message=message)


async def check_recovered(
    stack: Stack,
    report: Report,
    *,
    test: str,
    since: float,
    since_what: str,
    drain_within: float = 10.0,
) -> None:
    """Every accepted event stored once, the queue empty, nothing parked, every request
    answered 202, every process alive; figures the drain time from `since`."""
    await check_oracle(stack, report, test=test, drain_limit=60.0)
    drained = time.monotonic() - since
    await assert_queue_drained(stack, within=drain_within)
    await assert_no_dead_letters(stack)
    assert statuses(report) == {202: len(report.outcomes)}
    assert_all_alive(stack)
    figure(test, f"{since_what} -> backlog drained", drained, "s")
    figure(test, "worst queue->db latency", max(report.queue_latencies), "s")


async def kill_after_a_commit(worker: Process, within: float) -> bool:
    """SIGKILL the worker as soon as it logs a commit (its ack follows a moment later).

    Returns whether a commit line was seen; if none shows up in time it is killed anyway.
    """
    start = worker.log_path.stat().st_size
    deadline = time.monotonic() + within
    seen = False
    while time.monotonic() < deadline:
        with worker.log_path.open("rb") as log:
            log.seek(start)
            if STORED_LINE in log.read():
                seen = True
                break
        await asyncio.sleep(0.002)
    worker.kill()
    return seen


@contextlib.asynccontextmanager
async def inserts_blocked(stack: Stack) -> AsyncIterator[None]:
    """Hold a lock that makes the worker's inserts wait, so its threads stay busy and its
    fetched messages stay unacked until the block ends."""
    blocker = await stack.connect()
    try:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE log_entries IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await lock.rollback()
    finally:
        await blocker.close()


async def test_worker_sigkill_mid_stream_loses_and_doubles_nothing(stack: Stack) -> None:
    test = "worker SIGKILL"
    load = start_load(stack, RATE, 6.0, "kill")
    await asyncio.sleep(2.5)
    [worker] = stack.workers

    # Kill while the worker surely holds fetched, unacked messages: on a quiet machine it
    # acks so fast that a kill at a random instant often finds it holding none. Its inserts
    # wait on a table lock meanwhile, so every thread has a message in progress.
    async with inserts_blocked(stack):
        await wait_until(
            lambda: bool(stack.held_message_ids()),
            within=5.0,
            interval=0.005,
            message="the worker holding unacked messages",
        )
        # What the worker has fetched but not acked: after the kill it comes back only
        # after the heartbeat timeout, through a later worker's maintenance.
        held_messages = stack.held_message_ids()
        held = stack.held_event_ids()
        killed_at = time.monotonic()
        worker.kill()
        stack.retire(worker)
    committed = await stored_ids(stack, held)
    replacement = asyncio.create_task(stack.start_worker())
    await wait_stored(
        stack, held, 60.0, "the killed worker's unacked events stored by another worker"
    )
    stored_after = time.monotonic() - killed_at
    await wait_until(
        lambda: not held_messages & stack.message_ids(),
        within=60.0,
        message="the killed worker's unacked messages redelivered and acked",
    )
    recovered_after = time.monotonic() - killed_at
    await replacement
    report = await load

    await check_recovered(stack, report, test=test, since=killed_at, since_what="kill")
    assert held_messages, "the worker was killed holding no message: nothing was tested"
    figure(test, "messages the killed worker held unacked", len(held_messages))
    figure(test, "events in them", len(held))
    figure(test, "of those already committed (redelivered after commit)", len(committed))
    figure(test, "kill -> all their events stored", stored_after, "s")
    figure(test, "kill -> all held messages redelivered and acked", recovered_after, "s")


async def test_worker_sigkill_repeatedly_after_commits_stores_exactly_once(stack: Stack) -> None:
    test = "worker SIGKILL x3"
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    print(f"{test}: random seed {seed}")
    load = start_load(stack, RATE, 9.0, "kills")
    held: set[str] = set()
    committed: set[str] = set()
    after_commit = 0
    last_kill = 0.0
    for _ in range(3):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        [worker] = stack.workers
        if await kill_after_a_commit(worker, within=3.0):
            after_commit += 1
        last_kill = time.monotonic()
        stack.retire(worker)
        now_held = stack.held_event_ids()
        held |= set(now_held)
        committed |= await stored_ids(stack, now_held)
        await stack.start_worker()
    report = await load

    await check_recovered(
        stack, report, test=test, since=last_kill, since_what="last kill", drain_within=20.0
    )
    figure(test, "kills right after a logged commit", after_commit)
    figure(test, "events held unacked by the killed workers", len(held))
    figure(test, "of them committed before the kill (stored once all the same)", len(committed))


@pytest.mark.parametrize("how", list(STOPS))
async def test_worker_sigterm_finishes_work_and_returns_prefetched_messages(
    stack: Stack, how: str
) -> None:
    test = f"worker stop, {how}"
    load = start_load(stack, RATE, 6.0, "term")
    await asyncio.sleep(2.0)
    [worker] = stack.workers

    # Make sure the worker is busy when told to stop: its inserts wait on a table lock, so
    # every thread has a message in progress and its prefetch fills up behind them.
    async with inserts_blocked(stack):
        await asyncio.sleep(1.0)
        held_at_term = len(stack.held_message_ids())
        log_offset = worker.log_path.stat().st_size
        termed_at = time.monotonic()
        deliver_stop(worker, how)
        await asyncio.sleep(0.5)
    # The lock is gone: the work in progress can finish now.
    code = await asyncio.to_thread(worker.popen.wait, 20)
    exited_after = time.monotonic() - termed_at
    stack.retire(worker)
    held_after = stack.held_event_ids()
    delayed_after = stack.queue_state()["delayed"]
    shutdown_log = worker.log()[log_offset:]
    failures = [line for line in shutdown_log.splitlines() if "unhandled exception" in line]

    started_at = time.monotonic()
    await stack.start_worker()
    # Dramatiq hands back the messages in its work queue at once; a few still in its Redis
    # consumer's fetch cache stay in the stopped worker's ack set until the heartbeat
    # timeout, when a live worker's maintenance returns them. Either way they get stored.
    await wait_stored(stack, held_after, 30.0, "events the stopped worker still held")
    held_back_after = time.monotonic() - started_at
    report = await load
    await check_recovered(
        stack,
        report,
        test=test,
        since=started_at,
        since_what="new worker start",
        drain_within=20.0,
    )
    figure(test, "messages the worker held at SIGTERM", held_at_term)
    figure(test, "SIGTERM -> worker exited", exited_after, "s")
    figure(test, "messages failed during the shutdown (sent to the delay queue)", len(failures))

    assert held_at_term > 4, "the worker had no prefetched messages to give back"
    assert code == 0, shutdown_log[-3000:]
    # It says so, once, however many copies of the signal arrived.
    assert shutdown_log.count("Stopping on SIG") == 1, shutdown_log[-3000:]
    assert exited_after < 10.0, f"the worker took {exited_after:.1f} s to stop"
    # Prefetched messages went back to the queue at once: none is left in the stopped
    # worker's ack set (to wait for a heartbeat timeout), none failed into the delay queue.
    figure(test, "events left in its ack set at exit", len(held_after))
    figure(test, "new worker start -> those stored", held_back_after, "s")
    # The messages in progress finished; none failed (and was retried) during shutdown.
    assert failures == [], (
        f"{len(failures)} messages failed while the worker shut down:\n"
        + "\n".join(line[:300] for line in failures[:3])
        + "\n"
        + "\n".join(
            line for line in shutdown_log.splitlines() if "Error" in line and "File" not in line
        )[:1500]
    )
    assert delayed_after == 0, f"{delayed_after} messages went to the delay queue"
