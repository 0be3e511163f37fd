"""`lvd scenario push/pull` against the live server, and the clients' expect_scenario."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from lvd_client import AsyncLvdClient

from lvd.client import LvdClient, new_session_id
from tests.conftest import LiveServer
from tests.web.test_scenarios import CHECKOUT as WEB_CHECKOUT

from .helpers import run_lvd, unique

pytestmark = pytest.mark.e2e

CHECKOUT = {"name": "checkout", **WEB_CHECKOUT}
FIRST_THREE = ("product_viewed", "product_added", "checkout_started")


@pytest.fixture(scope="module")
def shop(live_server: LiveServer) -> str:
    """An app with the checkout scenario, shared by this module's tests (sessions apart)."""
    with httpx.Client(base_url=live_server.base_url) as http:
        app_id: str = http.post("/api/apps", json={"id": unique("scn")}).json()["id"]
        saved = http.put(f"/api/apps/{app_id}/scenarios/checkout", json=CHECKOUT)
        assert saved.status_code == 201, saved.text
    return app_id


async def lvd_scenario(live_server: LiveServer, *args: str) -> tuple[int, str, str]:
    return await run_lvd(live_server.settings, "scenario", *args, "--url", live_server.base_url)


def event(name: str, **properties: Any) -> dict[str, Any]:
    return {"eventName": name, "properties": properties}


async def test_scenario_push_then_pull_gives_back_the_file(
    live_server: LiveServer, shop: str, tmp_path: Path
) -> None:
    document = {**CHECKOUT, "name": "browse", "strict": True}
    path = tmp_path / "browse.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))

    code, out, err = await lvd_scenario(live_server, "push", str(path), "--app", shop)
    assert (code, err) == (0, ""), err
    assert out.strip() == f"Saved {path} as revision 1 of {shop}'s scenario browse"
    code, out, _ = await lvd_scenario(live_server, "push", str(path), "--app", shop)
    assert "as revision 2 of" in out

    pulled = tmp_path / "pulled.json"
    code, out, err = await lvd_scenario(
        live_server, "pull", "browse", "--app", shop, "-o", str(pulled)
    )
    assert code == 0, err
    assert orjson.loads(pulled.read_bytes()) == document
    assert list(orjson.loads(pulled.read_bytes())) == list(document)  # keys in file order
    code, out, _ = await lvd_scenario(live_server, "pull", "browse", "--app", shop)
    assert orjson.loads(out) == document


async def test_scenario_push_of_a_bad_file_lists_its_problems(
    live_server: LiveServer, shop: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "bad", "steps": [{"event": "a", "assertions": [{"path": "x"}]}]}')
    code, out, err = await lvd_scenario(live_server, "push", str(path), "--app", shop)
    assert code == 1 and out == ""
    assert "lvd scenario push: the scenario has 2 problem(s)" in err
    assert "  /steps/0/assertions/0/path: path is a JSON Pointer" in err
    code, _, err = await lvd_scenario(live_server, "pull", "nope", "--app", shop)
    assert code == 1 and f"app {shop!r} has no scenario 'nope'" in err


def test_expect_scenario_passes_when_the_events_arrive_during_the_wait(
    live_server: LiveServer, shop: str
) -> None:
    with LvdClient(live_server.base_url, shop, session=new_session_id()) as lvd:
        lvd.send([event(name) for name in FIRST_THREE])
        lvd.wait_for(3)
        outcome: list[Any] = []
        waiter = threading.Thread(
            target=lambda: outcome.append(lvd.expect_scenario("checkout", timeout=30))
        )
        waiter.start()
        lvd.send(event("order_completed", total=19.5))
        waiter.join(40)
        assert not waiter.is_alive()
        (report,) = outcome
        assert report["verdict"] == "passed"
        assert [step["state"] for step in report["steps"]] == ["passed"] * 4


def test_expect_scenario_fails_with_the_reports_words_on_timeout(
    live_server: LiveServer, shop: str
) -> None:
    with LvdClient(live_server.base_url, shop, session=new_session_id()) as lvd:
        lvd.send(event("product_viewed"))
        lvd.wait_for(1)
        started = time.monotonic()
        with pytest.raises(AssertionError) as raised:
            lvd.expect_scenario("checkout", timeout=1)
        assert 0.9 < time.monotonic() - started < 10
        words = str(raised.value).splitlines()
        assert words[0] == (
            f"Scenario checkout in session {lvd.session}: IN PROGRESS (1 of 4 steps passed,"
            " 1 events)"
        )
        assert "- step 2 (product_added): missing, no product_added event yet" in words
        assert words[-1] == "- no verdict within 1 s"


async def test_async_expect_scenario_fails_at_once_naming_the_breaking_event(
    live_server: LiveServer, shop: str
) -> None:
    async with AsyncLvdClient(live_server.base_url, shop, session=new_session_id()) as lvd:
        await lvd.send([event(name) for name in FIRST_THREE])
        expecting = asyncio.create_task(lvd.expect_scenario("checkout", timeout=30))
        sent = await lvd.send(event("order_completed", total=0))
        started = time.monotonic()
        with pytest.raises(AssertionError) as raised:
            await expecting
        assert time.monotonic() - started < 20  # decided, not timed out
        text = str(raised.value)
        assert text.startswith(f"Scenario checkout in session {lvd.session}: FAILED")
        assert f"step 4 (order_completed): event {sent['event_id']} fails" in text
        assert "0 is less than or equal to the minimum of 0" in text
