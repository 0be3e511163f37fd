"""The pytest plugin (lvd_client.plugin) in suites that pytester runs against a live server."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from lvd_client.plugin import session_id

from tests.conftest import LiveServer

from .helpers import unique

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

PLAN = {
    "events": {
        "checkout": {
            "type": "object",
            "required": ["total"],
            "properties": {"total": {"type": "number"}},
        },
        "signup": {"type": "object"},
    }
}
# A user's settings: pytest-asyncio's loop scope said; lvd and web were imported before the
# inner run marked its plugin's distribution (this project's) for assertion rewriting.
INNER_INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = ignore:Module already imported:pytest.PytestAssertRewriteWarning
"""
LVD_VARIABLES = ("LVD_URL", "LVD_APP", "LVD_TOKEN")
# What an inner test prints about its fixture, one line each, read back by `printed`.
SHOW_CLIENT = """
def show(client):
    print(f"LVD url={client.base_url} app={client.app_id} token={client.token}"
          f" session={client.session} header={client.session_header}")
"""
SHOWN = re.compile(r"LVD url=(\S+) app=(\S+) token=(\S+) session=(\S+) header=(.*)$")


def app_with_plan(base_url: str, prefix: str) -> str:
    """A fresh app with PLAN (`checkout` needs a numeric total); its id."""
    with httpx.Client(base_url=base_url) as http:
        app: dict[str, Any] = http.post("/api/apps", json={"id": unique(prefix)}).json()
        assert http.put(f"/api/apps/{app['id']}/plan", json=PLAN).status_code == 200
    return str(app["id"])


@pytest.fixture
def app_id(live_server: LiveServer) -> str:
    return app_with_plan(live_server.base_url, "plugin")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    """A pytester folder, with no LVD variable inherited from whoever runs this suite."""
    for variable in LVD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    pytester.makeini(INNER_INI)
    yield pytester


def options(live_server: LiveServer, app_id: str) -> list[str]:
    return [f"--lvd-url={live_server.base_url}", f"--lvd-app={app_id}"]


def printed(result: pytest.RunResult) -> list[tuple[str, ...]]:
    return [m.groups() for line in result.outlines if (m := SHOWN.search(line))]


def test_plugin_off_without_a_url_skips_lvd_tests_saying_why(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_uses_lvd(lvd):
            raise AssertionError("never runs")

        def test_without_lvd():
            pass
        """
    )

    result = suite.runpytest("-rs")

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "lvd: off (no --lvd-url or LVD_URL)*",
            "SKIPPED*lvd: no server configured (pass --lvd-url or set LVD_URL)",
        ]
    )


def test_plugin_url_without_an_app_errors_saying_what_is_missing(
    suite: pytest.Pytester, live_server: LiveServer
) -> None:
    suite.makepyfile("def test_uses_lvd(lvd):\n    pass\n")

    result = suite.runpytest(f"--lvd-url={live_server.base_url}")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*lvd: {live_server.base_url} is set but no app*LVD_APP*"])


def test_plugin_reads_the_environment(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LVD_URL", live_server.base_url)
    monkeypatch.setenv("LVD_APP", app_id)
    monkeypatch.setenv("LVD_TOKEN", "lvd_from-env")
    suite.makepyfile(SHOW_CLIENT + "\ndef test_config(lvd):\n    show(lvd)\n")

    result = suite.runpytest("-s")

    result.assert_outcomes(passed=1)
    [(url, app, token, _, _)] = printed(result)
    assert (url, app, token) == (live_server.base_url, app_id, "lvd_from-env")
    result.stdout.fnmatch_lines([f"lvd: {live_server.base_url} app {app_id}, with a token"])


def test_plugin_options_win_over_the_environment(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LVD_URL", "http://127.0.0.1:9")  # nothing answers there
    monkeypatch.setenv("LVD_APP", "not-this-app")
    monkeypatch.setenv("LVD_TOKEN", "lvd_from-env")
    suite.makepyfile(SHOW_CLIENT + "\ndef test_config(lvd):\n    show(lvd)\n")

    result = suite.runpytest("-s", *options(live_server, app_id), "--lvd-token=lvd_from-option")

    result.assert_outcomes(passed=1)
    [(url, app, token, _, _)] = printed(result)
    assert (url, app, token) == (live_server.base_url, app_id, "lvd_from-option")


def test_plugin_gives_each_test_a_readable_session_of_its_own(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str
) -> None:
    suite.makepyfile(
        test_ids=SHOW_CLIENT
        + """
import httpx, pytest

def test_one(lvd):
    show(lvd)
    # The app under test sends with the header the fixture gives it.
    answer = httpx.post(lvd.base_url + "/api/logs/" + lvd.app_id,
                        json={"eventName": "signup"}, headers=lvd.session_header)
    assert answer.status_code == 202
    [event] = lvd.assert_seen("signup")
    assert event.session == lvd.session

@pytest.mark.parametrize("name", ["a b", pytest.param("long", id="x" * 150)])
def test_param(lvd, name):
    show(lvd)
    assert lvd.events() == []
"""
    )

    first = suite.runpytest("-s", *options(live_server, app_id))
    again = suite.runpytest("-s", *options(live_server, app_id))

    first.assert_outcomes(passed=3)
    sessions = [row[3] for row in printed(first)]
    assert [row[4] for row in printed(first)] == [f"{{'X-LVD-Session': '{s}'}}" for s in sessions]
    one, spaced, long = sessions
    assert re.fullmatch(r"test_ids\.py\.test_one-[0-9a-f]{12}", one)
    assert re.fullmatch(r"test_ids\.py\.test_param-a-b-[0-9a-f]{12}", spaced)
    assert re.fullmatch(r"x{80}-[0-9a-f]{12}", long) and len(long) <= 100
    # Another run, other sessions: what an earlier run stored is never counted.
    assert not set(sessions) & {row[3] for row in printed(again)}


def test_plugin_session_ids_differ_by_node_and_run_and_stay_in_bounds() -> None:
    nodes = ["a/test_x.py::test_y", "b/test_x.py::test_y", "test_x.py::T::test_y[é/1]"]

    ids = [session_id(node, "run-1") for node in nodes]

    assert len(set(ids)) == 3
    assert ids[2].startswith("test_x.py.T.test_y-1-")
    assert session_id(nodes[0], "run-1") == ids[0] != session_id(nodes[0], "run-2")
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,100}", i) for i in ids)


def test_plugin_failing_test_report_shows_the_sessions_events_and_a_link(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str
) -> None:
    suite.makepyfile(
        test_report="""
def test_fails(lvd):
    lvd.send({"eventName": "checkout", "total": "twelve"})
    lvd.send({"eventName": "signup"})
    lvd.expect_events(["checkout", "signup"])
    assert False, "the app misbehaved"

def test_passes(lvd):
    lvd.send({"eventName": "signup"})
    lvd.assert_seen("signup")
"""
    )

    result = suite.runpytest(*options(live_server, app_id))

    result.assert_outcomes(passed=1, failed=1)
    link = f"{live_server.base_url}/apps/{app_id}?session=test_report.py.test_fails-"
    result.stdout.fnmatch_lines(
        [
            "*- lvd session test_report.py.test_fails-* -*",
            f"live view: {link}*",
            "2 events, 1 invalid (oldest first):",
            "  *checkout [[]invalid[]] id=*",
            "      /total [[]type[]] *",
            "  *signup [[]valid[]] id=*",
        ]
    )
    assert "lvd session test_report.py.test_passes" not in result.stdout.str()


def test_plugin_expect_events_waits_for_names_in_any_or_the_given_order(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str
) -> None:
    suite.makepyfile(
        test_expect="""
import pytest

def test_any_order_and_in_order(lvd):
    for name in ("signup", "checkout", "checkout"):
        lvd.send({"eventName": name, "total": 1})
    events = lvd.expect_events(["checkout", "signup", "checkout"])
    assert [e.event_name for e in events] == ["signup", "checkout", "checkout"]
    assert len(lvd.expect_events(["signup", "checkout"], ordered=True)) == 3

def test_out_of_order_fails(lvd):
    lvd.send({"eventName": "signup"})
    lvd.send({"eventName": "checkout", "total": 1})
    with pytest.raises(AssertionError, match="'checkout', 'signup' in this order"):
        lvd.expect_events(["checkout", "signup"], ordered=True)

def test_missing_fails_naming_it(lvd):
    lvd.send({"eventName": "signup"})
    with pytest.raises(AssertionError, match="expected 1 'checkout' event within 1 s"):
        lvd.expect_events(["signup", "checkout"], timeout=1)
"""
    )

    result = suite.runpytest(*options(live_server, app_id))

    result.assert_outcomes(passed=3)


def test_plugin_async_twin_fixture_shares_the_session(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str
) -> None:
    suite.makepyfile(
        test_async="""
import pytest

@pytest.mark.asyncio
async def test_alvd(alvd, lvd):
    assert alvd.session == lvd.session
    await alvd.send({"eventName": "signup"})
    [event] = await alvd.assert_seen("signup")
    assert event.session == alvd.session
"""
    )

    result = suite.runpytest(*options(live_server, app_id))

    result.assert_outcomes(passed=1)


XDIST_SUITE = """
import os

import httpx
import pytest

@pytest.mark.parametrize("who", ["first", "second"])
def test_same_names(lvd, who):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    lvd.send([{{"eventName": name, "who": who, "worker": worker}}
              for name in ("checkout", "signup")])
    # Both tests' events are in the app: the other worker's too, while this one runs.
    waited = httpx.get("{url}/api/logs/{app}/wait",
                       params={{"count": 4, "event_name": "checkout,signup", "timeout": 30}},
                       timeout=40).json()
    assert waited["reached"]
    events = lvd.expect_events(["checkout", "signup"])
    assert {{(e.payload["who"], e.payload["worker"]) for e in events}} == {{(who, worker)}}
    assert len(lvd.events()) == 2
"""


def test_plugin_xdist_workers_never_see_each_others_events(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str
) -> None:
    suite.makepyfile(test_xdist=XDIST_SUITE.format(url=live_server.base_url, app=app_id))

    result = suite.runpytest("-n", "2", *options(live_server, app_id))

    result.assert_outcomes(passed=2)
    with httpx.Client(base_url=live_server.base_url) as http:
        stored = http.get(f"/api/logs/{app_id}").json()["events"]
    by_session: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for event in stored:
        by_session[event["session"]].add((event["payload"]["who"], event["payload"]["worker"]))
    assert len(stored) == 4
    assert sorted(len(pairs) for pairs in by_session.values()) == [1, 1]
    assert {worker for pairs in by_session.values() for _, worker in pairs} == {"gw0", "gw1"}
