"""LvdClient against a live server, used the way docs/TESTING_WITH_LVD.md shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from segment.analytics.client import Client as SegmentClient

from lvd.client import LvdClient, new_session_id
from tests.conftest import LiveServer

from .helpers import unique

pytestmark = pytest.mark.e2e

PLAN = {
    "events": {
        "checkout_completed": {
            "type": "object",
            "required": ["orderId", "total"],
            "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}},
        },
        "Product Viewed": {"type": "object"},
    }
}


@pytest.fixture(scope="module")
def shop(live_server: LiveServer) -> dict[str, Any]:
    """An app with a plan, shared by this module's tests: sessions keep them apart."""
    with httpx.Client(base_url=live_server.base_url) as http:
        app: dict[str, Any] = http.post("/api/apps", json={"id": unique("shop")}).json()
        assert http.put(f"/api/apps/{app['id']}/plan", json=PLAN).status_code == 200
    return app


@pytest.fixture
def lvd(live_server: LiveServer, shop: dict[str, Any]) -> Iterator[LvdClient]:
    """The documented fixture: one client per test, in a session no other test uses."""
    with LvdClient(live_server.base_url, shop["id"], session=new_session_id()) as client:
        yield client


def checkout(**fields: Any) -> dict[str, Any]:
    return {"eventName": "checkout_completed", "orderId": "o-1", "total": 9.5, **fields}


def test_client_send_then_assert_seen_and_no_invalid(lvd: LvdClient) -> None:
    verdict = lvd.send(checkout())

    [event] = lvd.assert_seen("checkout_completed")

    assert verdict["status"] == "valid"
    assert event.event_id == verdict["event_id"]
    assert event.session == lvd.session
    lvd.assert_no_invalid()


def test_client_assert_no_invalid_names_the_event_and_its_error(lvd: LvdClient) -> None:
    lvd.send([checkout(), checkout(total="9.50")])
    lvd.wait_for(2)

    with pytest.raises(AssertionError) as raised:
        lvd.assert_no_invalid()

    message = str(raised.value)
    assert message.startswith(f"1 invalid event in session {lvd.session!r}:")
    assert "checkout_completed [invalid]" in message
    assert "/total [type]" in message


def test_client_wait_for_times_out_listing_what_arrived(lvd: LvdClient) -> None:
    lvd.send({"eventName": "Product Viewed"})
    lvd.wait_for(1)

    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        lvd.assert_seen("checkout_completed", timeout=1)

    assert 0.9 < time.monotonic() - started < 6
    assert "expected 1 'checkout_completed' event within 1 s" in str(raised.value)
    assert "Product Viewed x1" in str(raised.value)


def test_client_parallel_sessions_never_see_each_other(lvd: LvdClient) -> None:
    other = lvd.for_session()
    errors: list[BaseException] = []

    def job(client: LvdClient, orders: int) -> None:
        try:
            for n in range(orders):
                client.send(checkout(orderId=f"{client.session}-{n}"))
            events = client.wait_for(orders)
            assert {e.payload["orderId"].rsplit("-", 1)[0] for e in events} == {client.session}
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(c, n)) for c, n in ((lvd, 3), (other, 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(lvd.events()) == 3
    assert len(other.events()) == 4
    assert other.reset() == 4
    assert (len(lvd.events()), len(other.events())) == (3, 0)


def test_client_summary_counts_this_session(lvd: LvdClient) -> None:
    lvd.send([checkout(), checkout(total=None), {"eventName": "Product Viewed"}])
    lvd.wait_for(3)

    summary = lvd.summary()

    assert summary["by_status"] == {"valid": 2, "invalid": 1}
    assert summary["by_event_name"][0] == {
        "event_name": "checkout_completed",
        "total": 2,
        "valid": 1,
        "invalid": 1,
    }


def test_client_sdk_host_puts_a_real_sdk_in_the_session(
    lvd: LvdClient, shop: dict[str, Any]
) -> None:
    analytics = SegmentClient(shop["write_key"], host=lvd.sdk_host, sync_mode=True)

    analytics.track("user-1", "Product Viewed", {"sku": "A-1"})

    [event] = lvd.assert_seen("Product Viewed")
    assert event.payload["properties"] == {"sku": "A-1"}
    lvd.assert_no_invalid()
