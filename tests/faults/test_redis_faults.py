"""Redis hung (SIGSTOP) or killed and restarted: quick 503s, no 202 without a queued message."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import httpx
import pytest
import redis

from lvd.loadtest import Outcome, Report

from .conftest import (
    APP_ID,
    Stack,
    assert_no_dead_letters,
    check_oracle,
    figure,
    queue_drains,
    start_load,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.faults

# What the contract promises for a 503 (about 2 s) and what this suite tolerates.
BOUND_503_SECONDS = 5.0
HEALTHZ_BOUND_SECONDS = 1.0


def merged(*reports: Report) -> Report:
    report = Report(requested=sum(r.requested for r in reports), duration=0.0)
    for each in reports:
        report.outcomes += each.outcomes
        report.duration += each.duration
    return report


def due_second(outcome: Outcome, rate: float) -> float:
    """When the request was due, from the index in its event id (`<run>-<index>`)."""
    return int(outcome.event_ids[0].rsplit("-", 1)[1]) / rate


async def probe_post(client: httpx.AsyncClient, prefix: str) -> tuple[httpx.Response, float, str]:
    event_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    response = await client.post(
        f"/api/logs/{APP_ID}", json={"eventName": "probe", "event_id": event_id}
    )
    return response, time.monotonic() - started, event_id


async def healthz_times(client: httpx.AsyncClient, count: int) -> list[float]:
    """Answer times of /healthz, each one required to be a 200."""
    times: list[float] = []
    for _ in range(count):
        started = time.monotonic()
        response = await client.get("/healthz")
        times.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.2)
    return times


async def test_redis_sigstop_answers_503_quickly_and_resumes_on_its_own(stack: Stack) -> None:
    test = "Redis SIGSTOP"
    worker_pids = [worker.pid for worker in stack.workers]
    redis_pid = stack.redis_pid()
    probes = Report(requested=0, duration=0.0)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=15.0) as client:
        # Accepted just before Redis hangs: the worker has not fetched it yet.
        response, seconds, event_id = await probe_post(client, "before-stop")
        probes.outcomes.append(Outcome(response.status_code, seconds, [event_id]))
        assert response.status_code == 202, response.text

        os.kill(redis_pid, signal.SIGSTOP)
        stack.redis_stopped = True
        stopped_at = time.monotonic()
        try:
            load = start_load(stack, 20.0, 5.0, "stopped")
            health = asyncio.create_task(healthz_times(client, 15))
            probe, probe_seconds, event_id = await probe_post(client, "while-stopped")
            probes.outcomes.append(Outcome(probe.status_code, probe_seconds, [event_id]))
            during = await load
            health_seconds = await health
        finally:
            os.kill(redis_pid, signal.SIGCONT)
            stack.redis_stopped = False
        stopped_for = time.monotonic() - stopped_at

        assert probe.status_code == 503, probe.text
        assert probe.headers.get("Retry-After"), dict(probe.headers)
        assert probe.json()["error"]["code"] == "queue_unavailable"
        assert statuses(during) == {503: len(during.outcomes)}, statuses(during)
        slowest_503 = max(o.latency for o in during.outcomes)
        assert slowest_503 < BOUND_503_SECONDS, f"a 503 took {slowest_503:.2f} s"
        assert max(health_seconds) < HEALTHZ_BOUND_SECONDS, health_seconds

        # Ingest comes back on its own: probe until a 202 (bounded).
        resumed_at = time.monotonic()
        back_after = 0.0
        for _ in range(100):
            response, seconds, event_id = await probe_post(client, "after-cont")
            probes.outcomes.append(Outcome(response.status_code, seconds, [event_id]))
            if response.status_code == 202:
                back_after = time.monotonic() - resumed_at
                break
            await asyncio.sleep(0.1)
        assert response.status_code == 202, response.text

    after = await start_load(stack, 200.0, 3.0, "resumed")
    figure(test, "Redis stopped for", stopped_for, "s")
    figure(test, "single POST while stopped answered 503 in", probe_seconds, "s")
    figure(test, "slowest 503 under load while stopped", slowest_503, "s")
    figure(test, "slowest /healthz while stopped", max(health_seconds), "s")
    figure(test, "SIGCONT -> first 202", back_after, "s")
    assert statuses(after) == {202: len(after.outcomes)}, statuses(after)
    assert [w.pid for w in stack.workers if w.alive()] == worker_pids, stack.logs()

    report = merged(probes, during, after)
    refused = {i for o in report.outcomes if o.status != 202 for i in o.event_ids}
    # A 503 promises the event was not queued: no message for it may sit in Redis (a
    # command Redis runs after the web gave up on it would still store the event).
    queued_though_refused = sorted(refused & set(stack.queued_event_ids()))
    # Workers resumed on their own (same processes) and drained everything, including
    # what was accepted just before the stop.
    drained = await queue_drains(stack, within=15.0)
    await check_oracle(stack, report, test=test, drain_limit=10.0)
    assert queued_though_refused == [], (
        f"events answered 503 were queued after all: {queued_though_refused}\n"
        + "\n".join(stack.describe_queue())
    )
    assert drained is not None, "messages stranded in Redis:\n" + "\n".join(stack.describe_queue())
    figure(test, "load after SIGCONT -> queue drained", drained, "s")
    await assert_no_dead_letters(stack)
    assert stack.web is not None
    assert stack.web.alive()


async def test_redis_killed_and_restarted_503_while_down_then_202_and_drains(
    stack: Stack,
) -> None:
    test = "Redis SIGKILL + restart"
    rate = 200.0
    worker_pids = [worker.pid for worker in stack.workers]
    redis_pid = stack.redis_pid()
    load = start_load(stack, rate, 8.0, "rkill")
    started = time.monotonic()
    await asyncio.sleep(2.0)
    # A backlog for the append-only file to keep: the workers pause (for less than the
    # heartbeat timeout) from just before the kill until the restarted Redis has been
    # read, so no ack can blur what it kept.
    for worker in stack.workers:
        worker.signal_group(signal.SIGSTOP)
    try:
        await asyncio.sleep(1.0)
        backlog = stack.message_ids()
        os.kill(redis_pid, signal.SIGKILL)
        killed_at = time.monotonic() - started
        await asyncio.sleep(2.0)
        popen = stack.relaunch_redis()

        def answers() -> bool:
            try:
                with stack.redis_client(timeout=0.5) as client:
                    return bool(client.ping())
            except redis.RedisError:
                return popen.poll() is not None

        await wait_until(answers, within=20.0, message="the restarted Redis answering")
        assert popen.poll() is None, "the restarted Redis exited"
        restarted_at = time.monotonic() - started
        kept = backlog & stack.message_ids()
    finally:
        for worker in stack.workers:
            worker.signal_group(signal.SIGCONT)
    report = await load

    drained_after = await queue_drains(stack, within=20.0)
    await check_oracle(stack, report, test=test, drain_limit=10.0)
    assert drained_after is not None, "messages stranded in Redis:\n" + "\n".join(
        stack.describe_queue()
    )
    await assert_no_dead_letters(stack)
    refused = [o for o in report.outcomes if o.status != 202]
    answer_codes = {o.status for o in refused}
    assert answer_codes <= {503}, statuses(report)
    assert refused, "some requests fell into the outage"
    first_refused = min(due_second(o, rate) for o in refused)
    last_refused = max(due_second(o, rate) for o in refused)
    # 503s only around the outage, and 202s again once Redis is back.
    assert first_refused >= killed_at - 2.5, (first_refused, killed_at)
    assert last_refused <= restarted_at + 2.0, (last_refused, restarted_at)
    assert backlog, "the paused workers left messages queued at the kill"
    # The append-only file is written before Redis answers, so a killed Redis (not a
    # crashed machine) keeps every message it acknowledged.
    assert kept == backlog, f"{len(backlog - kept)} of {len(backlog)} queued messages lost"
    assert [w.pid for w in stack.workers if w.alive()] == worker_pids, stack.logs()
    assert stack.web is not None
    assert stack.web.alive()
    figure(test, "Redis down (kill -> answering again)", restarted_at - killed_at, "s")
    figure(test, "requests answered 503", len(refused))
    figure(
        test,
        "503s due from/to (s after load start)",
        f"{first_refused:.2f}/{last_refused:.2f} (kill {killed_at:.2f}, back {restarted_at:.2f})",
    )
    figure(test, "messages queued at the kill", len(backlog))
    figure(test, "of them back after the restart (append-only file)", len(kept))
    figure(test, "load end -> queue drained", drained_after, "s")
