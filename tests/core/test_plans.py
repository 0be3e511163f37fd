"""Plans as stored things: diffs, drafts from traffic, re-validation, versions, the cache."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import current_plan_version, new_app
from tests.sample_plans import order_completed
from web.core import directory as directory_module
from web.core.directory import AppDirectory
from web.core.errors import Rejected
from web.core.plans import (
    PLANS_CHANNEL,
    Change,
    compile_version,
    diff_plans,
    diff_values,
    draft_plan,
    revalidate,
    save_plan,
)
from web.core.queries.apps import select_app
from web.core.queries.base import App, Connection, LogEntry, NewLogEntry, PlanVersion
from web.core.queries.events import insert_log_entries, select_log_entries
from web.core.queries.plans import select_plan_version, select_plan_versions
from web.core.settings import Settings
from web.core.validation.plan import check_plan, compile_plan

ORDER_V1: dict[str, Any] = {
    "events": {
        "order_completed": {
            "type": "object",
            "required": ["orderId"],
            "properties": {"orderId": {"type": "string"}, "price": {"type": "number"}},
        },
        "user_login": {"type": "object"},
    },
    "allow_unplanned": False,
}


async def save(pool: asyncpg.Pool, app_id: str, document: Any) -> PlanVersion:
    async with pool.acquire() as conn:
        return await save_plan(conn, app_id, document)


async def order_app(pool: asyncpg.Pool) -> str:
    """A new app whose plan's version 1 is ORDER_V1; its id."""
    app_id = await new_app(pool)
    await save(pool, app_id, ORDER_V1)
    return app_id


# --- diff ---------------------------------------------------------------------------------


def test_diff_plans_lists_added_removed_and_changed_events() -> None:
    new = {
        "events": {
            "order_completed": order_completed("USD"),
            "cart_viewed": {"type": "object"},
        },
        "allow_unplanned": False,
    }

    diff = diff_plans(ORDER_V1, new)

    assert diff.events_added == ["cart_viewed"]
    assert diff.events_removed == ["user_login"]
    assert list(diff.events_changed) == ["order_completed"]
    assert diff.events_changed["order_completed"] == [
        Change("/properties/currency", "added", new={"enum": ["USD"]}),
        Change("/properties/price/minimum", "added", new=0),
        Change("/required", "changed", old=["orderId"], new=["orderId", "currency"]),
    ]
    assert diff.settings_changed == []
    assert not diff.is_empty


def test_diff_plans_reports_removed_nested_rule() -> None:
    old = {"events": {"e": {"properties": {"a": {"type": "string", "maxLength": 5}}}}}
    new = {"events": {"e": {"properties": {"a": {"type": "string"}}}}}

    diff = diff_plans(old, new)

    assert diff.events_changed == {"e": [Change("/properties/a/maxLength", "removed", old=5)]}


def test_diff_plans_reports_settings_changes() -> None:
    old = {"events": {}, "allow_unplanned": False}
    new = {"events": {}, "allow_unplanned": True, "naming": "snake_case", "common": {"x": 1}}

    diff = diff_plans(old, new)

    assert diff.settings_changed == [
        Change("/allow_unplanned", "changed", old=False, new=True),
        Change("/common", "added", new={"x": 1}),
        Change("/naming", "added", new="snake_case"),
    ]
    assert diff.events_added == diff.events_removed == []
    assert diff.events_changed == {}


def test_diff_plans_of_identical_plans_is_empty() -> None:
    diff = diff_plans(ORDER_V1, orjson.loads(orjson.dumps(ORDER_V1)))

    assert diff.is_empty
    assert diff.as_dict() == {
        "events_added": [],
        "events_removed": [],
        "events_changed": {},
        "settings_changed": [],
    }


def test_diff_plans_from_empty_plan_adds_every_event() -> None:
    diff = diff_plans({}, ORDER_V1)

    assert diff.events_added == ["order_completed", "user_login"]
    assert diff.settings_changed == [Change("/allow_unplanned", "added", new=False)]


def test_diff_plans_as_dict_serialises_changes() -> None:
    old = {"events": {"e": {"type": "object"}}}
    new = {"events": {"e": {"type": "array"}}}

    assert diff_plans(old, new).as_dict()["events_changed"] == {
        "e": [{"path": "/type", "change": "changed", "old": "object", "new": "array"}]
    }


def test_diff_values_escapes_slash_and_tilde_in_pointers() -> None:
    old = {"properties": {"a/b": {"type": "string"}, "c~d": 1}}
    new = {"properties": {"a/b": {"type": "number"}, "e~/f": 2}}

    changes = diff_values(old, new, "")

    assert changes == [
        Change("/properties/a~1b/type", "changed", old="string", new="number"),
        Change("/properties/c~0d", "removed", old=1),
        Change("/properties/e~0~1f", "added", new=2),
    ]


def test_diff_values_whole_value_changes_at_the_path() -> None:
    assert diff_values([1, 2], [1, 3], "/enum") == [
        Change("/enum", "changed", old=[1, 2], new=[1, 3])
    ]
    assert diff_values("a", {"b": 1}, "/x") == [Change("/x", "changed", old="a", new={"b": 1})]
    assert diff_values(None, 3, "/x") == [Change("/x", "added", new=3)]
    assert diff_values(3, None, "/x") == [Change("/x", "removed", old=3)]
    assert diff_values({"a": 1}, {"a": 1}, "") == []


# --- draft from traffic ---------------------------------------------------------------------


def test_draft_plan_records_types_seen() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "n": 1, "f": 1.5, "s": "x", "b": True, "z": None, "l": [1], "o": {}}
    ]

    schema = draft_plan({"e": samples})["events"]["e"]

    assert schema["type"] == "object"
    props = schema["properties"]
    assert {key: props[key]["type"] for key in props} == {
        "n": "integer",
        "f": "number",
        "s": "string",
        "b": "boolean",
        "z": "null",
        "l": "array",
        "o": "object",
    }


def test_draft_plan_requires_only_always_present_properties() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "orderId": "1", "coupon": "A"},
        {"eventName": "e", "orderId": "2"},
        {"eventName": "e", "orderId": "3", "coupon": None},
    ]

    schema = draft_plan({"e": samples})["events"]["e"]

    assert schema["required"] == ["orderId"]
    assert set(schema["properties"]) == {"orderId", "coupon"}
    assert schema["properties"]["coupon"] == {"type": ["null", "string"]}


def test_draft_plan_integer_and_number_become_number() -> None:
    samples = [{"eventName": "e", "price": 10}, {"eventName": "e", "price": 12.99}]

    schema = draft_plan({"e": samples})["events"]["e"]

    assert schema["properties"]["price"] == {"type": "number"}


def test_draft_plan_describes_nested_objects() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "cart": {"id": "c1", "total": 3, "coupon": "X"}},
        {"eventName": "e", "cart": {"id": "c2", "total": 4.5}},
    ]

    cart = draft_plan({"e": samples})["events"]["e"]["properties"]["cart"]

    assert cart == {
        "type": "object",
        "properties": {
            "coupon": {"type": "string"},
            "id": {"type": "string"},
            "total": {"type": "number"},
        },
        "required": ["id", "total"],
    }


def test_draft_plan_describes_arrays_of_objects() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "products": [{"sku": "a", "price": 1}, {"sku": "b"}]},
        {"eventName": "e", "products": [{"sku": "c", "price": 2.5}]},
    ]

    products = draft_plan({"e": samples})["events"]["e"]["properties"]["products"]

    assert products == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"price": {"type": "number"}, "sku": {"type": "string"}},
            "required": ["sku"],
        },
    }


def test_draft_plan_detects_date_times_only_when_every_value_is_one() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "paidAt": "2025-12-10T15:45:00Z", "note": "2025-12-10T15:45:00Z"},
        {"eventName": "e", "paidAt": "2025-12-11T08:00:00.5+01:00", "note": "yesterday"},
    ]

    props = draft_plan({"e": samples})["events"]["e"]["properties"]

    assert props["paidAt"] == {"type": "string", "format": "date-time"}
    assert props["note"] == {"type": "string"}


def test_draft_plan_leaves_out_envelope_keys() -> None:
    samples: list[dict[str, Any]] = [
        {"eventName": "e", "event_id": "1", "messageId": "m", "uuid": "u", "x": 1},
        {"event": "e", "event_name": "e", "x": 2},
    ]

    schema = draft_plan({"e": samples})["events"]["e"]

    assert set(schema["properties"]) == {"x"}
    assert schema["required"] == ["x"]


def test_draft_plan_is_a_valid_plan_that_accepts_its_samples() -> None:
    samples = {
        "order_completed": [
            {
                "eventName": "order_completed",
                "timestamp": "2025-12-10T15:45:00Z",
                "orderId": "o1",
                "price": 10,
                "products": [{"sku": "a"}],
            },
            {
                "eventName": "order_completed",
                "timestamp": "2025-12-10T15:46:00Z",
                "orderId": "o2",
                "price": 5.5,
                "products": [],
                "coupon": None,
            },
        ],
        "user_login": [{"eventName": "user_login", "userId": 123}],
    }

    document = draft_plan(samples)
    plan = compile_plan(document, 1)

    assert check_plan(document) == []
    assert document["allow_unplanned"] is False
    assert list(document["events"]) == ["order_completed", "user_login"]
    for payloads in samples.values():
        for payload in payloads:
            assert plan.judge(payload).issues == (), payload
    assert plan.judge({"eventName": "order_completed", "price": 1}).status == "invalid"


def test_draft_plan_of_no_traffic_has_no_events() -> None:
    assert draft_plan({}) == {"events": {}, "allow_unplanned": False}


# --- re-validation ------------------------------------------------------------------------

STRICT_PRICE = {
    "events": {
        "order_completed": {
            "type": "object",
            "required": ["price"],
            "properties": {"price": {"type": "number", "minimum": 10}},
        }
    }
}


def log_entry(row_id: int, payload: dict[str, Any], was: str) -> LogEntry:
    now = datetime.now(UTC)
    return LogEntry(
        id=row_id,
        app_id="a",
        event_id=f"evt-{row_id}",
        event_name=payload.get("eventName"),
        payload=payload,
        status=was,
        errors=[],
        plan_version=1,
        session=None,
        received_at=now,
        created_at=now,
    )


def test_revalidate_sorts_events_into_the_four_outcomes() -> None:
    entries = [
        log_entry(1, {"eventName": "order_completed", "price": 20}, "invalid"),  # fixed
        log_entry(2, {"eventName": "order_completed", "price": 5}, "valid"),  # newly failing
        log_entry(3, {"eventName": "order_completed", "price": "x"}, "invalid"),  # still invalid
        log_entry(4, {"eventName": "order_completed", "price": 11}, "valid"),  # still valid
        log_entry(5, {"eventName": "order_completed"}, "valid"),  # newly failing
    ]

    report = revalidate(compile_plan(STRICT_PRICE, 2), entries).as_dict()

    assert report["version"] == 2
    assert report["judged"] == 5
    assert report["counts"] == {
        "fixed": 1,
        "newly_failing": 2,
        "still_invalid": 1,
        "still_valid": 1,
    }
    assert [e["id"] for e in report["examples"]["newly_failing"]] == [2, 5]
    first = report["examples"]["newly_failing"][0]
    assert first == {
        "id": 2,
        "event_id": "evt-2",
        "event_name": "order_completed",
        "was": "valid",
        "now": "invalid",
        "first_problem": first["first_problem"],
    }
    assert (first["first_problem"]["path"], first["first_problem"]["rule"]) == (
        "/price",
        "minimum",
    )
    assert report["examples"]["newly_failing"][1]["first_problem"]["rule"] == "required"
    assert report["examples"]["fixed"][0]["first_problem"] is None
    assert report["examples"]["still_valid"][0]["id"] == 4


def test_revalidate_examples_are_capped_but_counts_are_not() -> None:
    entries = [log_entry(i, {"eventName": "order_completed"}, "valid") for i in range(1, 31)]

    report = revalidate(compile_plan(STRICT_PRICE, 2), entries).as_dict()

    assert report["counts"]["newly_failing"] == 30
    assert len(report["examples"]["newly_failing"]) == 20


def test_revalidate_of_nothing_counts_zero() -> None:
    report = revalidate(compile_plan(STRICT_PRICE, 3), []).as_dict()

    assert report["judged"] == 0
    assert set(report["counts"].values()) == {0}
    assert report["examples"] == {
        "fixed": [],
        "newly_failing": [],
        "still_invalid": [],
        "still_valid": [],
    }


async def test_revalidate_stored_rows_changes_nothing_stored(pool: asyncpg.Pool) -> None:
    app_id = await new_app(pool)
    now = datetime.now(UTC)
    rows = [
        ({"eventName": "order_completed", "price": 50}, "valid"),
        ({"eventName": "order_completed", "price": 3}, "valid"),
        ({"eventName": "order_completed", "price": 12}, "invalid"),
    ]
    entries = [
        NewLogEntry(
            app_id=app_id,
            event_id=f"evt-{i}",
            event_name="order_completed",
            payload=orjson.dumps(payload).decode(),
            status=status,
            errors="[]",
            plan_version=1,
            session=None,
            received_at=now,
        )
        for i, (payload, status) in enumerate(rows)
    ]
    async with pool.acquire() as conn:
        await insert_log_entries(conn, entries)
        stored = await select_log_entries(conn, app_id)

    report = revalidate(compile_plan(STRICT_PRICE, 2), stored).as_dict()

    assert report["counts"] == {
        "fixed": 1,
        "newly_failing": 1,
        "still_invalid": 0,
        "still_valid": 1,
    }
    assert report["examples"]["newly_failing"][0]["event_id"] == "evt-1"
    async with pool.acquire() as conn:
        after = await select_log_entries(conn, app_id)
    assert [(e.event_id, e.status, e.plan_version) for e in after] == [
        ("evt-2", "invalid", 1),
        ("evt-1", "valid", 1),
        ("evt-0", "valid", 1),
    ]


# --- saving versions ----------------------------------------------------------------------


async def test_save_plan_numbers_versions_one_two_three(pool: asyncpg.Pool) -> None:
    app_id = await new_app(pool)

    saved = [await save(pool, app_id, {"events": {f"e{i}": {}}}) for i in range(1, 4)]

    assert [s.version for s in saved] == [1, 2, 3]
    assert [s.app_id for s in saved] == [app_id] * 3
    assert saved[2].document == {"events": {"e3": {}}}
    assert await current_plan_version(pool, app_id) == 3
    async with pool.acquire() as conn:
        versions = await select_plan_versions(conn, app_id)
        first = await select_plan_version(conn, app_id, 1)
        current = await select_plan_version(conn, app_id)
    assert [v.version for v in versions] == [3, 2, 1]
    assert first is not None and first.document == {"events": {"e1": {}}}
    assert current is not None and current.version == 3


async def test_save_plan_same_document_twice_still_makes_a_new_version(pool: asyncpg.Pool) -> None:
    app_id = await new_app(pool)

    first = await save(pool, app_id, ORDER_V1)
    second = await save(pool, app_id, ORDER_V1)

    assert (first.version, second.version) == (1, 2)
    assert await current_plan_version(pool, app_id) == 2


async def test_save_plan_versions_are_per_app(pool: asyncpg.Pool) -> None:
    one, two = await new_app(pool), await new_app(pool)

    await save(pool, one, ORDER_V1)
    await save(pool, one, ORDER_V1)
    saved = await save(pool, two, ORDER_V1)

    assert saved.version == 1
    assert await current_plan_version(pool, one) == 2


async def test_save_plan_concurrent_saves_get_distinct_versions(pool: asyncpg.Pool) -> None:
    app_id = await new_app(pool)

    saved = await asyncio.gather(*(save(pool, app_id, {"events": {}}) for _ in range(4)))

    assert sorted(s.version for s in saved) == [1, 2, 3, 4]
    assert await current_plan_version(pool, app_id) == 4


async def test_save_plan_refuses_invalid_plan_with_problems(pool: asyncpg.Pool) -> None:
    app_id = await order_app(pool)

    with pytest.raises(Rejected) as raised:
        await save(pool, app_id, {"events": {"e": {"type": "strin"}}, "naming": "kebab"})

    assert (raised.value.status, raised.value.code) == (400, "invalid_plan")
    assert [p["path"] for p in raised.value.details["problems"]] == ["/events/e/type", "/naming"]
    assert all(p["message"] for p in raised.value.details["problems"])
    assert "/events/e/type" in raised.value.message
    assert await current_plan_version(pool, app_id) == 1
    async with pool.acquire() as conn:
        assert len(await select_plan_versions(conn, app_id)) == 1


async def test_save_plan_refuses_unknown_app(pool: asyncpg.Pool) -> None:
    with pytest.raises(Rejected) as raised:
        await save(pool, f"missing-{uuid.uuid4().hex[:8]}", ORDER_V1)

    assert (raised.value.status, raised.value.code) == (404, "unknown_app")


@pytest.fixture
async def plan_notifications(settings: Settings) -> AsyncIterator[asyncio.Queue[str]]:
    """Payloads sent on the plans channel, heard on a connection of its own."""
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(settings.database_url)

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        received.put_nowait(payload)

    await conn.add_listener(PLANS_CHANNEL, heard)
    try:
        yield received
    finally:
        await conn.close()


async def heard_for(queue: asyncio.Queue[str], app_id: str, within: float) -> list[str]:
    """Payloads naming app_id heard within `within` seconds (others' are skipped)."""
    found: list[str] = []
    deadline = asyncio.get_running_loop().time() + within
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            payload = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        if payload == app_id:
            found.append(payload)
            break
    return found


async def test_save_plan_notifies_app_id_after_commit(
    pool: asyncpg.Pool, plan_notifications: asyncio.Queue[str]
) -> None:
    app_id = await new_app(pool)

    saved = await save(pool, app_id, ORDER_V1)

    assert await heard_for(plan_notifications, app_id, 2.0) == [app_id]
    # When the notification is heard, the new version is already visible to others.
    assert await current_plan_version(pool, app_id) == saved.version


@pytest.mark.parametrize(
    "commits", [pytest.param(True, id="committed"), pytest.param(False, id="rolled-back")]
)
async def test_save_plan_in_outer_transaction_notifies_and_saves_only_when_it_commits(
    pool: asyncpg.Pool, plan_notifications: asyncio.Queue[str], commits: bool
) -> None:
    app_id = await new_app(pool)

    async with pool.acquire() as conn:
        outer = conn.transaction()
        await outer.start()
        saved = await save_plan(conn, app_id, ORDER_V1)
        assert await heard_for(plan_notifications, app_id, 0.3) == []
        await (outer.commit() if commits else outer.rollback())

    if commits:
        assert await heard_for(plan_notifications, app_id, 2.0) == [app_id]
        assert await current_plan_version(pool, app_id) == saved.version
    else:
        assert await heard_for(plan_notifications, app_id, 0.3) == []
        assert await current_plan_version(pool, app_id) is None


async def test_save_plan_refused_sends_nothing(
    pool: asyncpg.Pool, plan_notifications: asyncio.Queue[str]
) -> None:
    app_id = await new_app(pool)

    with pytest.raises(Rejected):
        await save(pool, app_id, {"events": []})

    assert await heard_for(plan_notifications, app_id, 0.3) == []


# --- the directory: compiled plans and forgetting -------------------------------------------


@pytest.fixture
def directory(pool: asyncpg.Pool) -> AppDirectory:
    """An app directory that keeps what it read for a minute: only forget() refreshes it."""
    return AppDirectory(pool, ttl=60)


@pytest.fixture
def compile_count(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (app id, version) the directory compiles."""
    compiled: list[tuple[str, int]] = []

    def counting(saved: PlanVersion) -> Any:
        compiled.append((saved.app_id, saved.version))
        return compile_version(saved)

    monkeypatch.setattr(directory_module, "compile_version", counting)
    return compiled


async def test_directory_app_without_plan_has_no_compiled_plan(
    pool: asyncpg.Pool, directory: AppDirectory
) -> None:
    app_id = await new_app(pool)

    view = await directory.get(app_id)

    assert view is not None
    assert view.app.id == app_id
    assert view.plan is None
    assert await directory.get(f"missing-{uuid.uuid4().hex[:8]}") is None


async def test_directory_compiles_each_version_once(
    pool: asyncpg.Pool, compile_count: list[tuple[str, int]], directory: AppDirectory
) -> None:
    app_id = await order_app(pool)

    first = await directory.get(app_id)
    second = await directory.get(app_id)
    directory.forget(app_id)
    third = await directory.get(app_id)

    assert first is not None and second is not None and third is not None
    assert first.plan is not None and first.plan.version == 1
    assert second.plan is first.plan
    assert third.plan is first.plan
    assert compile_count == [(app_id, 1)]


async def test_directory_serves_cached_view_until_forget(
    pool: asyncpg.Pool, compile_count: list[tuple[str, int]], directory: AppDirectory
) -> None:
    app_id = await order_app(pool)
    before = await directory.get(app_id)

    await save(pool, app_id, STRICT_PRICE)
    cached = await directory.get(app_id)
    directory.forget(app_id)
    after = await directory.get(app_id)

    assert before is not None and cached is not None and after is not None
    assert cached is before
    assert after.plan is not None and after.plan.version == 2
    assert after.app.plan_version == 2
    assert after.plan.judge({"eventName": "order_completed", "price": 5}).status == "invalid"
    assert compile_count == [(app_id, 1), (app_id, 2)]


async def test_directory_forget_none_drops_every_app(
    pool: asyncpg.Pool, directory: AppDirectory
) -> None:
    one, two = await order_app(pool), await order_app(pool)
    await directory.get(one)
    await directory.get(two)

    await save(pool, one, STRICT_PRICE)
    await save(pool, two, STRICT_PRICE)
    directory.forget(None)
    views = [await directory.get(one), await directory.get(two)]

    assert [v.plan.version if v and v.plan else None for v in views] == [2, 2]


async def test_directory_forget_one_app_keeps_the_others(
    pool: asyncpg.Pool, directory: AppDirectory
) -> None:
    one, two = await order_app(pool), await order_app(pool)
    kept = await directory.get(two)

    await save(pool, one, STRICT_PRICE)
    await save(pool, two, STRICT_PRICE)
    directory.forget(one)
    view_one, view_two = await directory.get(one), await directory.get(two)

    assert view_one is not None and view_one.plan is not None
    assert view_one.plan.version == 2
    assert view_two is kept


async def test_directory_forget_during_a_lookup_is_not_undone(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, directory: AppDirectory
) -> None:
    """A change heard while a lookup of the old version is in flight must still win."""
    app_id = await order_app(pool)
    real_select_app = select_app
    read_old_row = asyncio.Event()
    release = asyncio.Event()
    gated = True

    async def slow_select_app(conn: Connection, wanted: str) -> App | None:
        app = await real_select_app(conn, wanted)
        if gated:
            read_old_row.set()
            await release.wait()
        return app

    monkeypatch.setattr(directory_module, "select_app", slow_select_app)
    in_flight = asyncio.create_task(directory.get(app_id))
    await asyncio.wait_for(read_old_row.wait(), 5)
    await save(pool, app_id, STRICT_PRICE)
    directory.forget(app_id)  # what the NOTIFY handler does
    release.set()
    old = await in_flight
    gated = False

    assert old is not None and old.app.plan_version == 1
    next_view = await directory.get(app_id)
    assert next_view is not None
    assert next_view.app.plan_version == 2
