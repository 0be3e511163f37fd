"""A scenario run read and watched: its scenario, its session's events, re-judged as they land."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from web.context import Services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.exports import ScenarioRunLine
from web.core.filters import MAX_SESSION, EventFilter
from web.core.queries.base import Connection, LogEntry
from web.core.queries.scenarios import (
    StoredScenario,
    select_scenario,
    select_scenarios,
    select_session_events,
)
from web.core.scenario_reports import summary_line
from web.core.scenarios import NAME_PATTERN, Run, Scenario, compile_scenario, judge_run
from web.hub import Subscription

# Events of one session a run reads at most; a report says when a session had more.
MAX_RUN_EVENTS = 5000


def checked_session(raw: str) -> str:
    """A session id from a URL; 400 invalid_session when it could name no session."""
    if not 0 < len(raw) <= MAX_SESSION or "\x00" in raw:
        raise Rejected(400, "invalid_session", f"a session id is 1 to {MAX_SESSION} characters")
    return raw


async def require_scenario(conn: Connection, app_id: str, name: str) -> StoredScenario:
    """The app's scenario of this name; 404 unknown_app or unknown_scenario."""
    await require_app(conn, app_id)
    found = await select_scenario(conn, app_id, name) if NAME_PATTERN.fullmatch(name) else None
    if found is None:
        raise Rejected(404, "unknown_scenario", f"app {app_id!r} has no scenario {name!r}")
    return found


def compiled(stored: StoredScenario) -> Scenario:
    # Checked when it was saved, so it compiles.
    return compile_scenario(stored.document, stored.name)


async def read_run(conn: Connection, stored: StoredScenario, session: str) -> Run:
    """The run as the stored events make it now."""
    events = await select_session_events(conn, stored.app_id, session, MAX_RUN_EVENTS)
    return judge_run(compiled(stored), session, events, truncated=len(events) >= MAX_RUN_EVENTS)


@dataclass
class RunWatch:
    """A run kept up to date from the hub: `changed()` answers each time new events of the
    session are stored, with the run judged again."""

    svc: Services
    stored: StoredScenario
    session: str
    subscription: Subscription
    scenario: Scenario = field(init=False)
    _events: dict[int, LogEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scenario = compiled(self.stored)

    async def current(self) -> Run:
        """Read the session's stored events (again) and judge them."""
        self.subscription.overflowed.clear()
        async with self.svc.pool.acquire() as conn:
            found = await select_session_events(
                conn, self.stored.app_id, self.session, MAX_RUN_EVENTS
            )
        self._events = {entry.id: entry for entry in found}
        return self._judge()

    async def changed(self, within: float) -> Run | None:
        """The run once a new event of the session is stored; None after `within` seconds
        without one."""
        queue = self.subscription.queue
        if self.subscription.overflowed.is_set():
            # The hub dropped rows for us; what it dropped is in the database.
            return await self.current()
        try:
            arrived = [await asyncio.wait_for(queue.get(), within)]
        except TimeoutError:
            return None
        while not queue.empty():
            arrived.append(queue.get_nowait())
        # Past the bound the run is judged on the first events only (the report says so).
        if len(self._events) < MAX_RUN_EVENTS:
            self._events.update((entry.id, entry) for entry in arrived)
        return self._judge()

    def _judge(self) -> Run:
        ordered = sorted(self._events.values(), key=lambda e: (e.received_at, e.id))
        kept = ordered[:MAX_RUN_EVENTS]
        return judge_run(
            self.scenario, self.session, kept, truncated=len(ordered) >= MAX_RUN_EVENTS
        )


@contextlib.asynccontextmanager
async def watch_run(svc: Services, stored: StoredScenario, session: str) -> AsyncIterator[RunWatch]:
    """Subscribe first, then read: an event stored in between is in both, and counted once."""
    async with svc.hub.subscribe(stored.app_id, EventFilter(session=session)) as subscription:
        yield RunWatch(svc, stored, session, subscription)


async def session_runs(conn: Connection, app_id: str, session: str) -> list[ScenarioRunLine]:
    """Every scenario of the app judged against the session's events, by name."""
    scenarios = await select_scenarios(conn, app_id)
    if not scenarios:
        return []
    events = await select_session_events(conn, app_id, session, MAX_RUN_EVENTS)
    truncated = len(events) >= MAX_RUN_EVENTS
    lines = []
    for stored in scenarios:
        run = judge_run(compiled(stored), session, events, truncated=truncated)
        lines.append(
            ScenarioRunLine(
                stored.name, run.verdict, run.passed_steps, len(run.steps), summary_line(run)
            )
        )
    return lines
