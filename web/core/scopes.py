"""Which API token scope each route needs: one table of method and route to scope.

Route modules stay unaware of tokens: web/auth.py looks the matched route up here. A route
absent from the table does not take tokens at all (the dashboard's pages and forms want a
person signed in). tests/web/test_tokens.py checks that every /api/ route is listed.
"""

from __future__ import annotations

READ = "read"
WRITE = "write"
ADMIN = "admin"
# In order: each scope grants everything the ones before it grant.
SCOPES = (READ, WRITE, ADMIN)
# What a new token gets when its maker names no scope (API, page and `lvd token create`).
DEFAULT_SCOPE = WRITE
# The view arguments that name the app a request is about: an app-limited token may reach
# only routes that name its own app. `app` is Snowplow's alias (the app's id or write key).
APP_ARGUMENTS = ("app_id", "app")

_MICRO_PREFIXES = ("", "/snowplow/<app>")

ROUTE_SCOPES: dict[tuple[str, str], str] = {
    # The query API and what reads stored events.
    ("GET", "/api/logs/<app_id>"): READ,
    ("GET", "/api/logs/<app_id>/summary"): READ,
    ("GET", "/api/logs/<app_id>/wait"): READ,
    ("DELETE", "/api/logs/<app_id>"): WRITE,
    ("GET", "/apps/<app_id>/events.csv"): READ,
    ("GET", "/apps/<app_id>/events.ndjson"): READ,
    ("GET", "/apps/<app_id>/coverage.csv"): READ,
    ("GET", "/apps/<app_id>/coverage.md"): READ,
    ("GET", "/apps/<app_id>/parity.md"): READ,
    ("GET", "/apps/<app_id>/parity.csv"): READ,
    ("GET", "/api/apps/<app_id>/parity"): READ,
    # Apps.
    ("GET", "/api/apps"): READ,
    ("GET", "/api/apps/<app_id>"): READ,
    ("POST", "/api/apps"): WRITE,
    # Tracking plans.
    ("GET", "/api/apps/<app_id>/plan"): READ,
    ("GET", "/api/apps/<app_id>/plan/versions"): READ,
    ("GET", "/api/apps/<app_id>/plan/versions/<int:version>"): READ,
    ("GET", "/api/apps/<app_id>/plan/diff"): READ,
    ("GET", "/api/apps/<app_id>/plan/draft"): READ,
    ("POST", "/api/apps/<app_id>/plan/impact"): READ,
    ("GET", "/api/apps/<app_id>/plan/stats"): READ,
    ("PUT", "/api/apps/<app_id>/plan"): WRITE,
    ("POST", "/api/apps/<app_id>/plan/check"): WRITE,
    ("POST", "/api/apps/<app_id>/revalidate"): WRITE,
    # Scenarios (web/scenarios_api.py) and their runs' Markdown reports.
    ("GET", "/api/apps/<app_id>/scenarios"): READ,
    ("GET", "/api/apps/<app_id>/scenarios/<name>"): READ,
    ("PUT", "/api/apps/<app_id>/scenarios/<name>"): WRITE,
    ("DELETE", "/api/apps/<app_id>/scenarios/<name>"): WRITE,
    ("GET", "/api/apps/<app_id>/scenarios/<name>/runs/<session>"): READ,
    ("GET", "/apps/<app_id>/scenarios/<name>/runs/<session>.md"): READ,
    # Alerts and retention.
    ("GET", "/api/apps/<app_id>/alerts"): READ,
    ("PUT", "/api/apps/<app_id>/alerts"): WRITE,
    ("GET", "/api/apps/<app_id>/retention"): READ,
    ("PUT", "/api/apps/<app_id>/retention"): WRITE,
    ("GET", "/api/apps/<app_id>/hygiene"): READ,
    ("PUT", "/api/apps/<app_id>/hygiene"): WRITE,
    # The pipeline.
    ("GET", "/api/dead-letters"): READ,
    ("POST", "/api/dead-letters/retry"): WRITE,
    ("GET", "/api/status"): READ,
    ("GET", "/metrics"): READ,
    # API tokens themselves.
    ("GET", "/api/tokens"): ADMIN,
    ("POST", "/api/tokens"): ADMIN,
    ("DELETE", "/api/tokens/<int:token_id>"): ADMIN,
    # Snowplow Micro's API: POST carries a filter, so only reset writes.
    **{
        (method, f"{prefix}/micro/{name}"): READ
        for prefix in _MICRO_PREFIXES
        for name in ("all", "good", "bad")
        for method in ("GET", "POST")
    },
    **{
        (method, f"{prefix}/micro/reset"): WRITE
        for prefix in _MICRO_PREFIXES
        for method in ("GET", "POST")
    },
}


def required_scope(method: str, rule: str) -> str | None:
    """The scope a token needs for this method on this route; None when tokens do not
    open it. HEAD and OPTIONS ask what GET asks."""
    looked_up = "GET" if method in ("HEAD", "OPTIONS") else method
    return ROUTE_SCOPES.get((looked_up, rule))


def grants(held: str, needed: str) -> bool:
    """Whether a token of scope `held` may do what needs `needed`."""
    return SCOPES.index(held) >= SCOPES.index(needed)
