"""The API description's payload schemas: ingest's and each wire format's, then the generated."""

from __future__ import annotations

from web.core.ingest.formats.amplitude import MAX_EVENTS as AMPLITUDE_MAX_EVENTS
from web.core.ingest.formats.segment import SEGMENT_CALLS
from web.core.settings import Limits
from web.openapi_refs import Schema, ref
from web.openapi_types import generated_schemas


def schemas(limits: Limits) -> dict[str, Schema]:
    """Every payload's schema: the native API's, then each wire format's."""
    return {
        **_error_schemas(),
        "Event": _native_event(limits),
        **_verdict_schemas(),
        **generated_schemas(),
        **_segment_schemas(limits),
        "AmplitudeEvent": _amplitude_event(limits),
        **_amplitude_schemas(),
        "SnowplowPayload": _snowplow_payload(limits),
        **_posthog_schemas(limits),
    }


def _event_id(limits: Limits) -> Schema:
    return {"type": ["string", "integer"], "minLength": 1, "maxLength": limits.max_event_id_length}


def _text_or_null() -> Schema:
    return {"type": ["string", "null"]}


def _status() -> Schema:
    return {"enum": ["valid", "invalid"]}


def _message_size(limits: Limits) -> str:
    return (
        f"One message at most {limits.max_event_bytes} bytes serialised;"
        f" a request at most {limits.max_request_bytes} bytes."
    )


def _error_schemas() -> dict[str, Schema]:
    error_body: Schema = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": error_body},
        },
        "SdkError": {
            "description": "The Error shape, with code and message also at the top level"
            " (and `detail` on PostHog paths), where the SDKs read them.",
            "type": "object",
            "required": ["error", "code", "message"],
            "properties": {
                "error": error_body,
                "code": {"type": "string"},
                "message": {"type": "string"},
                "detail": {"type": "string"},
            },
        },
        # PostHog's mobile SDKs and Amplitude share /batch: its refusals are either.
        "SdkOrAmplitudeError": {"oneOf": [ref("SdkError"), ref("AmplitudeError")]},
    }


def _native_event(limits: Limits) -> Schema:
    event_id = _event_id(limits)
    return {
        "type": "object",
        "description": f"Any JSON object. {_message_size(limits)} Named by eventName, event or"
        " event_name; identified by event_id, messageId or uuid (else the server assigns"
        " an id).",
        "properties": {
            "eventName": {"type": "string", "maxLength": limits.max_event_name_length},
            "event": {"type": "string"},
            "event_name": {"type": "string"},
            "event_id": event_id,
            "messageId": event_id,
            "uuid": event_id,
            "timestamp": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": True,
        "x-max-bytes": limits.max_event_bytes,
    }


def _verdict_schemas() -> dict[str, Schema]:
    return {
        "Verdict": {
            "type": "object",
            "required": ["event_id", "event_name", "status", "errors", "task_id", "message"],
            "properties": {
                "event_id": {"type": "string"},
                "event_name": _text_or_null(),
                "status": _status(),
                "errors": {"type": "array", "items": ref("Issue")},
                "task_id": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "VerdictList": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": ref("Verdict")}},
        },
        "SdkResult": {
            "type": "object",
            "required": ["success", "results"],
            "properties": {
                "success": {"const": True},
                "results": {"type": "array", "items": ref("Verdict")},
            },
        },
    }


def _segment_schemas(limits: Limits) -> dict[str, Schema]:
    return {
        "SegmentMessage": {
            "type": "object",
            "description": f"A Segment message. {_message_size(limits)}",
            "properties": {
                "type": {"enum": ["track", *[c for c in SEGMENT_CALLS if c != "track"]]},
                "event": {"type": "string"},
                "messageId": _event_id(limits),
                "userId": _text_or_null(),
                "anonymousId": _text_or_null(),
                "properties": {"type": "object"},
                "traits": {"type": "object"},
                "context": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
                "writeKey": {"type": "string"},
            },
            "additionalProperties": True,
            "x-max-bytes": limits.max_event_bytes,
        },
        "SegmentBatch": {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {
                    "type": "array",
                    "items": ref("SegmentMessage"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "writeKey": {"type": "string"},
                "sentAt": {"type": "string", "format": "date-time"},
            },
        },
    }


def _amplitude_event(limits: Limits) -> Schema:
    return {
        "type": "object",
        "description": f"An Amplitude event, named by event_type. {_message_size(limits)}",
        "required": ["event_type"],
        "properties": {
            "event_type": {"type": "string"},
            "insert_id": _event_id(limits),
            "user_id": _text_or_null(),
            "device_id": _text_or_null(),
            "time": {"type": "integer"},
            "event_properties": {"type": "object"},
            "user_properties": {"type": "object"},
        },
        "additionalProperties": True,
    }


def _amplitude_schemas() -> dict[str, Schema]:
    return {
        "AmplitudeUpload": {
            "type": "object",
            "required": ["api_key", "events"],
            "properties": {
                "api_key": {"type": "string", "description": "The app's write key"},
                "events": {
                    "type": "array",
                    "items": ref("AmplitudeEvent"),
                    "minItems": 1,
                    "maxItems": AMPLITUDE_MAX_EVENTS,
                },
                "options": {"type": "object"},
            },
        },
        "AmplitudeResult": {
            "type": "object",
            "required": ["code", "events_ingested", "results"],
            "properties": {
                "code": {"const": 200},
                "events_ingested": {"type": "integer"},
                "payload_size_bytes": {"type": "integer"},
                "server_upload_time": {"type": "integer"},
                "results": {"type": "array", "items": ref("Verdict")},
            },
        },
        "AmplitudeError": {
            "description": "Amplitude's error shape; error_code is this server's code. A bad"
            " or missing key is 400 'Invalid API key', as Amplitude answers it.",
            "type": "object",
            "required": ["code", "error", "error_code"],
            "properties": {
                "code": {"type": "integer"},
                "error": {"type": "string"},
                "error_code": {"type": "string"},
            },
        },
    }


def _snowplow_payload(limits: Limits) -> Schema:
    return {
        "type": "object",
        "description": "Snowplow's payload_data envelope: tracker payloads, every field a"
        " string (e, eid, aid, ue_pr/ue_px, co/cx, se_ca, se_ac...).",
        "required": ["data"],
        "properties": {
            "schema": {"type": "string"},
            "data": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": True},
                "minItems": 1,
                "maxItems": limits.max_events_per_request,
            },
        },
    }


def _posthog_schemas(limits: Limits) -> dict[str, Schema]:
    return {
        "PostHogEvent": {
            "type": "object",
            "properties": {
                "event": {"type": "string"},
                "distinct_id": {"type": ["string", "integer"]},
                "properties": {"type": "object"},
                "timestamp": {"type": "string", "format": "date-time"},
                "uuid": _event_id(limits),
            },
            "additionalProperties": True,
            "x-max-bytes": limits.max_event_bytes,
        },
        "PostHogBatch": {
            "type": "object",
            "required": ["api_key", "batch"],
            "properties": {
                "api_key": {"type": "string", "description": "The app's write key"},
                "batch": {
                    "type": "array",
                    "items": ref("PostHogEvent"),
                    "minItems": 1,
                    "maxItems": limits.max_events_per_request,
                },
                "sent_at": {"type": "string"},
            },
        },
        "PostHogCapture": {
            "description": "What posthog-js and the capture endpoints take: a batch, one event"
            " (with api_key or token), or an array of events (each with properties.token);"
            " as JSON, as gzip (by Content-Encoding, ?compression=gzip-js or the magic bytes),"
            " or as a data=<base64> form.",
            "oneOf": [
                ref("PostHogBatch"),
                {"allOf": [ref("PostHogEvent")], "properties": {"api_key": {"type": "string"}}},
                {"type": "array", "items": ref("PostHogEvent"), "minItems": 1},
            ],
        },
        "PostHogForm": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"type": "string", "description": "The JSON body, base64"},
                "compression": {"enum": ["gzip-js", "base64"]},
            },
        },
    }
