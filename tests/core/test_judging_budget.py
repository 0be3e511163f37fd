"""web/core/ingest/budget.py: turns of a byte budget, first come first served, bounded waits."""

from __future__ import annotations

import asyncio

import pytest

from web.core.ingest.budget import JudgingBudget, NoTurn


async def test_requests_within_the_budget_go_at_once_together() -> None:
    budget = JudgingBudget(1000)
    async with budget.turn(400, within=0), budget.turn(600, within=0):
        assert budget.waiting == 0


async def test_a_request_waits_for_its_turn_and_gets_it_when_the_budget_comes_back() -> None:
    budget = JudgingBudget(1000)
    order: list[str] = []

    async def request(name: str, size: int) -> None:
        async with budget.turn(size, within=5):
            order.append(name)

    async with budget.turn(800, within=0):
        waiting = asyncio.create_task(request("second", 500))
        await asyncio.sleep(0.01)
        assert (order, budget.waiting) == ([], 1)
    await waiting
    assert order == ["second"]


async def test_first_come_first_served_a_small_request_does_not_overtake_a_large_one() -> None:
    budget = JudgingBudget(1000)
    order: list[str] = []

    async def request(name: str, size: int) -> None:
        async with budget.turn(size, within=5):
            order.append(name)
            await asyncio.sleep(0.01)

    async with budget.turn(600, within=0):
        large = asyncio.create_task(request("large", 900))
        await asyncio.sleep(0.001)
        small = asyncio.create_task(request("small", 100))  # fits now, but comes second
        await asyncio.sleep(0.01)
        assert order == []
    await asyncio.gather(large, small)
    assert order == ["large", "small"]


async def test_a_request_larger_than_the_budget_goes_alone() -> None:
    budget = JudgingBudget(1000)
    async with budget.turn(5000, within=0):
        with pytest.raises(NoTurn):
            async with budget.turn(1, within=0.01):
                pass
    async with budget.turn(5000, within=0):
        pass


async def test_a_turn_that_does_not_come_in_time_times_out_and_takes_nothing() -> None:
    budget = JudgingBudget(1000)
    async with budget.turn(1000, within=0):
        with pytest.raises(NoTurn):
            async with budget.turn(10, within=0.02):
                pytest.fail("the block ran without a turn")
        assert budget.waiting == 0
    async with budget.turn(1000, within=0):  # the whole budget is back
        pass


async def test_a_waiter_that_gives_up_does_not_hold_back_the_ones_behind_it() -> None:
    budget = JudgingBudget(1000)
    entered: list[str] = []

    async def request(name: str, size: int, within: float) -> None:
        async with budget.turn(size, within=within):
            entered.append(name)

    held = budget.turn(900, within=0)
    await held.__aenter__()
    impatient = asyncio.create_task(request("impatient", 1000, 0.02))
    await asyncio.sleep(0.001)
    patient = asyncio.create_task(request("patient", 100, 5))
    with pytest.raises(NoTurn):
        await impatient
    # The large waiter left the head of the line: the small one fits beside the holder.
    await asyncio.wait_for(patient, 1)
    await held.__aexit__(None, None, None)
    assert entered == ["patient"]


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    budget = JudgingBudget(1000)
    async with budget.turn(1000, within=0):
        waiter = asyncio.create_task(budget.turn(500, within=5).__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert budget.waiting == 0
    async with budget.turn(1000, within=0):
        pass
