"""The SSE endpoint /apps/<id>/stream: framing, back-fill, resume, filters, live rows, cleanup."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from markupsafe import escape
from quart import Quart, render_template
from quart.typing import TestClientProtocol as Client

import web.hub
import web.stream
from tests.web.conftest import MakeApp
from tests.web.support import (
    SseMessage,
    SseStream,
    commit_out_of_id_order,
    error,
    eventually,
    insert_entries,
    message_event,
    new_entry,
    open_stream,
    parse_sse,
)
from web.context import Services
from web.core.queries.base import App
from web.core.queries.events import (
    select_log_entries,
    select_log_entries_by_ids,
)
from web.sse import sse_frame
from workers.store import store_events

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    '<div hx-get="/x" hx-trigger="load">',
]


async def rendered_row(quart_app: Quart, pool: asyncpg.Pool, row_id: int) -> str:
    async with pool.acquire() as conn:
        [entry] = await select_log_entries_by_ids(conn, [row_id])
    async with quart_app.app_context():
        return await render_template("_event_row.html", entry=entry)


@contextlib.asynccontextmanager
async def subscribed_stream(
    client: Client, services: Services, path: str
) -> AsyncIterator[SseStream]:
    """Opens the stream, reads its retry: preamble and waits until its hub subscription exists."""
    before = services.hub.subscriber_count
    async with open_stream(client, path) as stream:
        assert parse_sse(await stream.frame()).raw == b"retry: 1000"
        await eventually(
            lambda: services.hub.subscriber_count == before + 1, message="the stream subscribed"
        )
        yield stream


def assert_row_message(message: SseMessage, row_id: int, html: str) -> None:
    assert message.id == str(row_id)
    assert message.event == "event"
    assert message.data == html
    # Every line of the row HTML travels on its own data: line, none of them empty-split.
    lines = message.raw.decode().split("\n")
    assert lines[:2] == [f"id: {row_id}", "event: event"]
    assert lines[2:] == [f"data: {line}" for line in html.split("\n")]
    assert len(lines) > 3


# --- framing ----------------------------------------------------------------------------


def test_sse_frame_puts_each_line_on_its_own_data_line() -> None:
    frame = sse_frame("<tr>\n  <td>a</td>\n</tr>", event="event", event_id=42)

    assert frame == b"id: 42\nevent: event\ndata: <tr>\ndata:   <td>a</td>\ndata: </tr>\n\n"


def test_sse_frame_empty_data_is_one_empty_data_line() -> None:
    frame = sse_frame("", event="event", event_id=1)

    assert frame == b"id: 1\nevent: event\ndata: \n\n"
    assert parse_sse(frame.rstrip(b"\n")) == SseMessage("1", "event", "", frame.rstrip(b"\n"))


def test_sse_frame_carriage_returns_cannot_inject_fields() -> None:
    frame = sse_frame("x\r\nid: 99\revent: evil\n\ndata: y", event="event", event_id=7)
    raw = frame.removesuffix(b"\n\n")

    assert b"\r" not in frame
    assert b"\n\n" not in raw
    parsed = parse_sse(raw)
    assert (parsed.id, parsed.event) == ("7", "event")
    assert all(line.startswith((b"id: ", b"event: ", b"data: ")) for line in raw.split(b"\n"))


@pytest.mark.parametrize(
    "data",
    [
        "one line",
        "two\nlines",
        "blank\n\nline inside",
        "<td>caf\u00e9 \u2603</td>",
        "line\u2028separator",
        "next\x85line",
        "form\x0cfeed",
        "group\x1dseparator",
    ],
)
def test_sse_frame_round_trips_through_an_sse_parser(data: str) -> None:
    """What EventSource reads back is the payload itself (SSE only splits on CR and LF)."""
    frame = sse_frame(data, event="event", event_id=3)

    assert parse_sse(frame.removesuffix(b"\n\n")).data == data


# --- response and back-fill -------------------------------------------------------------


async def test_stream_answers_event_stream_headers(
    client: Client, services: Services, app: App
) -> None:
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers is not None
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.headers["X-Accel-Buffering"] == "no"
        await stream.no_message(0.2)


async def test_stream_backfills_rows_after_the_given_id_oldest_first(
    client: Client, quart_app: Quart, services: Services, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(
        pool,
        [
            new_entry(app.id, name="seen"),
            new_entry(app.id, name="missed-1"),
            new_entry(
                app.id, name="missed-2", status="invalid", errors=[error("/a", "type", "bad")]
            ),
        ],
    )
    async with subscribed_stream(
        client, services, f"/apps/{app.id}/stream?after={ids[0]}"
    ) as stream:
        first = await stream.message()
        second = await stream.message()
        await stream.no_message(0.2)

    assert_row_message(first, ids[1], await rendered_row(quart_app, pool, ids[1]))
    assert_row_message(second, ids[2], await rendered_row(quart_app, pool, ids[2]))
    assert "missed-2" in second.data
    assert "badge-invalid" in second.data


async def test_stream_without_after_backfills_the_latest_rows(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(pool, [new_entry(app.id), new_entry(app.id)])

    async with open_stream(client, f"/apps/{app.id}/stream?after=junk") as stream:
        received = [(await stream.message()).id for _ in ids]

    assert received == [str(i) for i in ids]


async def test_stream_last_event_id_overrides_after(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(pool, [new_entry(app.id) for _ in range(3)])

    async with open_stream(
        client, f"/apps/{app.id}/stream?after=0", headers={"Last-Event-ID": str(ids[1])}
    ) as stream:
        message = await stream.message()
        await stream.no_message(0.2)

    assert message.id == str(ids[2])


async def test_stream_status_filter_applies_to_backfill(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    ids = await insert_entries(
        pool,
        [
            new_entry(app.id, status="invalid"),
            new_entry(app.id),
            new_entry(app.id, status="invalid"),
            new_entry(app.id),
        ],
    )

    async with open_stream(client, f"/apps/{app.id}/stream?status=invalid&after=0") as stream:
        received = [(await stream.message()).id for _ in range(2)]
        await stream.no_message(0.2)

    assert received == [str(ids[0]), str(ids[2])]


async def test_stream_unknown_app_answers_404(client: Client) -> None:
    response = await client.get("/apps/no-such-app/stream")

    assert response.status_code == 404


async def test_stream_bogus_status_answers_400(client: Client, app: App) -> None:
    response = await client.get(f"/apps/{app.id}/stream?status=bogus")

    assert response.status_code == 400


# --- live rows --------------------------------------------------------------------------


async def test_stream_delivers_rows_stored_after_connecting(
    client: Client, quart_app: Quart, services: Services, pool: asyncpg.Pool, app: App
) -> None:
    [old] = await insert_entries(pool, [new_entry(app.id, name="old")])
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream?after={old}") as stream:
        [new_id] = await store_events(pool, [message_event(app.id, name="live_one")])
        message = await stream.message(within=5.0)
        [second_id] = await store_events(pool, [message_event(app.id, name="live_two")])
        second = await stream.message(within=5.0)

    assert_row_message(message, new_id, await rendered_row(quart_app, pool, new_id))
    assert "live_one" in message.data
    assert second.id == str(second_id)


async def test_stream_live_rows_follow_the_status_filter(
    client: Client, services: Services, pool: asyncpg.Pool, app: App
) -> None:
    async with subscribed_stream(
        client, services, f"/apps/{app.id}/stream?status=valid&after=0"
    ) as stream:
        await store_events(pool, [message_event(app.id, name="bad", status="invalid")])
        [good] = await store_events(pool, [message_event(app.id, name="good")])
        message = await stream.message()
        await stream.no_message(0.2)

    assert message.id == str(good)
    assert "good" in message.data


async def test_stream_never_sends_another_apps_rows(
    client: Client, services: Services, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await make_app()
    other = await make_app()
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream?after=0") as stream:
        await store_events(pool, [message_event(other.id, name="not_mine")])
        [mine] = await store_events(pool, [message_event(app.id, name="mine")])
        message = await stream.message()
        await stream.no_message(0.2)

    assert message.id == str(mine)
    assert "not_mine" not in message.data


async def test_stream_live_hostile_names_arrive_escaped(
    client: Client, services: Services, pool: asyncpg.Pool, app: App
) -> None:
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream?after=0") as stream:
        await store_events(
            pool,
            [
                message_event(
                    app.id,
                    name=hostile,
                    status="invalid",
                    errors=[error("/eventName", "format", hostile)],
                )
                for hostile in HOSTILE
            ],
        )
        messages = [await stream.message() for _ in HOSTILE]

    for hostile, message in zip(HOSTILE, messages, strict=True):
        assert str(escape(hostile)) in message.data
        for raw in ("<script>alert", "<img src=x", "<div hx-get"):
            assert raw not in message.data
    assert "{{7*7}}" in messages[2].data


async def test_stream_row_committed_out_of_id_order_still_arrives(
    client: Client, services: Services, pool: asyncpg.Pool, app: App
) -> None:
    """Two workers commit concurrently: the row with the lower id can commit second."""
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream?after=0") as stream:
        seen_first: list[str] = []

        async def read_the_first() -> None:
            seen_first.append((await stream.message()).id)

        slow_id, fast_id = await commit_out_of_id_order(pool, app.id, between=read_the_first)
        [first_id] = seen_first
        received = {first_id}
        with contextlib.suppress(TimeoutError):
            received.add((await stream.message(within=2.0)).id)

    assert slow_id < fast_id
    assert first_id == str(fast_id)
    assert received == {str(fast_id), str(slow_id)}, "the late-committed row never arrived"


async def test_stream_row_in_backfill_and_live_queue_is_sent_once(
    client: Client,
    services: Services,
    pool: asyncpg.Pool,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A row committed between subscribing and the back-fill query reaches both paths."""
    real_select = select_log_entries
    raced: list[int] = []

    async def select_after_a_commit(conn: Any, app_id: str, **kwargs: Any) -> Any:
        if app_id == app.id and not raced:
            raced.extend(await store_events(pool, [message_event(app.id, name="raced")]))
            await eventually(
                lambda: any(
                    s.app_id == app.id and s.queue.qsize() for s in services.hub._subscriptions
                ),
                message="the hub queued the row",
            )
        return await real_select(conn, app_id, **kwargs)

    monkeypatch.setattr(web.stream, "select_log_entries", select_after_a_commit)

    async with open_stream(client, f"/apps/{app.id}/stream?after=0") as stream:
        message = await stream.message()
        await stream.no_message(0.3)

    assert message.id == str(raced[0])


async def test_stream_sends_keepalive_when_idle(
    client: Client, services: Services, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.stream, "KEEPALIVE_SECONDS", 0.05)
    async with subscribed_stream(client, services, f"/apps/{app.id}/stream") as stream:
        frame = await stream.frame(within=2.0)

    assert frame == b": keepalive"


async def test_stream_disconnect_removes_the_hub_subscription(
    client: Client, services: Services, app: App
) -> None:
    before = services.hub.subscriber_count

    async with subscribed_stream(client, services, f"/apps/{app.id}/stream"):
        assert services.hub.subscriber_count == before + 1

    await eventually(
        lambda: services.hub.subscriber_count == before, message="the subscription was removed"
    )


async def test_stream_slow_client_is_cut_off_and_resumes_without_loss(
    client: Client,
    services: Services,
    pool: asyncpg.Pool,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web.hub, "SUBSCRIBER_QUEUE_SIZE", 2)
    before = services.hub.subscriber_count

    async with subscribed_stream(client, services, f"/apps/{app.id}/stream?after=0") as stream:
        # One notification with five ids: four rows more than the queue holds arrive at once.
        ids = await store_events(pool, [message_event(app.id) for _ in range(5)])
        first = await stream.message()
        # The server ends the stream on its own and lets go of the subscription.
        await eventually(
            lambda: services.hub.subscriber_count == before, message="the slow stream ended"
        )

    async with open_stream(
        client, f"/apps/{app.id}/stream", headers={"Last-Event-ID": first.id or ""}
    ) as resumed:
        rest = [(await resumed.message()).id for _ in ids[1:]]

    assert first.id == str(ids[0])
    assert rest == [str(i) for i in ids[1:]]
