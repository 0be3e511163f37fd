"""The gate every ingest request passes: the app it names, its write key, its rate limit."""

from __future__ import annotations

import hmac
import math

from web.core.directory import AppDirectory, AppView
from web.core.errors import Rejected
from web.core.ingest.wire import Delivery, basic_user
from web.core.queries.base import App
from web.core.ratelimit import RateLimiter


async def find_app(apps: AppDirectory, delivery: Delivery) -> AppView:
    """The app a delivery belongs to: by the id in its path, an alias, or its write key.

    Every way goes through the cached directory, so a known app keeps receiving while
    PostgreSQL is away.
    """
    if delivery.app_id is not None:
        view = await apps.get(delivery.app_id)
        if view is None:
            raise Rejected(
                404, "unknown_app", f"no app with id {delivery.app_id!r}: create it first"
            )
        return view
    if delivery.app_alias is not None:
        # An alias is an app id or a write key; naming the key counts as presenting it.
        view = await apps.get_by_id_or_key(delivery.app_alias)
        if view is not None and view.app.id != delivery.app_alias:
            delivery.write_key = delivery.write_key or delivery.app_alias
        if view is None:
            raise Rejected(
                404,
                "unknown_app",
                f"no app has the id or write key {delivery.app_alias!r}: create it first",
            )
        return view
    if delivery.write_key is None:
        raise Rejected(
            401,
            "write_key_required",
            "send the app's write key (HTTP Basic user, or the key field of the body)",
        )
    view = await apps.get_by_key(delivery.write_key)
    if view is None:
        raise Rejected(401, "invalid_write_key", "no app has that write key")
    return view


def admit(
    app: App,
    delivery: Delivery,
    limiter: RateLimiter,
    *,
    keys_required: bool,
    rate_limit: int,
) -> None:
    """Refuse a wrong or missing write key, then events over the app's rate limit."""
    presented = delivery.write_key or basic_user(delivery.authorization)
    check_write_key(app, presented, required=keys_required)
    wait = limiter.take(app.id, len(delivery.events))
    if wait is not None:
        retry_after = "60" if wait == float("inf") else str(max(1, math.ceil(wait)))
        raise Rejected(
            429,
            "rate_limited",
            f"app {app.id!r} is sending more than {rate_limit} events per second",
            headers={"Retry-After": retry_after},
        )


def check_write_key(app: App, presented: str | None, *, required: bool = False) -> None:
    """Refuse a wrong key always, and a missing one when the app or the server requires it."""
    if presented is None:
        if app.require_write_key or required:
            raise Rejected(401, "write_key_required", f"app {app.id!r} requires its write key")
        return
    # Constant-time, so response timing reveals nothing about the key.
    if not hmac.compare_digest(presented.encode(), app.write_key.encode()):
        raise Rejected(
            401, "invalid_write_key", f"that write key does not belong to app {app.id!r}"
        )
