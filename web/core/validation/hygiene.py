"""Hygiene checks: personal data, secrets and sizes near a destination's limit, as warnings.

Pure and fast: one pass over an event's values (keys are never flagged, only values), a
cheap test before each regular expression, and nothing allocated for a clean string. Every
finding is an Issue of severity "warning" (it never makes an event invalid) whose message
names the path and the kind and whose `actual` is masked: the value itself is never echoed.
docs/HYGIENE.md lists what each rule matches and what it leaves alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from web.core.validation.messages import pointer
from web.core.validation.verdict import Issue, Verdict

PII_EMAIL = "pii_email"
PII_PHONE = "pii_phone"
PII_CARD_NUMBER = "pii_card_number"
PII_JWT = "pii_jwt"
PII_API_KEY = "pii_api_key"
SIZE_NEAR_LIMIT = "size_near_limit"
RULES = (PII_EMAIL, PII_PHONE, PII_CARD_NUMBER, PII_JWT, PII_API_KEY, SIZE_NEAR_LIMIT)

# A warning when an event reaches this share of a destination's limit.
NEAR_LIMIT_SHARE = 0.8
# Shorter strings cannot hold any shape below ("+4420794" is the shortest phone: 8 digits).
_SHORTEST = 6
_SHORTEST_DIGITS = 8
_SHORTEST_SECRET = 20


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """A destination's size limit that one event must fit, and where it is published."""

    destination: str
    limit_bytes: int
    what: str
    source: str


SIZE_LIMITS: tuple[SizeLimit, ...] = (
    SizeLimit(
        "Segment",
        32 * 1024,
        "32 KB per event",
        "https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/",
    ),
    SizeLimit(
        "PostHog",
        1_000_000,
        "1 MB per event",
        "https://posthog.com/docs/data/ingestion-warnings",
    ),
    SizeLimit(
        "Amplitude",
        1_000_000,
        "1 MB per HTTP V2 API request",
        "https://amplitude.com/docs/apis/analytics/http-v2",
    ),
)
_SMALLEST_WARNED = min(int(limit.limit_bytes * NEAR_LIMIT_SHARE) for limit in SIZE_LIMITS)

_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# Runs of digits and separators, found in one pass (the pattern opens with a character set,
# which the regex engine skips ahead by); only these are read as phone or card numbers.
_NUMBERISH = re.compile(r"[+(\d][\d ().-]{6,}\d")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# A run may not continue a word, an id, a version, a path or a time; nor be followed by a word.
_NOT_BEFORE_NUMBER = _WORD | frozenset("+.,/:#=-")
# International (+ and a country code), North American with separators, and national forms
# with a trunk 0 and separators. A bare run of digits is an id, not a phone number.
_PHONE = re.compile(
    r"\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,4}\)?){1,5}[ .-]?\d{2,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[ .-]\d{3}[ .-]\d{4}"
    r"|0[1-9]\d{0,3}(?:[ .-]\d{2,6}){1,4}"
)
# Card numbers: 13 to 19 digits, single spaces or dashes between, starting with an issuer
# digit 2 to 6 (so epoch milliseconds, which start with 1, are left alone).
_CARD = re.compile(r"[2-6]\d{3}(?:[ -]?\d){9,15}")
_JWT = re.compile(r"(eyJ[A-Za-z0-9_-]{4,})\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# Well-known secret shapes; the group is the part kept when the value is masked.
_API_KEY = re.compile(
    r"(?P<stripe>(?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,247}"
    r"|(?P<aws>AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"
    r"|(?P<github>gh[pousr]_)[A-Za-z0-9]{36}(?![A-Za-z0-9])"
    r"|(?P<github_pat>github_pat_)[A-Za-z0-9_]{22,255}"
    r"|(?P<slack>xox[abprs]-)[A-Za-z0-9-]{10,250}"
    r"|(?P<slack_hook>https://hooks\.slack\.com/services/)T[A-Za-z0-9_/]{20,}"
    r"|(?P<google>AIza)[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"
)
_API_KEY_KINDS = {
    "stripe": "a Stripe secret key",
    "aws": "an AWS access key id",
    "github": "a GitHub token",
    "github_pat": "a GitHub fine-grained token",
    "slack": "a Slack token",
    "slack_hook": "a Slack webhook URL",
    "google": "a Google API key",
}

# What a string holds: (rule, kind as a message says it, the value masked).
Finding = tuple[str, str, str]


def check_hygiene(
    event: Mapping[str, Any], json_text: str | None = None, size_bytes: int | None = None
) -> list[Issue]:
    """Warnings about an event's values and size: its size measured on `json_text` (the event
    as parsing wrote it; written here when absent), or `size_bytes` when given."""
    issues: list[Issue] = []
    if _any_finding(event):
        _walk(event, (), issues)
    if size_bytes is None:
        size_bytes = json_size(json_text) if json_text is not None else len(orjson.dumps(event))
    if size_bytes >= _SMALLEST_WARNED:
        issues += size_issues(size_bytes)
    return issues


def json_size(text: str) -> int:
    """The UTF-8 size of JSON text, without encoding it when it is ASCII (the usual case)."""
    return len(text) if text.isascii() else len(text.encode())


def _is_mapping(node: Mapping[str, Any] | Sequence[Any]) -> TypeGuard[Mapping[str, Any]]:
    # A dict without the ABC's slow isinstance (nested values are dicts and lists only).
    return type(node) is dict or isinstance(node, Mapping)


def _any_finding(node: Mapping[str, Any] | Sequence[Any]) -> bool:
    """Whether any value holds a finding: the first, quick pass (values only, no paths, so
    most events cost little); the walk that says where runs only when one does."""
    values: Iterable[Any] = node.values() if _is_mapping(node) else node
    for item in values:
        kind = type(item)
        if kind is str:
            # Short, seen clean lately, or an id or a time (never remembered: each is new).
            if len(item) < _SHORTEST or item in _known_clean or _is_timestamp_or_uuid(item):
                continue
            if _scan(item):
                return True
            if len(item) <= _CLEAN_LONGEST:
                if len(_known_clean) >= _CLEAN_KEPT:
                    _known_clean.clear()
                _known_clean.add(item)
        elif kind is dict or kind is list:
            if _any_finding(item):
                return True
        elif kind is int and item >= 10**12 and _card_in_digits(str(item)):
            return True
    return False


def _walk(
    node: Mapping[str, Any] | Sequence[Any], at: tuple[str | int, ...], out: list[Issue]
) -> None:
    items = node.items() if _is_mapping(node) else enumerate(node)
    for key, item in items:
        kind = type(item)
        if kind is str:
            if len(item) >= _SHORTEST and item not in _known_clean:
                found = string_findings(item)
                if found:
                    out += _issues(found, (*at, key))
        elif kind is dict or kind is list:
            _walk(item, (*at, key), out)
        elif kind is int and item >= 10**12:
            card = _card_in_digits(str(item))
            if card:
                out += _issues([card], (*at, key))


# Strings found clean lately (event names, enum values, URLs, user agents repeat from event to
# event): the next sight of one costs a set lookup. Never a string with a finding, so no
# personal data is kept; cleared when full, so it holds what is common now.
_known_clean: set[str] = set()
_CLEAN_KEPT = 8192
_CLEAN_LONGEST = 512


def string_findings(text: str) -> list[Finding]:
    """Every kind of personal data or secret one string holds (the first of each kind)."""
    return [] if _is_timestamp_or_uuid(text) else _scan(text)


def _scan(text: str) -> list[Finding]:
    found: list[Finding] = []
    if "@" in text:
        _add(found, _email(text))
    if len(text) >= _SHORTEST_SECRET:
        if "eyJ" in text:
            _add(found, _jwt(text))
        if _may_hold_api_key(text):
            _add(found, _api_key(text))
    if len(text) >= _SHORTEST_DIGITS:
        numbers = _numbers(text)
        if numbers:
            _add(found, _card(numbers))
            _add(found, _phone(numbers))
    return found


def _is_timestamp_or_uuid(text: str) -> bool:
    """The two unique strings nearly every event carries, recognised by their punctuation
    (2025-12-10T15:45:00Z, 022bb90c-bbac-11e4-8dfc-aa07a5b093db): nothing to find in them."""
    size = len(text)
    if 19 <= size <= 35:
        return (
            text[4] == "-"
            and text[7] == "-"
            and text[10] in "T "
            and text[13] == ":"
            and text[:4].isdigit()
            and " " not in text[11:]
        )
    return size == 36 and text[8] == text[13] == text[18] == text[23] == "-" and " " not in text


def _add(found: list[Finding], finding: Finding | None) -> None:
    if finding is not None:
        found.append(finding)


def _numbers(text: str) -> list[str]:
    """The runs of digits and separators that stand alone (not inside an id, a version, a
    time or a word)."""
    runs = []
    match = _NUMBERISH.search(text)
    while match is not None:
        start, end = match.span()
        if (start == 0 or text[start - 1] not in _NOT_BEFORE_NUMBER) and (
            end == len(text) or text[end] not in _WORD
        ):
            runs.append(match[0])
        match = _NUMBERISH.search(text, end)
    return runs


def _may_hold_api_key(text: str) -> bool:
    """Whether the string holds a substring every secret shape above holds one of."""
    return (
        "_live_" in text
        or "_test_" in text
        or "AKIA" in text
        or "ASIA" in text
        or "gh" in text
        or "github_pat_" in text
        or "xox" in text
        or "AIza" in text
        or "hooks.slack.com" in text
    )


def _issues(found: list[Finding], at: tuple[str | int, ...]) -> list[Issue]:
    path = pointer(at)
    return [
        Issue(
            path,
            rule,
            f"{path or '/'} holds {kind} ({masked}): personal data and secrets should not be"
            " sent to analytics",
            None,
            masked,
            severity="warning",
        )
        for rule, kind, masked in found
    ]


def _email(text: str) -> Finding | None:
    at = text.find("@")
    while at > 0:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        domain = _EMAIL_DOMAIN.match(text, at + 1) if start < at else None
        if domain is not None:
            return PII_EMAIL, "an email address", mask_email(text[start:at], domain[0])
        at = text.find("@", at + 1)
    return None


def mask_email(local: str, domain: str) -> str:
    """j***@example.com: the first character of the mailbox and the domain."""
    return f"{local[0]}***@{domain}"


def _phone(numbers: list[str]) -> Finding | None:
    for run in numbers:
        if _phone_shaped(run):
            return PII_PHONE, "a phone number", mask_digits(run, 2)
    return None


def _phone_shaped(run: str) -> bool:
    return _PHONE.fullmatch(run) is not None and 8 <= sum(1 for char in run if char.isdigit()) <= 15


def _card(numbers: list[str]) -> Finding | None:
    for run in numbers:
        finding = _card_shaped(run)
        if finding:
            return finding
    return None


def _card_shaped(run: str) -> Finding | None:
    match = _CARD.match(run)
    return _card_in_digits(match[0]) if match is not None else None


def _card_in_digits(number: str) -> Finding | None:
    """A card number in this run (its groups read from the left), if one passes Luhn."""
    groups = number.replace("-", " ").split(" ")
    # A run of groups may carry more after the card (an expiry, a CVC): shorter prefixes too.
    while groups:
        digits = "".join(groups)
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
            return PII_CARD_NUMBER, "a card number", mask_digits(digits, 4)
        groups.pop()
    return None


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (ISO/IEC 7812)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_digits(value: str, shown: int) -> str:
    """***1111: only the last `shown` digits."""
    return "***" + "".join(char for char in value if char.isdigit())[-shown:]


def _jwt(text: str) -> Finding | None:
    for match in _JWT.finditer(text):
        if match.start() and text[match.start() - 1] in _TOKEN_CHARS:
            continue
        algorithm = _jwt_algorithm(match[1])
        if algorithm is not None:
            return PII_JWT, f"a JSON Web Token (alg {algorithm})", "eyJ***"
    return None


def _jwt_algorithm(header: str) -> str | None:
    """The "alg" of a JWT header in base64url, or None when it is not a JWT's header."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("alg"), str):
        return None
    return str(decoded["alg"])[:20]


def _api_key(text: str) -> Finding | None:
    for match in _API_KEY.finditer(text):
        if match.start() and text[match.start() - 1] in _TOKEN_CHARS:
            continue
        kind = match.lastgroup or ""
        return PII_API_KEY, _API_KEY_KINDS[kind], f"{match[kind]}***"
    return None


def size_issues(size_bytes: int) -> list[Issue]:
    """One warning naming every destination whose limit the event reaches 80 % of."""
    near = [limit for limit in SIZE_LIMITS if size_bytes >= limit.limit_bytes * NEAR_LIMIT_SHARE]
    if not near:
        return []
    parts = [_share(size_bytes, limit) for limit in near]
    return [
        Issue(
            "",
            SIZE_NEAR_LIMIT,
            f"the event is {size_bytes:,} bytes: {'; '.join(parts)}",
            {limit.destination: limit.limit_bytes for limit in near},
            size_bytes,
            severity="warning",
        )
    ]


def _share(size_bytes: int, limit: SizeLimit) -> str:
    percent = 100 * size_bytes / limit.limit_bytes
    if size_bytes > limit.limit_bytes:
        return f"over {limit.destination}'s limit of {limit.what} ({percent:.0f} %)"
    return f"{percent:.0f} % of {limit.destination}'s limit of {limit.what}"


def add_hygiene(
    verdict: Verdict,
    event: Mapping[str, Any],
    json_text: str | None = None,
    size_bytes: int | None = None,
) -> None:
    """Add the hygiene warnings of an event to its verdict (its status cannot change)."""
    found = check_hygiene(event, json_text, size_bytes)
    if found:
        verdict.issues += tuple(found)
