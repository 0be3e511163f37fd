"""AsyncLvdClient against a live server: every call, as an asyncio test suite makes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lvd_client import AsyncLvdClient, LvdError, new_session_id

from tests.conftest import LiveServer

from .helpers import unique
from .test_pytest_plugin import app_with_plan

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop(live_server: LiveServer) -> str:
    """An app with a plan, shared by this module's tests: sessions keep them apart."""
    return app_with_plan(live_server.base_url, "async")


@pytest.fixture
async def alvd(live_server: LiveServer, shop: str) -> AsyncIterator[AsyncLvdClient]:
    async with AsyncLvdClient(live_server.base_url, shop, session=new_session_id()) as client:
        yield client


def checkout(total: Any = 9.5) -> dict[str, Any]:
    return {"eventName": "checkout", "total": total}


async def test_async_client_send_then_assert_seen_and_no_invalid(alvd: AsyncLvdClient) -> None:
    verdict = await alvd.send(checkout())

    [event] = await alvd.assert_seen("checkout", status="valid")

    assert verdict["status"] == "valid"
    assert (event.event_id, event.session) == (verdict["event_id"], alvd.session)
    await alvd.assert_no_invalid()


async def test_async_client_events_summary_and_filters(alvd: AsyncLvdClient) -> None:
    answer = await alvd.send([checkout(), checkout(total="x"), {"eventName": "signup"}])
    assert [r["status"] for r in answer["results"]] == ["valid", "invalid", "valid"]
    await alvd.wait_for(3)

    everything = await alvd.events()
    invalid = await alvd.events(status="invalid")
    newest = await alvd.events(limit=1)
    summary = await alvd.summary(event_name="checkout")

    assert len(everything) == 3
    assert [(e.event_name, e.errors[0].rule) for e in invalid] == [("checkout", "type")]
    assert len(newest) == 1
    assert summary["total"] == 2 and summary["by_status"] == {"valid": 1, "invalid": 1}


async def test_async_client_assert_no_invalid_names_the_event_and_its_error(
    alvd: AsyncLvdClient,
) -> None:
    await alvd.send([checkout(), checkout(total=None)])
    await alvd.wait_for(2)

    with pytest.raises(AssertionError) as raised:
        await alvd.assert_no_invalid()

    assert str(raised.value).startswith(f"1 invalid event in session {alvd.session!r}:")
    assert "/total [type]" in str(raised.value)


async def test_async_client_wait_reports_a_timeout_with_what_arrived(
    alvd: AsyncLvdClient,
) -> None:
    await alvd.send({"eventName": "signup"})
    reached = await alvd.wait(1, event_name="signup")

    missed = await alvd.wait(2, event_name="signup", timeout=0.5)
    with pytest.raises(AssertionError) as raised:
        await alvd.wait_for(1, event_name="checkout", timeout=0.5)

    assert reached.reached and len(reached.events) == 1
    assert (missed.reached, missed.wanted, len(missed.events)) == (False, 2, 1)
    assert "expected 1 'checkout' event within 0.5 s" in str(raised.value)
    assert "signup x1" in str(raised.value)


async def test_async_client_expect_events_in_order(alvd: AsyncLvdClient) -> None:
    for event in ({"eventName": "signup"}, checkout(), checkout()):
        await alvd.send(event)

    events = await alvd.expect_events(["signup", "checkout", "checkout"], ordered=True)

    assert [e.event_name for e in events] == ["signup", "checkout", "checkout"]
    with pytest.raises(AssertionError, match="in this order"):
        await alvd.expect_events(["checkout", "signup"], ordered=True)


async def test_async_client_sessions_run_concurrently_apart_and_reset(
    alvd: AsyncLvdClient,
) -> None:
    other = alvd.for_session()

    async def job(client: AsyncLvdClient, orders: int) -> set[str | None]:
        await asyncio.gather(*(client.send(checkout()) for _ in range(orders)))
        return {event.session for event in await client.wait_for(orders)}

    seen = await asyncio.gather(job(alvd, 3), job(other, 4))

    assert seen == [{alvd.session}, {other.session}]
    assert await other.reset() == 4
    assert (len(await alvd.events()), len(await other.events())) == (3, 0)


async def test_async_client_refusal_raises_lvd_error(
    live_server: LiveServer, alvd: AsyncLvdClient
) -> None:
    async with AsyncLvdClient(live_server.base_url, unique("nowhere")) as missing:
        with pytest.raises(LvdError) as unknown:
            await missing.send({"eventName": "signup"})
    with pytest.raises(LvdError) as bad_filter:
        await alvd.events(status="maybe")

    assert (unknown.value.status, unknown.value.code) == (404, "unknown_app")
    assert (bad_filter.value.status, bad_filter.value.code) == (400, "invalid_filter")


async def test_async_client_context_manager_closes_only_its_own_connection(
    live_server: LiveServer, shop: str
) -> None:
    async with AsyncLvdClient(live_server.base_url, shop, session=new_session_id()) as client:
        borrowed = client.for_session()
        await borrowed.aclose()  # it shares the first client's connection: not its to close
        await borrowed.send({"eventName": "signup"})
        await borrowed.assert_seen("signup")

    assert borrowed.session != client.session
    assert client._http.is_closed
