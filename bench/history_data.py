"""The history benchmark's database: N generated events over 30 days, built once and kept.

Shaped like the issue-18 measurements: 5/6 of the events for one app, the rest over four
others; 20 % invalid with errors the validation engine wrote; 17 event names, one of them
rare (0.01 %); 60 test sessions of two hours each (about 3 % of the events); ~700-byte
payloads; received_at spread evenly over the 30 days before the build, ids rising with it.
Rows are made by PostgreSQL itself (from generate_series, 100 000 a statement) and stored
by the worker's own insert statement, a partition a day as the worker opens them, with the
indexes no constraint needs dropped while the table fills and built again afterwards from
their own definitions: the schema, and whatever the insert keeps up to date, are what the
product makes. Event ids begin with their time in milliseconds (as UUIDv7s do), and
created_at is the time of the build.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from web.core.apps import add_app
from web.core.db import drop_database, init_connection, migration_files, prepare_database
from web.core.plans import save_plan
from web.core.queries.apps import update_app_retention_days
from web.core.queries.events import insert_log_entries
from web.core.queries.partitions import select_live_partitions, set_autovacuum
from web.core.validation import validate
from web.core.validation.plan import compile_plan

MAIN_APP = "shop"
OTHER_APPS = ("shop-ios", "shop-android", "newsletter", "support-widget")
DAYS = 30
# Longer than the history, so that the worker's purge (7 days by default) keeps all of it.
RETENTION_DAYS = 90
CHUNK_ROWS = 100_000
# Raised whenever the rows made change: a history made the old way is then made again.
# 4: the newest partition is left unvacuumed, as the worker leaves the one being written.
GENERATION = 4
SESSIONS = 60
# Event names and how many of every million events carry each: skewed, and one rare.
NAMES = (
    ("page_viewed", 280_000),
    ("screen_viewed", 150_000),
    ("product_viewed", 120_000),
    ("product_list_viewed", 90_000),
    ("search_performed", 70_000),
    ("product_added", 60_000),
    ("cart_viewed", 50_000),
    ("checkout_started", 40_000),
    ("button_clicked", 35_000),
    ("signed_in", 30_000),
    ("checkout_step_completed", 25_000),
    ("payment_info_entered", 18_000),
    ("order_completed", 15_000),
    ("product_removed", 10_000),
    ("coupon_applied", 5_000),
    ("signed_up", 1_900),
    ("refund_requested", 100),
)
RARE_NAME = NAMES[-1][0]
INVALID_PERCENT = 20
# The main app's sessions: qa-run-01 .. qa-run-60, one every 12 hours, each the first two
# hours of its slot, carrying this share of the main app's events meanwhile.
SESSION_PERCENT = 18
SESSION_HOURS = 2

PLAN: dict[str, Any] = {
    "allow_unplanned": True,
    "common": {
        "type": "object",
        "required": ["userId", "properties"],
        "properties": {
            "userId": {"type": "string", "pattern": "^u_[0-9]{6}$"},
            "properties": {
                "type": "object",
                "required": ["currency"],
                "properties": {
                    "price": {"type": "number", "minimum": 0},
                    "currency": {"enum": ["EUR", "GBP", "USD"]},
                    "category": {"enum": ["shoes", "shirts", "bags", "accessories"]},
                    "quantity": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
    "events": {name: {"type": "object"} for name, _ in NAMES},
}


def _price_as_text(event: dict[str, Any]) -> None:
    event["properties"]["price"] = str(event["properties"]["price"])


def _no_currency(event: dict[str, Any]) -> None:
    del event["properties"]["currency"]


def _capital_category(event: dict[str, Any]) -> None:
    event["properties"]["category"] = event["properties"]["category"].title()


def _no_quantity(event: dict[str, Any]) -> None:
    event["properties"]["quantity"] = 0


def _numeric_user(event: dict[str, Any]) -> None:
    event["userId"] = int(event["userId"][2:])


def _local_timestamp(event: dict[str, Any]) -> None:
    event["timestamp"] = "12/10/2025 15:45"


def _two_faults(event: dict[str, Any]) -> None:
    _no_currency(event)
    _price_as_text(event)


# How invalid events went wrong, and how many of every hundred invalid ones did so.
FAULTS = (
    (_price_as_text, 30),
    (_no_currency, 20),
    (_capital_category, 15),
    (_no_quantity, 12),
    (_numeric_user, 10),
    (_local_timestamp, 8),
    (_two_faults, 5),
)

# Event i (1..N) of the history, drawn from hashes of i: the same N makes the same rows (at
# the times of its build). $1..$2 are the chunk's i; received_at rises with i, so the ids
# (given in insert order) rise with time. The payload is about 700 bytes of JSON as an SDK
# sends it, with a user id u_100000..u_999999 (so `u_1234567` is in no payload). The other
# values are _arguments'.
_ROWS = """
    WITH draws AS (
        SELECT i,
               $3::timestamptz + make_interval(secs => $4::float8 * (i - 1)) AS at,
               (i - 1)::float8 / $5::bigint * $12::int AS slot,
               abs(hashint8extended(i, 1)) AS h1,
               abs(hashint8extended(i, 2)) AS h2,
               abs(hashint8extended(i, 3)) AS h3,
               abs(hashint8extended(i, 4)) AS h4
        FROM generate_series($1::bigint, $2::bigint) AS i
    ), events AS (
        SELECT CASE WHEN h1 % 6 < 5 THEN $6::text
                    ELSE ($7::text[])[1 + h1 / 6 % cardinality($7::text[])] END AS app_id,
               overlay(md5(i::text) PLACING lpad(to_hex((extract(epoch FROM at) * 1000)::bigint),
                                                 12, '0') FROM 1 FOR 12)::uuid::text AS event_id,
               ($8::text[])[width_bucket(h2 % 1000000, $9::int[])] AS event_name,
               h3 % 100 < $13::int AS invalid,
               $10::jsonb -> (width_bucket(h3 / 100 % 100, $11::int[]) - 1) AS errors,
               CASE WHEN slot - floor(slot) < $15::float8 AND h4 % 100 < $14::int
                    THEN 'qa-run-' || lpad((floor(slot) + 1)::text, 2, '0') END AS session,
               at, h1, h2, h3, h4
        FROM draws
    )
    SELECT app_id, event_id, event_name,
           jsonb_build_object(
               'event_id', event_id,
               'eventName', event_name,
               'timestamp', to_char((at - make_interval(secs => h4 % 1500 / 1000.0))
                                    AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'userId', 'u_' || (100000 + h1 % 900000),
               'anonymousId', md5(event_id)::uuid,
               'context', jsonb_build_object(
                   'app', jsonb_build_object('name', 'Shop', 'version', '4.' || (h2 % 7) || '.2',
                                             'build', (4000 + h2 % 7 * 10)::text),
                   'device', (ARRAY[
                       '{"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"}',
                       '{"manufacturer": "Google", "model": "Pixel 8", "type": "android"}',
                       '{"manufacturer": "Samsung", "model": "SM-S911B", "type": "android"}'
                   ]::jsonb[])[1 + h3 % 3],
                   'os', jsonb_build_object('name', 'iOS', 'version', '17.' || (h3 % 5) || '.1'),
                   'locale', (ARRAY['en-GB', 'de-DE', 'fr-FR', 'nl-NL'])[1 + h4 % 4],
                   'page', jsonb_build_object('path', '/products/' || (h2 % 5000),
                                              'referrer', 'https://www.google.com/',
                                              'title', 'Trail runner ' || (h2 % 5000))),
               'properties', jsonb_build_object(
                   'product_id', 'p_' || (h2 % 5000),
                   'category', (ARRAY['shoes', 'shirts', 'bags', 'accessories'])[1 + h2 % 4],
                   'price', round((h2 % 20000) / 100.0 + 4.99, 2),
                   'currency', 'EUR',
                   'quantity', 1 + h4 % 3,
                   'cart', jsonb_build_object('items', 1 + h1 % 6,
                                              'value', round((h1 % 50000) / 100.0, 2)),
                   'experiment', jsonb_build_object('id', 'exp_checkout_v2',
                                                    'variant', (ARRAY['A', 'B'])[1 + h4 % 2])))
               ::text AS payload,
           CASE WHEN invalid THEN 'invalid' ELSE 'valid' END AS status,
           CASE WHEN invalid THEN errors ELSE '[]'::jsonb END::text AS errors,
           CASE WHEN app_id = $6::text THEN 1 END AS plan_version,
           CASE WHEN app_id = $6::text THEN session END AS session,
           at AS received_at
    FROM events
"""
# The rows as the worker sends them (migration 0007's new_log_entry, the fields in _ROWS's
# order), handed to its own insert statement (_store_function). Only constant SQL is
# interpolated; the values are $n parameters.
_STORE = f"""
    WITH history AS ({_ROWS})
    SELECT pg_temp.store_history(ARRAY(SELECT ROW(history.*)::new_log_entry FROM history))
"""  # noqa: S608


@dataclass(frozen=True)
class History:
    """What was built: the generated events, their span, and how long the build took."""

    events: int
    start: datetime
    end: datetime
    build_seconds: float
    database_bytes: int
    generation: int = GENERATION

    def as_json(self) -> str:
        return orjson.dumps(
            {
                "generation": self.generation,
                "events": self.events,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "build_seconds": self.build_seconds,
                "database_bytes": self.database_bytes,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> History:
        found = orjson.loads(text)
        return cls(
            found["events"],
            datetime.fromisoformat(found["start"]),
            datetime.fromisoformat(found["end"]),
            found["build_seconds"],
            found["database_bytes"],
            found.get("generation", 1),
        )


def _starts(weights: tuple[int, ...]) -> list[int]:
    """Where each weight's range begins on a line of sum(weights): width_bucket's thresholds."""
    starts, total = [], 0
    for weight in weights:
        starts.append(total)
        total += weight
    return starts


def _arguments(
    first: int, last: int, events: int, start: datetime, errors: list[list[Any]]
) -> list[Any]:
    """The values of _ROWS's $1..$15 for events first..last of the history."""
    step = DAYS * 86400 / events
    other = list(OTHER_APPS)
    names = [name for name, _ in NAMES]
    name_starts = _starts(tuple(share for _, share in NAMES))
    error_starts = _starts(tuple(share for _, share in FAULTS))
    slot_hours = DAYS * 24 / SESSIONS
    return [
        *(first, last, start, step, events, MAIN_APP, other, names, name_starts),
        *(errors, error_starts, SESSIONS, INVALID_PERCENT, SESSION_PERCENT),
        SESSION_HOURS / slot_hours,
    ]


async def _fault_errors(conn: asyncpg.Connection, start: datetime) -> list[list[Any]]:
    """Each fault's errors as the worker stores them: an event made as the history makes
    them, broken that way, judged against the main app's plan."""
    row = await conn.fetchrow(_ROWS, *_arguments(1, 1, 6, start, [[]]))
    assert row is not None
    event = orjson.loads(row["payload"])
    plan = compile_plan(PLAN, 1)
    assert validate(event, plan).status == "valid", validate(event, plan).issues
    found = []
    for fault, _ in FAULTS:
        broken = copy.deepcopy(event)
        fault(broken)
        verdict = validate(broken, plan)
        assert verdict.status == "invalid", fault.__name__
        found.append(verdict.issues_as_dicts())
    return found


async def _add_apps(conn: asyncpg.Connection) -> None:
    """The apps, each keeping its events longer than the history, and the main app's plan."""
    for app_id in (MAIN_APP, *OTHER_APPS):
        await add_app(conn, app_id, app_id.replace("-", " ").title())
        await update_app_retention_days(conn, app_id, RETENTION_DAYS)
    saved = await save_plan(conn, MAIN_APP, PLAN)
    assert saved.version == 1  # the version _ROWS gives the main app's events


# The indexes of log_entries that no constraint owns (the insert's ON CONFLICT needs the
# unique one), as the statements that drop them and the ones that make them again.
_INDEXES = """
    SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_statement,
           -- The definition of a partitioned index says ON ONLY (this table alone, no
           -- partition's index built): built again, it is built for every partition.
           replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS create_statement
    FROM pg_index i
    WHERE i.indrelid = 'log_entries'::regclass
      AND NOT EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = i.indexrelid)
"""


class _Recorder:
    """Stands in for a connection to learn the statements a query function sends."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.statements.append(query)
        return []

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.statements.append(query)

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.statements.append(query)

    async def execute(self, query: str, *args: Any) -> str:
        self.statements.append(query)
        return ""

    def transaction(self) -> Any:
        raise NotImplementedError("the insert runs as one statement")


async def _store_function(conn: asyncpg.Connection) -> None:
    """pg_temp.store_history(new_log_entry[]): the worker's own insert statement, so that
    whatever it keeps as events are stored (the rollups) is kept for the history too."""
    recorder = _Recorder()
    await insert_log_entries(recorder, [])
    (statement,) = recorder.statements
    await conn.execute(
        "CREATE FUNCTION pg_temp.store_history(new_log_entry[]) RETURNS void"
        f" LANGUAGE sql AS $store$ {statement} $store$"
    )


async def _fill(conn: asyncpg.Connection, events: int, start: datetime) -> None:
    """Store the history in chunks, with the indexes dropped meanwhile, then vacuum it and
    build them again: a sort per index instead of 20 million random inserts into each."""
    errors = await _fault_errors(conn, start)
    await _store_function(conn)
    indexes = await conn.fetch(_INDEXES)
    for index in indexes:
        await conn.execute(index["drop_statement"])
    began = time.monotonic()
    # A partition a day, as the worker's daily job opens them (workers/partitions.py).
    await conn.execute("UPDATE log_entry_partitions SET opened_at = $1", start)
    for day in range(DAYS):
        if day:
            await conn.execute("SELECT open_log_entries_partition($1)", start + timedelta(days=day))
        day_last = (day + 1) * events // DAYS
        for first in range(day * events // DAYS + 1, day_last + 1, CHUNK_ROWS):
            last = min(first + CHUNK_ROWS - 1, day_last)
            await conn.execute(_STORE, *_arguments(first, last, events, start, errors))
            if last // 1_000_000 > (first - 1) // 1_000_000 or last == events:
                rate = last / (time.monotonic() - began)
                print(f"  {last:,} of {events:,} events stored ({rate:,.0f}/s)", flush=True)
    # With autovacuum off (as here), nothing else would set the visibility map and the
    # hint bits, and the first queries to read each page would write it. The newest
    # partition is left as the worker leaves the one being written (open_partition_if_due):
    # unvacuumed, autovacuum off for it, analysed below.
    *closed, newest = await select_live_partitions(conn)
    if closed:
        await conn.execute(f"VACUUM {', '.join(p.table for p in closed)}")
    await set_autovacuum(conn, newest, enabled=False)
    print(f"  vacuumed at {time.monotonic() - began:.0f} s", flush=True)
    await conn.execute("SET maintenance_work_mem = '1GB'")
    for index in indexes:
        await conn.execute(index["create_statement"])
        print(f"  {index['create_statement']} at {time.monotonic() - began:.0f} s", flush=True)
    await conn.execute("ANALYZE")


async def build(database_url: str, events: int) -> History:
    """A new database at the URL holding the history; the time it took and its size."""
    began = time.monotonic()
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=DAYS)
    await drop_database(database_url)
    await prepare_database(database_url)
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    try:
        await _add_apps(conn)
        await _fill(conn, events, start)
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        history = History(events, start, end, round(time.monotonic() - began, 1), size)
        # Written last: a database without it is a build that did not finish.
        statement = await conn.fetchval(
            "SELECT format('COMMENT ON DATABASE %I IS %L', current_database(), $1::text)",
            history.as_json(),
        )
        await conn.execute(statement)
    finally:
        await conn.close()
    return history


async def connect_if_exists(database_url: str) -> asyncpg.Connection | None:
    """A connection to the URL's database, or None when there is no such database."""
    try:
        return await asyncpg.connect(database_url)
    except asyncpg.InvalidCatalogNameError:
        return None


async def cached(database_url: str, events: int) -> History | None:
    """The history already at the URL if it has `events` events, made as this module makes
    them, and the current schema."""
    conn = await connect_if_exists(database_url)
    if conn is None:
        return None
    try:
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        )
        if not comment or not comment.startswith("{"):
            return None
        history = History.from_json(comment)
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        current = (events, GENERATION, migration_files()[-1][0])
        if (history.events, history.generation, version) != current:
            return None
        stored = await conn.fetchval("SELECT count(*) FROM log_entries")
        return history if stored == events else None
    finally:
        await conn.close()
