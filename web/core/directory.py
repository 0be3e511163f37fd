"""An in-process cache of apps and their compiled plans, so ingest rarely touches the database."""

from __future__ import annotations

import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from web.core.db import CONNECTION_ERRORS
from web.core.errors import Rejected
from web.core.plans import compile_version
from web.core.queries.apps import select_app, select_app_by_write_key
from web.core.queries.base import App, Connection
from web.core.queries.plans import select_plan_version
from web.core.validation.plan import CompiledPlan

# Seconds a looked-up app is trusted without a change notification; unknown ids are never
# cached, so a new app works at once. Plan changes arrive by NOTIFY well before this.
APP_CACHE_SECONDS = 5.0
log = logging.getLogger(__name__)

COMPILED_PLANS_KEPT = 256
# Write keys remembered for SDK calls that name no app id; only keys of real apps are kept.
KEYS_KEPT = 10_000
# Longer than any app id or write key: looked up, it is simply not found.
MAX_NAME_LENGTH = 200
# How old a cached app may be when the database is unreachable and it is served anyway.
STALE_LIMIT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class AppView:
    app: App
    plan: CompiledPlan | None


class AppDirectory:
    def __init__(self, pool: asyncpg.Pool, ttl: float = APP_CACHE_SECONDS) -> None:
        self._pool = pool
        self._ttl = ttl
        self._apps: dict[str, tuple[float, AppView]] = {}
        # Write key -> app id, for the SDKs that send only a key. The view itself is always
        # read through get(), so the key map needs no expiry of its own.
        self._keys: OrderedDict[str, str] = OrderedDict()
        # Bumped by every forget(): a lookup that started before a change must not cache
        # what it read, or it would undo the forget.
        self._epoch = 0
        # Plan versions never change once saved, so a compiled one is good forever. The key
        # holds the app's creation time: a deleted and re-created app starts at version 1 again.
        self._plans: OrderedDict[tuple[str, datetime, int], CompiledPlan] = OrderedDict()

    async def get(self, app_id: str) -> AppView | None:
        if not _storable(app_id):
            return None
        cached = self._apps.get(app_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        epoch = self._epoch
        try:
            async with self._pool.acquire() as conn:
                app = await select_app(conn, app_id)
                if app is None:
                    self._apps.pop(app_id, None)
                    return None
                view = AppView(app, await self._plan(conn, app))
        except CONNECTION_ERRORS as exc:
            # Ingest must keep accepting while PostgreSQL is away (events wait in Redis): a
            # recently known app is served as it was; only an unknown one cannot be.
            if cached is not None and now - cached[0] < STALE_LIMIT_SECONDS:
                log.warning("Database unavailable (%r); using app %s as cached", exc, app_id)
                return cached[1]
            raise _database_unavailable() from exc
        if epoch == self._epoch:
            self._apps[app_id] = (now, view)
        return view

    async def get_by_id_or_key(self, alias: str) -> AppView | None:
        """The app whose id, else whose write key, is `alias` (Snowplow's aid or path).

        What the cache already knows it as is asked first, so that a known app is still
        found, by either name, while the database is away.
        """
        if alias in self._keys:
            return await self.get_by_key(alias)
        view = await self.get(alias)
        return view if view is not None else await self.get_by_key(alias)

    async def get_by_key(self, write_key: str) -> AppView | None:
        """The app a write key belongs to, through the same cache (and outage rule) as get()."""
        if not _storable(write_key):
            return None
        app_id = self._keys.get(write_key)
        if app_id is not None:
            view = await self.get(app_id)
            # Constant-time: the key map must not turn into a timing oracle for keys.
            if view is not None and hmac.compare_digest(view.app.write_key, write_key):
                # Set, not moved: another request may have dropped the entry meanwhile.
                self._keys[write_key] = app_id
                return view
            self._keys.pop(write_key, None)
        try:
            async with self._pool.acquire() as conn:
                app = await select_app_by_write_key(conn, write_key)
        except CONNECTION_ERRORS as exc:
            raise _database_unavailable() from exc
        if app is None:
            return None
        self._keys[write_key] = app.id
        if len(self._keys) > KEYS_KEPT:
            self._keys.popitem(last=False)
        return await self.get(app.id)

    async def _plan(self, conn: Connection, app: App) -> CompiledPlan | None:
        if app.plan_version is None:
            return None
        key = (app.id, app.created_at, app.plan_version)
        plan = self._plans.get(key)
        if plan is None:
            saved = await select_plan_version(conn, app.id, app.plan_version)
            if saved is None:
                return None
            plan = self._plans[key] = compile_version(saved)
            if len(self._plans) > COMPILED_PLANS_KEPT:
                self._plans.popitem(last=False)
        self._plans.move_to_end(key)
        return plan

    def forget(self, app_id: str | None) -> None:
        """Drop one app's cached view, or every app's when app_id is None."""
        self._epoch += 1
        if app_id is None:
            self._apps.clear()
        else:
            self._apps.pop(app_id, None)


def _storable(name: str) -> bool:
    """Whether a name could be an app's id or key at all: PostgreSQL text cannot hold U+0000
    (asking for it raises, not "not found"), and no id or key is this long."""
    return "\x00" not in name and len(name) <= MAX_NAME_LENGTH


def _database_unavailable() -> Rejected:
    return Rejected(
        503,
        "database_unavailable",
        "the database is not answering; retry shortly",
        headers={"Retry-After": "2"},
    )
