"""The pytest plugin: each test its own LVD session, and its events in a failing test's report.

Registered through the `pytest11` entry point `lvd`, and off until a server is named:
`--lvd-url` / `LVD_URL` (and `--lvd-app` / `LVD_APP`, `--lvd-token` / `LVD_TOKEN`; an
option wins over its variable). Without a URL, a test that asks for the `lvd` fixture is
skipped, saying why; with a URL but no app it fails, saying what is missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

import httpx
import pytest

from .models import Event, LvdError
from .sync import LvdClient

# (option, environment variable, help): an option given wins over its variable.
OPTIONS = (
    (
        "--lvd-url",
        "LVD_URL",
        "the LVD server the app under test sends to, e.g. http://127.0.0.1:5001",
    ),
    ("--lvd-app", "LVD_APP", "the app's id on that server"),
    ("--lvd-token", "LVD_TOKEN", "an API token for the query API (lvd token create --read-only)"),
)
# The server takes session ids of 1 to 100 characters; these are at most 80 + 1 + 12.
READABLE_LENGTH = 80
HASH_LENGTH = 12
# Events a failing test's report lists at most (the newest), and how long it waits for them.
REPORTED_EVENTS = 50
REPORT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class LvdSettings:
    """Where the lvd fixtures send their queries, and the run their session ids belong to."""

    url: str | None
    app: str | None
    token: str | None
    run: str

    @classmethod
    def from_config(cls, config: pytest.Config) -> LvdSettings:
        url, app, token = (
            config.getoption(option.removeprefix("--").replace("-", "_")) or os.environ.get(var)
            for option, var, _ in OPTIONS
        )
        # Under pytest-xdist every worker shares the controller's run id, so a test's
        # session id does not depend on the worker that runs it.
        worker = getattr(config, "workerinput", None)
        run = worker["testrunuid"] if worker else uuid.uuid4().hex
        return cls(url or None, app or None, token or None, run)

    def describe(self) -> str:
        if self.url is None:
            return "lvd: off (no --lvd-url or LVD_URL): tests using the lvd fixture are skipped"
        token = ", with a token" if self.token else ""
        return f"lvd: {self.url} app {self.app or '(none: set --lvd-app or LVD_APP)'}{token}"


@dataclass(frozen=True, slots=True)
class LvdSession:
    """The session one test's fixture gave it, for the report should the test fail."""

    url: str
    app: str
    token: str | None
    session: str


SETTINGS = pytest.StashKey[LvdSettings]()
SESSION = pytest.StashKey[LvdSession]()


def session_id(nodeid: str, run: str) -> str:
    """A test's session id: its file and name, readable, then a hash of the run and node id."""
    path, _, names = nodeid.partition("::")
    readable = ".".join([PurePosixPath(path).name, *names.split("::")] if names else [path])
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-.")
    readable = readable[-READABLE_LENGTH:].lstrip("-.")
    digest = hashlib.sha256(f"{run}\0{nodeid}".encode()).hexdigest()[:HASH_LENGTH]
    return f"{readable}-{digest}" if readable else digest


def claim_session(request: pytest.FixtureRequest) -> LvdSession:
    """This test's session, remembered for its report; skips or fails when LVD is not set."""
    settings = request.config.stash[SETTINGS]
    if settings.url is None:
        pytest.skip("lvd: no server configured (pass --lvd-url or set LVD_URL)")
    if settings.app is None:
        pytest.fail(f"lvd: {settings.url} is set but no app: pass --lvd-app or set LVD_APP")
    found = LvdSession(
        settings.url, settings.app, settings.token, session_id(request.node.nodeid, settings.run)
    )
    request.node.stash[SESSION] = found
    return found


@pytest.fixture
def lvd(request: pytest.FixtureRequest) -> Iterator[LvdClient]:
    """An LvdClient in this test's own session (`lvd.session_header` puts the app in it)."""
    found = claim_session(request)
    with LvdClient(found.url, found.app, session=found.session, token=found.token) as client:
        yield client


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lvd", "Live Validation Dashboard (the lvd fixture)")
    for option, variable, text in OPTIONS:
        group.addoption(option, default=None, help=f"{text} (default: ${variable})")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS] = LvdSettings.from_config(config)
    if importlib.util.find_spec("pytest_asyncio") is not None:
        from . import alvd

        config.pluginmanager.register(alvd, "lvd_client.alvd")


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[SETTINGS].describe()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    found = item.stash.get(SESSION, None)
    if found is not None and report.failed and report.when in ("setup", "call"):
        report.sections.append((f"lvd session {found.session}", report_section(found)))
    return report


def report_section(found: LvdSession) -> str:
    """The session's events with their verdicts and errors, and a link to the live view."""
    with LvdClient(
        found.url, found.app, session=found.session, token=found.token, timeout=REPORT_TIMEOUT
    ) as client:
        link = f"live view: {client.dashboard_url}"
        try:
            events = client.events(limit=REPORTED_EVENTS + 1)
        except (httpx.HTTPError, LvdError) as exc:
            return f"{link}\nthe session's events could not be read: {exc}"
    if not events:
        return f"{link}\nno events stored in this session"
    shown = sorted(events[:REPORTED_EVENTS], key=lambda event: event.received_at)
    invalid = sum(event.status == "invalid" for event in events)
    more = " or more" if len(events) > REPORTED_EVENTS else ""
    head = f"{len(shown)}{more} events, {invalid} invalid (oldest first):"
    return "\n".join([link, head, *(_line(event) for event in shown)])


def _line(event: Event) -> str:
    return f"  {event.received_at:%H:%M:%S.%f}"[:-3] + f" {event.describe()}"
