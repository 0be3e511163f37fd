"""token= on both clients and --lvd-token in the plugin, against a live server's API tokens.

A read-scoped token lets a client query but not reset, so a refused reset shows the token
went with the query API's calls; ingest never carries it (it takes write keys), so sending
still works with a token the server does not know.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lvd_client import AsyncLvdClient, LvdClient, LvdError, new_session_id

from tests.conftest import LiveServer

from .test_pytest_plugin import LVD_VARIABLES, app_with_plan, suite  # noqa: F401 (fixture)

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

UNKNOWN_TOKEN = "lvd_" + "A" * 43


@pytest.fixture(scope="module")
def app_id(live_server: LiveServer) -> str:
    return app_with_plan(live_server.base_url, "tokens")


@pytest.fixture(scope="module")
def read_token(live_server: LiveServer, app_id: str) -> str:
    """A read-only token limited to the app (created as loopback allows, without sign-in)."""
    with httpx.Client(base_url=live_server.base_url) as http:
        created = http.post(
            "/api/tokens", json={"name": "client-tests", "scope": "read", "app_id": app_id}
        )
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


@pytest.fixture
def sent(live_server: LiveServer) -> Iterator[tuple[httpx.Client, list[httpx.Request]]]:
    """An HTTP client for LvdClient that keeps every request it makes."""
    requests: list[httpx.Request] = []
    with httpx.Client(
        base_url=live_server.base_url, event_hooks={"request": [requests.append]}
    ) as http:
        yield http, requests


def test_client_token_goes_with_queries_and_never_with_ingest(
    live_server: LiveServer,
    app_id: str,
    read_token: str,
    sent: tuple[httpx.Client, list[httpx.Request]],
) -> None:
    http, requests = sent
    lvd = LvdClient(
        live_server.base_url, app_id, session=new_session_id(), token=read_token, http=http
    )

    lvd.send({"eventName": "signup"})
    lvd.assert_seen("signup")
    assert lvd.summary()["total"] == 1
    with pytest.raises(LvdError) as refused:
        lvd.reset()

    assert (refused.value.status, refused.value.code) == (403, "insufficient_scope")
    headers = {(r.method, r.url.path): r.headers.get("authorization") for r in requests}
    assert headers.pop(("POST", f"/api/logs/{app_id}")) is None
    assert set(headers.values()) == {f"Bearer {read_token}"}
    assert len(headers) == 3  # wait, summary, reset


async def test_async_client_token_reads_and_an_unknown_one_is_refused(
    live_server: LiveServer, app_id: str, read_token: str
) -> None:
    session = new_session_id()
    async with (
        AsyncLvdClient(live_server.base_url, app_id, session=session, token=read_token) as lvd,
        AsyncLvdClient(live_server.base_url, app_id, session=session, token=UNKNOWN_TOKEN) as bad,
    ):
        await bad.send({"eventName": "signup"})  # ingest: the token is not sent
        [event] = await lvd.assert_seen("signup")
        with pytest.raises(LvdError) as unknown:
            await bad.events()
        with pytest.raises(LvdError) as read_only:
            await lvd.reset()

    assert event.session == session
    assert (unknown.value.status, unknown.value.code) == (401, "invalid_token")
    assert (read_only.value.status, read_only.value.code) == (403, "insufficient_scope")


def test_plugin_token_from_the_environment_reaches_the_server(
    suite: pytest.Pytester,
    live_server: LiveServer,
    app_id: str,
    read_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in zip(
        LVD_VARIABLES, (live_server.base_url, app_id, read_token), strict=True
    ):
        monkeypatch.setenv(variable, value)
    suite.makepyfile(
        """
import pytest
from lvd_client import LvdError

def test_read_only(lvd):
    lvd.send({"eventName": "signup"})
    lvd.assert_seen("signup")
    with pytest.raises(LvdError, match="insufficient_scope"):
        lvd.reset()
"""
    )

    result = suite.runpytest()

    result.assert_outcomes(passed=1)


def plugin_report(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    suite.makepyfile("def test_fails(lvd):\n    assert False\n")
    return suite.runpytest(*args)


def test_plugin_report_says_when_the_token_is_refused(
    suite: pytest.Pytester, live_server: LiveServer, app_id: str, read_token: str
) -> None:
    base = [f"--lvd-url={live_server.base_url}", f"--lvd-app={app_id}"]

    refused = plugin_report(suite, *base, f"--lvd-token={UNKNOWN_TOKEN}")
    allowed = plugin_report(suite, *base, f"--lvd-token={read_token}")

    refused.stdout.fnmatch_lines(["the session's events could not be read: 401 invalid_token*"])
    allowed.stdout.fnmatch_lines(["no events stored in this session"])
