"""LvdClient against a fake server: requests it makes, and the messages its assertions raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lvd.client import AsyncLvdClient, Event, LvdClient, LvdError, new_session_id

Handler = Callable[[httpx.Request], httpx.Response]


def stored(
    name: str | None = "checkout",
    status: str = "valid",
    errors: list[dict[str, Any]] | None = None,
    event_id: str = "e-1",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_name": name,
        "status": status,
        "errors": errors or [],
        "payload": {"event": name},
        "plan_version": 1,
        "session": "s-1",
        "received_at": "2025-12-10T15:45:00+00:00",
        "created_at": "2025-12-10T15:45:00.100000+00:00",
    }


def wait_answer(wanted: int, *events: dict[str, Any]) -> dict[str, Any]:
    """What /wait answers once it stops waiting: reached when it found as many as wanted."""
    return {
        "reached": len(events) >= wanted,
        "count": len(events),
        "wanted": wanted,
        "events": list(events),
    }


def issue(path: str, rule: str, message: str, severity: str = "error") -> dict[str, Any]:
    return {"path": path, "rule": rule, "message": message, "severity": severity}


class FakeServer:
    """Answers by path with canned bodies and records every request."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = f"{request.method} {request.url.path}"
        answer = self.routes[key]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def params(self, index: int = -1) -> dict[str, str]:
        return dict(self.requests[index].url.params)


def client_for(server: FakeServer, session: str | None = "s-1") -> LvdClient:
    http = httpx.Client(base_url="http://lvd.test", transport=httpx.MockTransport(server))
    return LvdClient("http://lvd.test", "shop", session=session, http=http)


SUMMARY = {
    "total": 3,
    "by_status": {"valid": 2, "invalid": 1},
    "by_event_name": [
        {"event_name": "signup", "total": 2, "valid": 2, "invalid": 0},
        {"event_name": None, "total": 1, "valid": 0, "invalid": 1},
    ],
}


def test_client_wait_for_returns_events_when_reached() -> None:
    server = FakeServer(
        {
            "GET /api/logs/shop/wait": wait_answer(1, stored()),
        }
    )

    events = client_for(server).wait_for(event_name=["checkout", "refund"], status="valid")

    assert [e.event_name for e in events] == ["checkout"]
    assert server.params() == {
        "event_name": "checkout,refund",
        "status": "valid",
        "session": "s-1",
        "count": "1",
        "timeout": "10.000",
    }


def test_client_wait_for_not_reached_lists_what_was_seen() -> None:
    server = FakeServer(
        {
            "GET /api/logs/shop/wait": wait_answer(2),
            "GET /api/logs/shop/summary": SUMMARY,
        }
    )

    with pytest.raises(AssertionError) as raised:
        client_for(server).wait_for(2, event_name="checkout", timeout=0)

    assert str(raised.value) == (
        "expected 2 'checkout' events within 0 s in session 's-1', found 0.\n"
        "Events seen in session 's-1': signup x2, (no name) x1"
    )


def test_client_wait_for_partial_lists_the_matching_events() -> None:
    server = FakeServer(
        {
            "GET /api/logs/shop/wait": wait_answer(3, stored(event_id="only-one")),
        }
    )

    with pytest.raises(AssertionError) as raised:
        client_for(server, session=None).assert_seen("checkout", count=3, timeout=0)

    assert "expected 3 'checkout' events within 0 s, found 1." in str(raised.value)
    assert "checkout [valid] id=only-one" in str(raised.value)


def test_client_wait_for_nothing_stored_says_so() -> None:
    server = FakeServer(
        {
            "GET /api/logs/shop/wait": wait_answer(1),
            "GET /api/logs/shop/summary": {**SUMMARY, "total": 0, "by_event_name": []},
        }
    )

    with pytest.raises(AssertionError, match="No events at all in session 's-1'"):
        client_for(server).wait_for(timeout=0)


def test_client_wait_longer_than_the_server_maximum_asks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("lvd_client.calls.time.monotonic", lambda: clock[0])

    def wait(request: httpx.Request) -> dict[str, Any]:
        clock[0] += float(request.url.params["timeout"])  # the server waited it out
        return wait_answer(1)

    server = FakeServer({"GET /api/logs/shop/wait": wait})

    result = client_for(server).wait(timeout=90)

    assert not result.reached
    assert [float(r.url.params["timeout"]) for r in server.requests] == [60.0, 30.0]


def test_client_assert_no_invalid_lists_each_event_with_its_errors() -> None:
    bad = stored(
        "Order Completed",
        "invalid",
        [
            issue("/properties/total", "type", 'total must be a number, got the string "x"'),
            issue("/event", "naming", "not snake_case", "warning"),
        ],
        event_id="evt-9",
    )
    server = FakeServer(
        {
            "GET /api/logs/shop": {"events": [bad], "next_cursor": None},
            "GET /api/logs/shop/summary": SUMMARY,
        }
    )

    with pytest.raises(AssertionError) as raised:
        client_for(server).assert_no_invalid()

    assert str(raised.value) == (
        "1 invalid event in session 's-1':\n"
        "  - Order Completed [invalid] id=evt-9\n"
        '      /properties/total [type] total must be a number, got the string "x"'
    )
    assert server.params(0)["status"] == "invalid"


def test_client_assert_no_invalid_counts_those_it_does_not_list() -> None:
    many = [stored(status="invalid", event_id=f"e{n}") for n in range(21)]
    server = FakeServer(
        {
            "GET /api/logs/shop": {"events": many, "next_cursor": "5"},
            "GET /api/logs/shop/summary": {**SUMMARY, "by_status": {"valid": 0, "invalid": 57}},
        }
    )

    with pytest.raises(AssertionError) as raised:
        client_for(server).assert_no_invalid(event_name="checkout")

    text = str(raised.value)
    assert text.startswith("57 invalid events in session 's-1':")
    assert text.count("  - checkout [invalid]") == 20
    assert text.endswith("... and 37 more")
    assert server.params(1) == {"event_name": "checkout", "session": "s-1"}


def test_client_assert_no_invalid_passes_when_none_are() -> None:
    server = FakeServer({"GET /api/logs/shop": {"events": [], "next_cursor": None}})

    client_for(server).assert_no_invalid()

    assert len(server.requests) == 1


def test_client_events_follow_cursors_to_the_end() -> None:
    pages = {
        None: {"events": [stored(event_id="a"), stored(event_id="b")], "next_cursor": "7"},
        "7": {"events": [stored(event_id="c")], "next_cursor": None},
    }
    server = FakeServer({"GET /api/logs/shop": lambda r: pages[r.url.params.get("cursor")]})

    events = client_for(server).events(status="invalid")

    assert [e.event_id for e in events] == ["a", "b", "c"]
    assert server.params(0) == {"status": "invalid", "session": "s-1", "limit": "1000"}
    assert server.params(1)["cursor"] == "7"


def test_client_events_limit_stops_early() -> None:
    server = FakeServer(
        {"GET /api/logs/shop": {"events": [stored(event_id="a")], "next_cursor": "9"}}
    )

    events = client_for(server).events(limit=1)

    assert len(events) == 1
    assert server.params()["limit"] == "1"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda lvd: lvd.events(evnt_name="signup"), id="events"),
        pytest.param(lambda lvd: lvd.summary(stauts="invalid"), id="summary"),
        pytest.param(lambda lvd: lvd.wait_for(text="signup"), id="wait-takes-fewer-filters"),
    ],
)
def test_client_unknown_filter_raises_before_any_request(call: Callable[[LvdClient], Any]) -> None:
    # A misspelt filter that were ignored would match every event: a test would pass wrongly.
    server = FakeServer({})

    with pytest.raises(TypeError, match="unknown filter"):
        call(client_for(server))

    assert server.requests == []


def test_client_refusal_raises_lvd_error_with_code() -> None:
    refusal = httpx.Response(
        400, json={"error": {"code": "invalid_filter", "message": "status must be valid"}}
    )
    server = FakeServer({"GET /api/logs/shop": refusal})

    with pytest.raises(LvdError) as raised:
        client_for(server).events(status="maybe")

    assert (raised.value.status, raised.value.code) == (400, "invalid_filter")
    assert str(raised.value) == "400 invalid_filter: status must be valid"


def test_client_non_json_refusal_still_raises_lvd_error() -> None:
    server = FakeServer({"DELETE /api/logs/shop": httpx.Response(502, text="bad gateway")})

    with pytest.raises(LvdError) as raised:
        client_for(server).reset()

    assert (raised.value.status, raised.value.code, raised.value.message) == (
        502,
        "http_error",
        "bad gateway",
    )


def test_client_send_tags_the_session_and_key() -> None:
    server = FakeServer({"POST /api/logs/shop": {"status": "valid"}})
    client = client_for(server)
    client.write_key = "wk_1"

    client.send({"eventName": "x"})

    sent = server.requests[0]
    assert sent.headers["X-LVD-Session"] == "s-1"
    assert sent.headers["X-Write-Key"] == "wk_1"
    assert sent.content == b'{"eventName":"x"}'


def test_client_reset_is_scoped_to_the_session() -> None:
    server = FakeServer({"DELETE /api/logs/shop": {"deleted": 4, "session": "s-1"}})

    assert client_for(server).reset() == 4
    assert server.params() == {"session": "s-1"}


def test_client_sdk_host_is_session_scoped() -> None:
    server = FakeServer({})

    assert client_for(server).sdk_host == "http://lvd.test/v1/session/s-1"
    assert client_for(server, session=None).sdk_host == "http://lvd.test"


def test_client_for_session_makes_a_fresh_unique_session() -> None:
    base = client_for(FakeServer({}))

    first, second = base.for_session(), base.for_session()

    assert first.session != second.session
    assert first.session and first.session.startswith("test-")
    assert base.for_session("mine").session == "mine"
    assert new_session_id("ci").startswith("ci-")


def test_event_from_json_reads_every_field() -> None:
    event = Event.from_json(stored(errors=[issue("", "required", "missing eventName")]))

    assert event.received_at.year == 2025
    assert event.plan_version == 1
    assert str(event.errors[0]) == "/ [required] missing eventName"


def test_client_token_goes_with_every_query_and_never_with_ingest() -> None:
    server = FakeServer(
        {
            "POST /api/logs/shop": {"status": "valid"},
            "GET /api/logs/shop": {"events": [], "next_cursor": None},
            "GET /api/logs/shop/summary": SUMMARY,
            "GET /api/logs/shop/wait": wait_answer(1, stored()),
            "DELETE /api/logs/shop": {"deleted": 0, "session": "s-1"},
        }
    )
    client = client_for(server)
    client.token = "lvd_t0ken"

    client.send({"eventName": "x"})
    client.events()
    client.summary()
    client.wait()
    client.reset()

    sent = {r.method + " " + r.url.path: r.headers.get("Authorization") for r in server.requests}
    assert sent.pop("POST /api/logs/shop") is None
    assert sent == dict.fromkeys(sent, "Bearer lvd_t0ken") and len(sent) == 4


async def test_async_client_makes_the_same_requests_as_the_sync_one() -> None:
    def routes() -> FakeServer:
        return FakeServer(
            {
                "GET /api/logs/shop/wait": wait_answer(2, stored(event_id="a")),
                "GET /api/logs/shop": {"events": [stored(event_id="a")], "next_cursor": None},
                "GET /api/logs/shop/summary": SUMMARY,
            }
        )

    sync_server, async_server = routes(), routes()
    transport = httpx.MockTransport(async_server)
    http = httpx.AsyncClient(base_url="http://lvd.test", transport=transport)
    async with AsyncLvdClient("http://lvd.test", "shop", session="s-1", http=http) as alvd:
        with pytest.raises(AssertionError) as async_raised:
            await alvd.expect_events(["checkout", "checkout"], timeout=0)
        async_events = await alvd.events(status="invalid")
    with pytest.raises(AssertionError) as sync_raised:
        client_for(sync_server).expect_events(["checkout", "checkout"], timeout=0)
    sync_events = client_for(sync_server).events(status="invalid")

    assert str(async_raised.value) == str(sync_raised.value)
    assert str(sync_raised.value).startswith("expected 2 'checkout' events within 0 s")
    assert async_events == sync_events
    assert [(r.method, str(r.url)) for r in async_server.requests] == [
        (r.method, str(r.url)) for r in sync_server.requests
    ]
    assert not http.is_closed  # a client given its connection leaves it open
    await http.aclose()


def test_client_expect_events_takes_a_list_of_names() -> None:
    server = FakeServer({})

    with pytest.raises(TypeError, match="non-empty list"):
        client_for(server).expect_events("checkout")

    assert server.requests == []
