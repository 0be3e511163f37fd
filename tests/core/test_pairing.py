"""The pairing payload's JSON form, short codes, session ids, expiry and the QR images."""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
import zxingcpp
from PIL import Image

from tests.conftest import PROJECT_ROOT
from web.core import pairing
from web.core.queries.base import App
from web.core.queries.pairings import (
    Pairing,
    delete_expired_pairings,
    insert_pairing,
    select_live_pairing,
)
from web.core.settings import DEFAULT_PUBLIC_URL

NOW = datetime(2026, 12, 7, 3, 4, 5, tzinfo=UTC)
APP = App("shop-ios", "Shop iOS", "wk_abc", False, NOW)
# Stored to the microsecond; the payload says the second (a smaller QR code).
EXPIRES = NOW + timedelta(days=7, microseconds=123456)
PAIRED = Pairing("abcdefgh23", "shop-ios", "qa-20261207-k3m9xq", NOW, EXPIRES)


def test_payload_is_the_documented_json_form() -> None:
    document = pairing.payload(PAIRED, APP, "https://lvd.example.com")

    assert list(document) == list(pairing.PAYLOAD_KEYS)
    assert document == {
        "lvd": 1,
        "app_id": "shop-ios",
        "session": "qa-20261207-k3m9xq",
        "ingest_url": "https://lvd.example.com/v1/session/qa-20261207-k3m9xq",
        "write_key": "wk_abc",
        "live_url": "https://lvd.example.com/p/abcdefgh23",
        "expires_at": "2026-12-14T03:04:05+00:00",
    }
    text = pairing.payload_text(document)
    assert " " not in text and "\n" not in text  # compact: a smaller QR code
    assert orjson.loads(text) == document == orjson.loads(pairing.payload_pretty(document))


def test_payload_keys_are_the_ones_docs_pairing_md_documents() -> None:
    text = (PROJECT_ROOT / "docs" / "PAIRING.md").read_text()
    for key in pairing.PAYLOAD_KEYS:
        assert f"| `{key}` |" in text, key


def test_ingest_url_quotes_a_session_that_is_not_path_safe() -> None:
    assert pairing.ingest_url("http://h", "a b/c") == "http://h/v1/session/a%20b%2Fc"


def test_short_codes_use_the_alphabet_and_length() -> None:
    codes = {pairing.new_code() for _ in range(2000)}

    assert len(codes) == 2000
    assert all(len(code) == pairing.CODE_LENGTH == 10 for code in codes)
    assert set("".join(codes)) == set(pairing.CODE_ALPHABET)
    assert len(pairing.CODE_ALPHABET) == 32 and not set("01lo") & set(pairing.CODE_ALPHABET)
    # 8+ characters of base32: at least 40 bits.
    assert pairing.CODE_LENGTH * math.log2(len(pairing.CODE_ALPHABET)) >= 40
    assert all(pairing.is_code(code) for code in codes)


@pytest.mark.parametrize(
    "text", ["", "abcdefgh2", "abcdefgh234", "ABCDEFGH23", "abcdefgh1o", "abcdefgh2/", "../../etc"]
)
def test_is_code_refuses_anything_else(text: str) -> None:
    assert not pairing.is_code(text)


def test_session_ids_are_readable_and_unique() -> None:
    ids = {pairing.new_session_id(NOW) for _ in range(500)}

    assert len(ids) == 500
    assert all(re.fullmatch(r"qa-20261207-[a-z2-9]{6}", found) for found in ids)
    assert all(len(found) <= 100 for found in ids)  # ingest's session rule


def test_public_base_prefers_lvd_public_url_when_set() -> None:
    assert pairing.public_base("https://qa.example.com/", "http://10.0.0.5:5001/") == (
        "https://qa.example.com"
    )
    assert pairing.public_base(DEFAULT_PUBLIC_URL, "http://10.0.0.5:5001/") == (
        "http://10.0.0.5:5001"
    )


@pytest.mark.parametrize(
    ("base", "reachable"),
    [
        ("http://127.0.0.1:5001", False),
        ("http://localhost:5001", False),
        ("http://[::1]:5001", False),
        ("http://192.168.1.20:5001", True),
        ("https://qa.example.com", True),
    ],
)
def test_reachable_from_a_phone(base: str, reachable: bool) -> None:
    assert pairing.reachable_from_a_phone(base) is reachable


def test_qr_images_decode_to_the_payload() -> None:
    text = pairing.payload_text(pairing.payload(PAIRED, APP, "https://lvd.example.com"))

    png = Image.open(io.BytesIO(pairing.qr_png(text)))
    found = zxingcpp.read_barcodes(png)
    assert [(code.format, code.text) for code in found] == [(zxingcpp.BarcodeFormat.QRCode, text)]
    svg = pairing.qr_svg(text).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "style=" not in svg and "<script" not in svg  # the page's CSP allows neither


async def test_pairings_expire_on_the_database_clock(pool: asyncpg.Pool, test_app_row: App) -> None:
    async with pool.acquire() as conn:
        fresh = await insert_pairing(
            conn, code=pairing.new_code(), app_id=test_app_row.id, session="s1", days=7
        )
        assert fresh is not None
        taken = await insert_pairing(
            conn, code=fresh.code, app_id=test_app_row.id, session="s2", days=7
        )
        assert taken is None  # the caller draws another code
        lifetime = fresh.expires_at - fresh.created_at
        assert lifetime == timedelta(days=pairing.PAIRING_DAYS)
        assert await select_live_pairing(conn, fresh.code) == fresh

        await conn.execute(
            "UPDATE pairings SET created_at = now() - interval '8 days',"
            " expires_at = now() - interval '1 day' WHERE code = $1",
            fresh.code,
        )
        assert await select_live_pairing(conn, fresh.code) is None
        assert await delete_expired_pairings(conn) >= 1
        assert await conn.fetchval("SELECT count(*) FROM pairings WHERE code = $1", fresh.code) == 0


async def test_start_pairing_makes_a_session_and_a_code(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    async with pool.acquire() as conn:
        made = await pairing.start_pairing(conn, test_app_row.id, NOW)
        again = await pairing.start_pairing(conn, test_app_row.id, NOW)

    assert made.app_id == test_app_row.id
    assert pairing.is_code(made.code) and made.session.startswith("qa-20261207-")
    assert (made.code, made.session) != (again.code, again.session)
