"""The one list of wire formats, and the routing, CORS and limits that follow from it.

A new format is a module in web/core/ingest/formats and one line in WIRE_FORMATS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from web.core.ingest.formats.amplitude import AmplitudeFormat
from web.core.ingest.formats.native import NativeFormat
from web.core.ingest.formats.posthog import PostHogFormat
from web.core.ingest.formats.segment import SegmentFormat
from web.core.ingest.formats.snowplow import SnowplowFormat
from web.core.ingest.wire import Route, WireFormat
from web.core.settings import Limits

# Order matters only where two formats share a path: the first reads the body and each
# is asked, in this order, whether the body is its (PostHog's and Amplitude's /batch).
WIRE_FORMATS: tuple[WireFormat, ...] = (
    NativeFormat(),
    SegmentFormat(),
    PostHogFormat(),
    AmplitudeFormat(),
    SnowplowFormat(),
)

# Every ingest URL may also be reached under a session-scoped host: an SDK pointed at
# <server>/v1/session/<id> tags its events with session <id>.
SESSION_PREFIX = "/v1/session/<session>"
_SESSION_PATH = re.compile(r"/v1/session/([^/]+)(/.*)")
# Headers any ingest request may carry; the formats add their SDKs' own.
COMMON_HEADERS = ("Content-Type", "Content-Encoding", "Authorization", "X-LVD-Session")


@dataclass(frozen=True, slots=True)
class Served:
    """A route as one format serves it, with its metrics label worked out once."""

    fmt: WireFormat
    route: Route
    endpoint: str  # format.route, e.g. segment.t


@dataclass(slots=True)  # not frozen: one is built per request to a path with parameters
class Match:
    """What a path reached: the formats serving it (usually one), its parameters."""

    served: tuple[Served, ...]
    formats: tuple[WireFormat, ...]
    params: Mapping[str, str] = field(default_factory=dict)
    session: str | None = None

    @property
    def route(self) -> Route:
        return self.served[0].route

    def served_by(self, fmt: WireFormat) -> Served:
        """How `fmt` serves this path (the first format's route when it is not among them)."""
        if len(self.served) == 1:
            return self.served[0]
        for served in self.served:
            if served.fmt is fmt:
                return served
        return self.served[0]

    def max_request_bytes(self, limits: Limits) -> int:
        return max(fmt.limits(limits).max_request_bytes for fmt in self.formats)

    @property
    def credentials(self) -> bool:
        """Whether a browser may send this path's requests with cookies."""
        return any(fmt.credentials for fmt in self.formats)


def _match(served: list[Served]) -> Match:
    return Match(tuple(served), tuple(item.fmt for item in served))


class Router:
    """Finds the route of a path among the formats' routes; paths with no parameter by dict.

    Every Match is built once, here: routing a request allocates one only for a path with
    parameters or under a session.
    """

    def __init__(self, formats: tuple[WireFormat, ...]) -> None:
        fixed: dict[str, list[Served]] = {}
        self._patterns: list[tuple[re.Pattern[str], Match]] = []
        for fmt in formats:
            for route in fmt.routes:
                served = Served(fmt, route, f"{fmt.name}.{route.name}")
                if "<" in route.path:
                    self._patterns.append((_pattern(route.path), _match([served])))
                else:
                    fixed.setdefault(route.path, []).append(served)
        self._fixed = {path: _match(served) for path, served in fixed.items()}

    def match(self, path: str) -> Match | None:
        found = self._match(path, None)
        if found is None and path.startswith("/v1/session/"):
            scoped = _SESSION_PATH.fullmatch(path)
            if scoped is not None:
                found = self._match(scoped[2], scoped[1])
        return found

    def _match(self, path: str, session: str | None) -> Match | None:
        found = self._fixed.get(path)
        if found is not None:
            return found if session is None else Match(found.served, found.formats, {}, session)
        for pattern, route_match in self._patterns:
            matched = pattern.fullmatch(path)
            if matched is not None:
                return Match(route_match.served, route_match.formats, matched.groupdict(), session)
        return None


def _pattern(path: str) -> re.Pattern[str]:
    """/api/logs/<app_id> -> a pattern whose group app_id is one path segment."""
    parts = re.split(r"<(\w+)>", path)
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(regex)


def allowed_headers(formats: tuple[WireFormat, ...] = WIRE_FORMATS) -> tuple[str, ...]:
    """Every request header a preflight allows: the common ones and each SDK's own."""
    names = list(COMMON_HEADERS)
    for fmt in formats:
        names.extend(name for name in fmt.cors_headers if name not in names)
    return tuple(names)


def routes_by_format(
    formats: tuple[WireFormat, ...] = WIRE_FORMATS,
) -> list[tuple[WireFormat, Route]]:
    """Every (format, route), in order: what the API description lists."""
    return [(fmt, route) for fmt in formats for route in fmt.routes]


ROUTER = Router(WIRE_FORMATS)
ALLOWED_HEADERS = allowed_headers()
