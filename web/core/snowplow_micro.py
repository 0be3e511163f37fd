"""Snowplow Micro's answers, built from stored events: good and bad events and their filters.

A suite written for Micro asks /micro/all, /micro/good, /micro/bad and /micro/reset; here
"good" is an event the app's plan found valid and "bad" one it found invalid, with the
plan's errors as Micro's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web.core.errors import Rejected
from web.core.ingest.formats.snowplow import READABLE_KEYS
from web.core.queries.base import LogEntry

UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
# Micro's event types, by the tracker's `e`, and the schema it lists for the built-in ones.
EVENT_TYPES = {
    "ue": "unstruct",
    "se": "struct",
    "pv": "page_view",
    "pp": "page_ping",
    "tr": "transaction",
    "ti": "transaction_item",
}
BUILT_IN_SCHEMAS = {
    "struct": "iglu:com.google.analytics/event/jsonschema/1-0-0",
    "page_view": "iglu:com.snowplowanalytics.snowplow/page_view/jsonschema/1-0-0",
    "page_ping": "iglu:com.snowplowanalytics.snowplow/page_ping/jsonschema/1-0-0",
    "transaction": "iglu:com.snowplowanalytics.snowplow/transaction/jsonschema/1-0-0",
    "transaction_item": "iglu:com.snowplowanalytics.snowplow/transaction_item/jsonschema/1-0-0",
}
API = {"vendor": "com.snowplowanalytics.snowplow", "version": "tp2"}
# The tracker's e for each of Micro's event types.
CODES = {event_type: code for code, event_type in EVENT_TYPES.items()}
# Tracker fields and their names in an enriched event.
ENRICHED_FIELDS = {
    "aid": "app_id",
    "p": "platform",
    "eid": "event_id",
    "tv": "v_tracker",
    "tna": "name_tracker",
    "uid": "user_id",
    "duid": "domain_userid",
    "sid": "domain_sessionid",
    "url": "page_url",
    "page": "page_title",
    "refr": "page_referrer",
    "se_ca": "se_category",
    "se_ac": "se_action",
    "se_la": "se_label",
    "se_pr": "se_property",
    "se_va": "se_value",
}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class GoodConditions:
    """/micro/good's filter in the query's terms: the tracker's e, the schema, the contexts."""

    event_code: str | None
    schema: str | None
    contexts: list[dict[str, str]] | None  # [{"schema": ...}], each must be attached


@dataclass(frozen=True, slots=True)
class MicroFilter:
    """Micro's filters: /micro/good's schema, event_type, contexts; /micro/bad's vendor and
    version (of the collector API the event came through); both take a limit."""

    schema: str | None = None
    event_type: str | None = None
    contexts: tuple[str, ...] = ()
    vendor: str | None = None
    version: str | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> MicroFilter:
        """From a POST body or the query string; 400 for a filter of the wrong type."""
        contexts = values.get("contexts") or ()
        if isinstance(contexts, str):
            contexts = (contexts,)
        if not isinstance(contexts, list | tuple):
            raise Rejected(400, "invalid_filter", "contexts is a string or a list of them")
        limit = values.get("limit", DEFAULT_LIMIT)
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise Rejected(400, "invalid_filter", "limit must be a whole number") from None
        texts = {key: values.get(key) for key in ("schema", "event_type", "vendor", "version")}
        if not all(value is None or isinstance(value, str) for value in texts.values()) or not all(
            isinstance(context, str) for context in contexts
        ):
            raise Rejected(400, "invalid_filter", "filters are strings (contexts a list of them)")
        if any("\x00" in text for text in (*contexts, *filter(None, texts.values()))):
            raise Rejected(400, "invalid_filter", "filters cannot contain U+0000")
        return cls(
            schema=texts["schema"],
            event_type=texts["event_type"],
            contexts=tuple(contexts),
            vendor=texts["vendor"],
            version=texts["version"],
            limit=max(0, min(limit, MAX_LIMIT)),
        )

    def good_conditions(self) -> GoodConditions | None:
        """The filter as the query takes it; None when no event can match it."""
        codes = {self.event_type, *(k for k, v in BUILT_IN_SCHEMAS.items() if v == self.schema)}
        codes.discard(None)
        built_in = self.schema in BUILT_IN_SCHEMAS.values()
        if self.schema is not None and not built_in:
            codes.add("unstruct")  # any other schema is a self-describing event's
        if len(codes) > 1:
            return None
        event_code = next((CODES[c] for c in codes if c in CODES), None)
        if codes and event_code is None:
            return None  # an event type the trackers do not send
        contexts = [{"schema": schema} for schema in self.contexts]
        return GoodConditions(
            event_code=event_code,
            schema=None if built_in else self.schema,
            contexts=contexts or None,
        )

    def keeps_bad_api(self) -> bool:
        """Whether /micro/bad's vendor and version name the one collector API events come
        through here (all of them, or none)."""
        return (self.vendor is None or API["vendor"] == self.vendor) and (
            self.version is None or API["version"] == self.version
        )


def good_event(entry: LogEntry) -> dict[str, Any]:
    """A stored event as Micro lists a good one: enriched fields, type, schema, contexts."""
    payload = entry.payload
    event_type = EVENT_TYPES.get(str(payload.get("e")), str(payload.get("e")))
    schema = payload.get("schema") if event_type == "unstruct" else BUILT_IN_SCHEMAS.get(event_type)
    found = payload.get("contexts")
    contexts: list[Any] = found if isinstance(found, list) else []
    enriched: dict[str, Any] = {
        name: payload[field] for field, name in ENRICHED_FIELDS.items() if field in payload
    }
    enriched.update(
        event=event_type,
        event_id=entry.event_id,
        dvce_created_tstamp=payload.get("timestamp"),
        collector_tstamp=entry.received_at.isoformat(),
        contexts={"schema": CONTEXTS_SCHEMA, "data": contexts},
    )
    if event_type == "unstruct" and isinstance(schema, str):
        vendor, name, event_format, version = (schema.removeprefix("iglu:").split("/") + [""] * 4)[
            :4
        ]
        enriched.update(
            event_vendor=vendor,
            event_name=name,
            event_format=event_format,
            event_version=version,
            unstruct_event={
                "schema": UNSTRUCT_SCHEMA,
                "data": {"schema": schema, "data": payload.get("properties")},
            },
        )
    return {
        "event": enriched,
        "eventType": event_type,
        "schema": schema,
        "contexts": [c["schema"] for c in contexts if isinstance(c, dict) and "schema" in c],
        "rawEvent": raw_event(entry),
    }


def bad_event(entry: LogEntry) -> dict[str, Any]:
    """A stored invalid event as Micro lists a bad one, the plan's errors as its errors."""
    return {
        "collectorPayload": None,
        "rawEvent": raw_event(entry),
        "errors": [
            f"{issue.get('path', '')}: {issue.get('message', '')}" for issue in entry.errors
        ],
    }


def raw_event(entry: LogEntry) -> dict[str, Any]:
    """The tracker's own fields, as it sent them (the readable view left out)."""
    parameters = {k: v for k, v in entry.payload.items() if k not in READABLE_KEYS}
    return {
        "api": API,
        "parameters": parameters,
        "contentType": "application/json",
        "source": {"name": "live-validation-dashboard", "encoding": "UTF-8"},
        "context": {"timestamp": entry.received_at.isoformat(), "headers": []},
    }
