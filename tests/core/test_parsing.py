"""web/core/parsing.py: every bad body a client can send maps to one status and one code."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from typing import Any

import orjson
import pytest

from web.core.parsing import ParsedBody, ParseError, check_media_type, decompress, parse_events
from web.core.settings import Limits

DEFAULT = Limits()
SMALL = Limits(
    max_event_bytes=100,
    max_request_bytes=1000,
    max_events_per_request=3,
    max_json_depth=4,
    max_event_id_length=10,
)
EVENT = b'{"eventName": "user_login", "userId": 123}'


def parse(
    raw: bytes,
    *,
    content_type: str | None = "application/json",
    content_encoding: str | None = None,
    limits: Limits = DEFAULT,
    allow_batch: bool = True,
) -> ParsedBody:
    return parse_events(
        raw,
        content_type=content_type,
        content_encoding=content_encoding,
        limits=limits,
        allow_batch=allow_batch,
    )


def refusal(raw: bytes, **options: Any) -> tuple[int, str]:
    """The (status, code) `parse` refuses the body with; fails the test when it is accepted."""
    with pytest.raises(ParseError) as caught:
        parse(raw, **options)
    error = caught.value
    assert error.message, "every refusal carries a message for the client"
    assert str(error) == error.message
    return error.status, error.code


def nested_objects(depth: int) -> bytes:
    """An object whose nesting depth (the top object counting as 1) is `depth`."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


# ---------------------------------------------------------------- malformed JSON


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(b'{"eventName":', "invalid_json", id="truncated-after-colon"),
        pytest.param(b'{"eventName": "x"', "invalid_json", id="truncated-missing-brace"),
        pytest.param(b'{"eventName": "unterminated', "invalid_json", id="truncated-string"),
        pytest.param(b'[{"eventName": "x"},', "invalid_json", id="truncated-batch"),
        pytest.param(b'{"eventName": "x"} x', "invalid_json", id="trailing-garbage"),
        pytest.param(b'{"eventName": "x"}{"eventName": "y"}', "invalid_json", id="two-docs"),
        pytest.param(b'{"eventName": "x"},', "invalid_json", id="trailing-comma"),
        pytest.param(b'{"a": [1, 2,]}', "invalid_json", id="comma-before-bracket"),
        pytest.param(b"{'eventName': 'x'}", "invalid_json", id="single-quotes"),
        pytest.param(b'{"a": "x\x00"}', "invalid_json", id="raw-control-character"),
        pytest.param(b"", "empty_body", id="empty"),
        pytest.param(b"   ", "empty_body", id="spaces"),
        pytest.param(b" \r\n\t\n", "empty_body", id="whitespace-mix"),
    ],
)
def test_parse_events_malformed_json_is_400(raw: bytes, code: str) -> None:
    assert refusal(raw) == (400, code)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": "\xff"}', id="byte-ff"),
        pytest.param(b'{"a": "caf\xe9"}', id="latin-1"),
        pytest.param(b'{"a": "\xc3"}', id="cut-multibyte"),
        pytest.param(b'{"a": "\xc0\xaf"}', id="overlong"),
        pytest.param(b'{"a": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b'{"\xff": 1}', id="in-key"),
        pytest.param(b"\xff\xfe{}", id="utf16-bom"),
    ],
)
def test_parse_events_invalid_utf8_bytes_are_400_invalid_utf8(raw: bytes) -> None:
    assert refusal(raw) == (400, "invalid_utf8")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": "\\ud800"}', id="lone-high"),
        pytest.param(b'{"a": "\\udfff"}', id="lone-low"),
        pytest.param(b'{"a": "\\udc00\\ud800"}', id="reversed-pair"),
        pytest.param(b'{"a": "\\ud800\\u0041"}', id="high-then-letter"),
        pytest.param(b'{"\\ud800": 1}', id="in-key"),
        pytest.param(b'[{"a": "\\ud83d"}]', id="in-batch"),
    ],
)
def test_parse_events_lone_surrogate_escape_is_400_invalid_utf8(raw: bytes) -> None:
    assert refusal(raw) == (400, "invalid_utf8")


def test_parse_events_surrogate_pair_escape_decodes_to_one_character() -> None:
    body = parse(b'{"eventName": "\\ud83d\\ude00 ok"}')
    assert body.events[0].event == {"eventName": "\U0001f600 ok"}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": "x\\u0000"}', id="in-value"),
        pytest.param(b'{"a": "\\u0000"}', id="value-only-nul"),
        pytest.param(b'{"x\\u0000": 1}', id="in-key"),
        pytest.param(b'{"a": {"b": ["ok", "\\u0000"]}}', id="nested-in-array"),
        pytest.param(b'{"a": {"k\\u0000": true}}', id="nested-key"),
        pytest.param(b'[{"eventName": "a"}, {"eventName": "b\\u0000"}]', id="in-batch"),
    ],
)
def test_parse_events_null_character_is_400_null_character(raw: bytes) -> None:
    assert refusal(raw) == (400, "null_character")


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": NaN}', id="NaN"),
        pytest.param(b'{"a": Infinity}', id="Infinity"),
        pytest.param(b'{"a": -Infinity}', id="minus-Infinity"),
        pytest.param(b'{"a": -NaN}', id="minus-NaN"),
        pytest.param(b'{"a": 1e400}', id="1e400"),
        pytest.param(b'{"a": -1E400}', id="minus-1E400"),
        pytest.param(b"[NaN]", id="NaN-in-array"),
        pytest.param(b'{"a": {"b": [1, Infinity]}}', id="nested-Infinity"),
    ],
)
def test_parse_events_non_finite_number_is_400_invalid_number(raw: bytes) -> None:
    assert refusal(raw) == (400, "invalid_number")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        pytest.param(b"9223372036854775807", 2**63 - 1, id="int64-max"),
        pytest.param(b"18446744073709551615", 2**64 - 1, id="uint64-max"),
        pytest.param(b"-9223372036854775808", -(2**63), id="int64-min"),
        # Beyond 64 bits orjson reads a float: accepted, with the precision a double has.
        pytest.param(b"18446744073709551616", 1.8446744073709552e19, id="uint64-max-plus-1"),
        pytest.param(b"-9223372036854775809", -9.223372036854776e18, id="int64-min-minus-1"),
        pytest.param(b"123456789012345678901234567890", 1.2345678901234568e29, id="30-digits"),
        pytest.param(b"1" + b"0" * 300, 1e300, id="301-digits"),
        pytest.param(b"1e308", 1e308, id="largest-decade"),
    ],
)
def test_parse_events_huge_integer_is_accepted_as_read(literal: bytes, value: float) -> None:
    body = parse(b'{"eventName": "n", "big": ' + literal + b"}")
    stored = body.events[0].event["big"]
    assert stored == value
    assert type(stored) is type(value)


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 50_000, id="50k-open-brackets"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="50k-closed-brackets"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="50k-objects"),
        pytest.param(nested_objects(1025), id="just-over-orjson-limit"),
    ],
)
def test_parse_events_deep_nesting_is_400_too_deep_without_recursion_error(raw: bytes) -> None:
    assert refusal(raw) == (400, "too_deep")


@pytest.mark.parametrize(
    ("limits", "depth", "accepted"),
    [
        (SMALL, 3, True),
        (SMALL, 4, True),
        (SMALL, 5, False),
        (DEFAULT, 63, True),
        (DEFAULT, 64, True),
        (DEFAULT, 65, False),
        (DEFAULT, 66, False),
    ],
)
def test_parse_events_depth_around_max_json_depth(
    limits: Limits, depth: int, accepted: bool
) -> None:
    raw = nested_objects(depth)
    if accepted:
        assert len(parse(raw, limits=limits).events) == 1
    else:
        assert refusal(raw, limits=limits) == (400, "too_deep")


@pytest.mark.parametrize(
    ("depth", "accepted"),
    [(4, True), (5, False)],
)
def test_parse_events_batch_array_counts_as_one_level(depth: int, accepted: bool) -> None:
    # The array is level 1, so each event may nest one level less than a single event.
    raw = b"[" + nested_objects(depth - 1) + b"]"
    if accepted:
        assert parse(raw, limits=SMALL).is_batch
    else:
        assert refusal(raw, limits=SMALL) == (400, "too_deep")


DEPTH_4 = Limits(max_json_depth=4)


def test_parse_events_many_shallow_brackets_are_not_mistaken_for_depth() -> None:
    # Far more brackets than a depth of 4, none nested deeper than 3 levels.
    siblings = b",".join(b'"k%d": {"v": [%d]}' % (i, i) for i in range(20))
    single = b'{"eventName": "a", ' + siblings + b"}"
    assert len(parse(single, limits=DEPTH_4).events) == 1
    assert len(parse(b"[" + single + b"," + single + b"]", limits=DEPTH_4).events) == 2


@pytest.mark.parametrize("position", [0, 1, 4])
def test_parse_events_one_deep_event_refuses_its_batch(position: int) -> None:
    events = [b'{"eventName": "ok", "p": {"q": 1}}'] * 5
    events[position] = b'{"eventName": "deep", "p": {"q": {"r": {"s": 1}}}}'  # 5 levels in all
    assert refusal(b"[" + b",".join(events) + b"]", limits=DEPTH_4) == (400, "too_deep")


# ---------------------------------------------------------------- top level


@pytest.mark.parametrize(
    ("raw", "described"),
    [
        (b'"user_login"', "a string"),
        (b"42", "a number"),
        (b"-1.5", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
        (b"false", "a boolean"),
    ],
)
def test_parse_events_scalar_top_level_is_400_invalid_top_level(raw: bytes, described: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(raw)
    assert (caught.value.status, caught.value.code) == (400, "invalid_top_level")
    assert caught.value.message.endswith(f"got {described}")


def test_parse_events_object_is_one_event_not_a_batch() -> None:
    body = parse(EVENT)
    assert body.is_batch is False
    assert [e.event for e in body.events] == [{"eventName": "user_login", "userId": 123}]
    assert body.events[0].event_id is None


@pytest.mark.parametrize(
    ("raw", "allow_batch", "expected"),
    [
        (EVENT, False, "ok"),
        (b"[" + EVENT + b"]", False, (400, "invalid_top_level")),
        (b"[]", False, (400, "invalid_top_level")),
        (b"[" + EVENT + b"]", True, "ok"),
    ],
)
def test_parse_events_allow_batch_false_refuses_arrays(
    raw: bytes, allow_batch: bool, expected: object
) -> None:
    if expected == "ok":
        assert len(parse(raw, allow_batch=allow_batch).events) == 1
    else:
        with pytest.raises(ParseError) as caught:
            parse(raw, allow_batch=allow_batch)
        assert (caught.value.status, caught.value.code) == expected
        assert "an event object, got an array" in caught.value.message


# ---------------------------------------------------------------- batches


def test_parse_events_batch_keeps_every_event_in_order() -> None:
    events = [{"eventName": f"e{i}", "event_id": f"id-{i}"} for i in range(3)]
    body = parse(orjson.dumps(events), limits=SMALL)
    assert body.is_batch is True
    assert [e.event for e in body.events] == events
    assert [e.event_id for e in body.events] == ["id-0", "id-1", "id-2"]


@pytest.mark.parametrize(
    ("events", "status", "code", "fragment"),
    [
        pytest.param([], 400, "empty_batch", "no events", id="empty-array"),
        pytest.param([{"eventName": "e"}] * 4, 413, "too_many_events", "at most 3", id="4-of-3"),
        pytest.param([{"e": 1}] * 50, 413, "too_many_events", "got 50", id="50-of-3"),
        pytest.param([{"eventName": "e"}, 1], 400, "invalid_event", "event 1", id="number"),
        pytest.param(["e"], 400, "invalid_event", "event 0", id="string"),
        pytest.param([{"e": 1}, {"e": 2}, None], 400, "invalid_event", "event 2", id="null"),
        pytest.param([[{"e": 1}]], 400, "invalid_event", "got an array", id="nested-array"),
        pytest.param([True], 400, "invalid_event", "got a boolean", id="boolean"),
        pytest.param(
            [{"eventName": "ok"}, {"eventName": "x" * 200}],
            413,
            "event_too_large",
            "event 1 is",
            id="oversized-event-in-batch",
        ),
    ],
)
def test_parse_events_bad_batch_is_refused(
    events: list[Any], status: int, code: str, fragment: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parse(orjson.dumps(events), limits=SMALL)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("padding", "accepted"),
    [(0, True), (1, False)],
)
def test_parse_events_event_size_limit_is_inclusive(padding: int, accepted: bool) -> None:
    # {"eventName":"x...x"} serialised is 16 bytes plus the name.
    event = {"eventName": "x" * (SMALL.max_event_bytes - 16 + padding)}
    assert len(orjson.dumps(event)) == SMALL.max_event_bytes + padding
    raw = orjson.dumps(event)
    if accepted:
        assert parse(raw, limits=SMALL).events[0].event == event
    else:
        assert refusal(raw, limits=SMALL) == (413, "event_too_large")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (SMALL.max_request_bytes, (413, "event_too_large")),  # fits the request, not the event
        (SMALL.max_request_bytes + 1, (413, "request_too_large")),
        (SMALL.max_request_bytes * 50, (413, "request_too_large")),
    ],
)
def test_parse_events_body_over_request_limit_is_413(size: int, expected: tuple[int, str]) -> None:
    prefix = b'{"eventName": "'
    raw = prefix + b"x" * (size - len(prefix) - 2) + b'"}'
    assert len(raw) == size
    assert refusal(raw, limits=SMALL) == expected


def test_parse_events_body_at_request_limit_is_accepted() -> None:
    limits = Limits(max_request_bytes=1000)
    prefix = b'{"eventName": "'
    raw = prefix + b"x" * (1000 - len(prefix) - 2) + b'"}'
    assert len(raw) == 1000
    assert len(parse(raw, limits=limits).events) == 1


def test_parse_events_whitespace_padding_over_limit_is_413() -> None:
    raw = EVENT + b" " * DEFAULT.max_request_bytes
    assert refusal(raw) == (413, "request_too_large")


# ---------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        "  application/json  ",
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/vnd.x+json",
        "application/vnd.api+json; charset=utf-8",
        "application/problem+json",
    ],
)
def test_parse_events_accepted_content_type(content_type: str) -> None:
    check_media_type(content_type)
    assert parse(EVENT, content_type=content_type).events[0].event["eventName"] == "user_login"


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        (None, "none"),
        ("", "none"),
        ("   ", "none"),
        ("text/html", "text/html"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/xml", "application/xml"),
        ("application/jsonx", "application/jsonx"),
        ("application/json-seq", "application/json-seq"),
        ("application/octet-stream", "application/octet-stream"),
    ],
)
def test_parse_events_missing_or_wrong_content_type_is_415(
    content_type: str | None, shown: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parse(EVENT, content_type=content_type)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
    assert caught.value.message.endswith(f"got {shown}")


def test_parse_events_content_type_is_checked_before_the_body() -> None:
    assert refusal(b"", content_type="text/html") == (415, "unsupported_media_type")


# ---------------------------------------------------------------- content encoding


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("GZIP", gzip.compress),
        (" gzip ", gzip.compress),
        ("deflate", zlib.compress),
        ("identity", lambda raw: raw),
        ("", lambda raw: raw),
        (None, lambda raw: raw),
    ],
)
def test_parse_events_supported_content_encoding_is_accepted(
    encoding: str | None, compress: Any
) -> None:
    batch = orjson.dumps([{"eventName": "a", "messageId": "m1"}, {"eventName": "b"}])
    body = parse(compress(batch), content_encoding=encoding)
    assert [e.event["eventName"] for e in body.events] == ["a", "b"]
    assert body.events[0].event_id == "m1"


def _truncated_gzip() -> bytes:
    # Everything but the CRC-32 and length trailer: the data was never verified.
    return gzip.compress(EVENT)[:-8]


def _bad_crc_gzip() -> bytes:
    data = bytearray(gzip.compress(EVENT))
    data[-8] ^= 0xFF
    return bytes(data)


def _raw_deflate() -> bytes:
    # HTTP "deflate" is the zlib format (RFC 9110); headerless deflate is not it.
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(EVENT) + compressor.flush()


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        pytest.param(b"not gzip at all", "gzip", id="not-gzip"),
        pytest.param(b"\x1f\x8b\x08\x00garbage", "gzip", id="gzip-header-then-garbage"),
        pytest.param(_bad_crc_gzip(), "gzip", id="bad-crc"),
        pytest.param(_truncated_gzip(), "gzip", id="truncated-trailer"),
        pytest.param(gzip.compress(EVENT)[:12], "gzip", id="truncated-mid-stream"),
        pytest.param(gzip.compress(EVENT) + b"trailing junk", "gzip", id="trailing-junk"),
        pytest.param(EVENT, "gzip", id="plain-json-labelled-gzip"),
        pytest.param(zlib.compress(EVENT), "gzip", id="zlib-labelled-gzip"),
        pytest.param(gzip.compress(EVENT), "deflate", id="gzip-labelled-deflate"),
        pytest.param(_raw_deflate(), "deflate", id="raw-deflate"),
    ],
)
def test_parse_events_corrupt_compressed_body_is_400_invalid_encoding(
    raw: bytes, encoding: str
) -> None:
    assert refusal(raw, content_encoding=encoding) == (400, "invalid_encoding")


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd", "gzip, identity", "x-gzip"])
def test_parse_events_unsupported_content_encoding_is_415(encoding: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(EVENT, content_encoding=encoding)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_encoding")
    assert caught.value.message.endswith(f"got {encoding}")


def _gzip_of_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(bytes(chunk)) for _ in range(total // chunk)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _gzip_of_zeros(50 * (1 << 20))


@pytest.mark.parametrize("encoding", ["gzip"])
def test_parse_events_gzip_bomb_is_413_quickly_without_inflating_it(
    gzip_bomb: bytes, encoding: str
) -> None:
    assert len(gzip_bomb) < 100_000  # 50 MiB of zeros compress to ~50 KB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ParseError) as caught:
            parse(gzip_bomb, content_encoding=encoding)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.value.status, caught.value.code) == (413, "request_too_large")
    assert elapsed < 1.0
    # Inflating all of it would take 50 MiB; stopping at the limit takes about 0.5 MiB.
    assert peak < 5 * (1 << 20)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (SMALL.max_request_bytes, None),
        (SMALL.max_request_bytes + 1, (413, "request_too_large")),
        (SMALL.max_request_bytes * 1000, (413, "request_too_large")),
    ],
)
def test_decompress_output_limit_is_the_request_limit(
    size: int, expected: tuple[int, str] | None
) -> None:
    raw = gzip.compress(b" " * size)
    if expected is None:
        assert decompress(raw, "gzip", SMALL) == b" " * size
    else:
        with pytest.raises(ParseError) as caught:
            decompress(raw, "gzip", SMALL)
        assert (caught.value.status, caught.value.code) == expected


# ---------------------------------------------------------------- client event ids


@pytest.mark.parametrize(
    ("event", "event_id"),
    [
        pytest.param({"event_id": "a", "messageId": "b", "uuid": "c"}, "a", id="event_id-first"),
        pytest.param({"uuid": "c", "messageId": "b"}, "b", id="messageId-before-uuid"),
        pytest.param({"uuid": "c"}, "c", id="uuid"),
        pytest.param({"event_id": None, "messageId": "b"}, "b", id="null-falls-through"),
        pytest.param({"event_id": None}, None, id="only-null"),
        pytest.param({}, None, id="none"),
        pytest.param({"eventId": "x", "id": "y"}, None, id="other-keys-ignored"),
        pytest.param({"event_id": 42}, "42", id="integer"),
        pytest.param({"messageId": 0}, "0", id="zero"),
        pytest.param({"uuid": -7}, "-7", id="negative-integer"),
        pytest.param({"event_id": "  padded  "}, "padded", id="stripped"),
        pytest.param({"event_id": "x" * 10}, "x" * 10, id="at-max-length"),
        pytest.param({"messageId": "\u00e9\u00e9"}, "\u00e9\u00e9", id="unicode"),
    ],
)
def test_parse_events_client_event_id(event: dict[str, Any], event_id: str | None) -> None:
    body = parse(orjson.dumps({"eventName": "e", **event}), limits=SMALL)
    assert body.events[0].event_id == event_id


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        pytest.param({"event_id": "x" * 11}, "1 to 10 characters", id="over-max-length"),
        pytest.param({"event_id": ""}, "1 to 10 characters", id="empty"),
        pytest.param({"messageId": "   "}, "1 to 10 characters", id="blank"),
        pytest.param({"event_id": "", "messageId": "ok"}, "event_id", id="empty-no-fallback"),
        pytest.param({"uuid": {"a": 1}}, "got an object", id="object"),
        pytest.param({"event_id": ["a"]}, "got an array", id="array"),
        pytest.param({"messageId": True}, "got a boolean", id="boolean"),
        pytest.param({"event_id": 1.5}, "got a number", id="float"),
        pytest.param({"event_id": 12345678901}, "1 to 10 characters", id="long-integer"),
    ],
)
def test_parse_events_bad_client_event_id_is_400_invalid_event_id(
    event: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parse(orjson.dumps({"eventName": "e", **event}), limits=SMALL)
    assert (caught.value.status, caught.value.code) == (400, "invalid_event_id")
    assert fragment in caught.value.message


@pytest.mark.parametrize("length", [100, 101])
def test_parse_events_event_id_default_limit_is_100_characters(length: int) -> None:
    raw = orjson.dumps({"eventName": "e", "event_id": "i" * length})
    if length <= 100:
        assert parse(raw).events[0].event_id == "i" * length
    else:
        assert refusal(raw) == (400, "invalid_event_id")


def test_parse_events_bad_event_id_in_batch_names_its_index() -> None:
    raw = orjson.dumps([{"eventName": "a", "event_id": "ok"}, {"eventName": "b", "uuid": ""}])
    with pytest.raises(ParseError) as caught:
        parse(raw)
    assert caught.value.code == "invalid_event_id"
    assert caught.value.message.startswith("event 1: uuid")
