"""The one list of wire formats, and the routing, CORS and limits that follow from it.

A new format is a module in web/core/ingest/formats and one line in WIRE_FORMATS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
class Match:
    """The formats and routes a path reached (usually one), with its parameters."""

    candidates: tuple[tuple[WireFormat, Route], ...]
    params: dict[str, str]
    session: str | None

    @property
    def formats(self) -> tuple[WireFormat, ...]:
        return tuple(fmt for fmt, _ in self.candidates)

    @property
    def route(self) -> Route:
        return self.candidates[0][1]

    def route_of(self, fmt: WireFormat) -> Route:
        """The route of `fmt` among the candidates (the first one's when it is not there)."""
        return next((route for found, route in self.candidates if found is fmt), self.route)

    def endpoint(self, fmt: WireFormat) -> str:
        """The label of the route `fmt` served, in metrics and logs: format.route."""
        return f"{fmt.name}.{self.route_of(fmt).name}"

    def max_request_bytes(self, limits: Limits) -> int:
        return max(fmt.limits(limits).max_request_bytes for fmt in self.formats)


class Router:
    """Finds the route of a path among the formats' routes; paths with no parameter by dict."""

    def __init__(self, formats: tuple[WireFormat, ...]) -> None:
        self._fixed: dict[str, list[tuple[WireFormat, Route]]] = {}
        self._patterns: list[tuple[re.Pattern[str], WireFormat, Route]] = []
        for fmt in formats:
            for route in fmt.routes:
                if "<" in route.path:
                    self._patterns.append((_pattern(route.path), fmt, route))
                else:
                    self._fixed.setdefault(route.path, []).append((fmt, route))

    def match(self, path: str) -> Match | None:
        found = self._match(path, None)
        if found is None and path.startswith("/v1/session/"):
            scoped = _SESSION_PATH.fullmatch(path)
            if scoped is not None:
                found = self._match(scoped[2], scoped[1])
        return found

    def _match(self, path: str, session: str | None) -> Match | None:
        fixed = self._fixed.get(path)
        if fixed is not None:
            return Match(tuple(fixed), {}, session)
        for pattern, fmt, route in self._patterns:
            matched = pattern.fullmatch(path)
            if matched is not None:
                return Match(((fmt, route),), matched.groupdict(), session)
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
