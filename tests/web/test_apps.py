"""Apps: the JSON API under /api/apps and the HTML create form with its same-origin check."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.support import assert_error, json_of
from web.core.queries.apps import select_app
from web.core.queries.base import App

JSON = {"Content-Type": "application/json"}
APP_KEYS = {"id", "name", "write_key", "require_write_key", "created_at"}


def fresh_id(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def stored_app(pool: asyncpg.Pool, app_id: str) -> App | None:
    async with pool.acquire() as conn:
        return await select_app(conn, app_id)


async def test_apps_create_answers_201_with_write_key(client: Client, pool: asyncpg.Pool) -> None:
    app_id = fresh_id()

    response = await client.post("/api/apps", json={"id": app_id, "name": "Shop (iOS)"})

    assert response.status_code == 201
    body = await json_of(response)
    assert set(body) >= APP_KEYS
    assert body["id"] == app_id
    assert body["name"] == "Shop (iOS)"
    assert body["write_key"].startswith("wk_")
    assert len(body["write_key"]) > 20
    assert body["require_write_key"] is False
    datetime.fromisoformat(body["created_at"])
    stored = await stored_app(pool, app_id)
    assert stored is not None
    assert stored.write_key == body["write_key"]


async def test_apps_create_gives_each_app_its_own_key(client: Client) -> None:
    first = await json_of(await client.post("/api/apps", json={"id": fresh_id()}))
    second = await json_of(await client.post("/api/apps", json={"id": fresh_id()}))

    assert first["write_key"] != second["write_key"]


async def test_apps_create_without_name_uses_id(client: Client) -> None:
    app_id = fresh_id()

    body = await json_of(await client.post("/api/apps", json={"id": app_id, "name": "  "}))

    assert body["name"] == app_id


async def test_apps_create_repeat_answers_409(client: Client, pool: asyncpg.Pool) -> None:
    app_id = fresh_id()
    first = await client.post("/api/apps", json={"id": app_id, "name": "First"})

    second = await client.post("/api/apps", json={"id": app_id, "name": "Second"})

    assert first.status_code == 201
    await assert_error(second, 409, "app_exists")
    stored = await stored_app(pool, app_id)
    assert stored is not None
    assert stored.name == "First"


@pytest.mark.parametrize(
    "app_id",
    [
        pytest.param("Shop", id="uppercase"),
        pytest.param("-shop", id="leading-dash"),
        pytest.param("_shop", id="leading-underscore"),
        pytest.param("a" * 64, id="64-chars"),
        pytest.param("", id="empty"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(["shop"], id="array"),
        pytest.param("../etc/passwd", id="path-traversal"),
        pytest.param("shop/../admin", id="slash"),
        pytest.param("shop app", id="space"),
        pytest.param("shop\n", id="trailing-newline"),
        pytest.param("caf\u00e9", id="non-ascii"),
    ],
)
async def test_apps_create_bad_id_answers_400(
    client: Client, pool: asyncpg.Pool, app_id: Any
) -> None:
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM apps")

    response = await client.post("/api/apps", json={"id": app_id, "name": "x"})

    await assert_error(response, 400, "invalid_app_id")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM apps") == before


async def test_apps_create_63_char_id_is_accepted(client: Client) -> None:
    app_id = "a" + uuid.uuid4().hex + "b" * 30
    assert len(app_id) == 63

    response = await client.post("/api/apps", json={"id": app_id})

    assert response.status_code == 201


async def test_apps_create_missing_id_answers_400(client: Client) -> None:
    response = await client.post("/api/apps", json={"name": "no id"})

    await assert_error(response, 400, "invalid_app_id")


async def test_apps_create_overlong_name_answers_400(client: Client) -> None:
    response = await client.post("/api/apps", json={"id": fresh_id(), "name": "n" * 201})

    await assert_error(response, 400, "invalid_app_name")


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"id": "x"} trailing', b"\xff\xfe", b'{"id": NaN}'],
    ids=["empty", "truncated", "trailing-garbage", "invalid-utf8", "nan"],
)
async def test_apps_create_invalid_json_answers_400(client: Client, body: bytes) -> None:
    response = await client.post("/api/apps", data=body, headers=JSON)

    await assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("body", [b"[]", b'"shop"', b"7"], ids=["array", "string", "number"])
async def test_apps_create_non_object_answers_400(client: Client, body: bytes) -> None:
    response = await client.post("/api/apps", data=body, headers=JSON)

    await assert_error(response, 400, "invalid_top_level")


async def test_apps_list_includes_created_apps(client: Client) -> None:
    ids = sorted(fresh_id("list") for _ in range(2))
    for app_id in ids:
        assert (await client.post("/api/apps", json={"id": app_id})).status_code == 201

    response = await client.get("/api/apps")

    assert response.status_code == 200
    listed = (await json_of(response))["apps"]
    assert all(set(app) >= APP_KEYS for app in listed)
    listed_ids = [app["id"] for app in listed]
    assert listed_ids == sorted(listed_ids)
    assert set(ids) <= set(listed_ids)


async def test_apps_get_answers_the_app(client: Client) -> None:
    app_id = fresh_id()
    created = await json_of(await client.post("/api/apps", json={"id": app_id, "name": "One"}))

    response = await client.get(f"/api/apps/{app_id}")

    assert response.status_code == 200
    assert await json_of(response) == created


async def test_apps_get_unknown_answers_404(client: Client) -> None:
    response = await client.get(f"/api/apps/{fresh_id('missing')}")

    await assert_error(response, 404, "unknown_app")


# --- the HTML form ----------------------------------------------------------------------


async def test_apps_form_post_redirects_to_app_page(client: Client, pool: asyncpg.Pool) -> None:
    app_id = fresh_id("form")

    response = await client.post("/apps", form={"id": app_id, "name": "From the form"})

    assert response.status_code == 303
    assert response.headers["Location"] == f"/apps/{app_id}"
    stored = await stored_app(pool, app_id)
    assert stored is not None
    assert stored.name == "From the form"


async def test_apps_form_same_origin_post_is_accepted(client: Client, pool: asyncpg.Pool) -> None:
    app_id = fresh_id("form")

    response = await client.post(
        "/apps",
        form={"id": app_id},
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )

    assert response.status_code == 303
    assert await stored_app(pool, app_id) is not None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="sec-fetch-same-site"),
        pytest.param({"Origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({"Origin": "null"}, id="null-origin"),
        pytest.param({"Origin": "http://localhost.evil.example"}, id="lookalike-origin"),
        pytest.param(
            {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
            id="foreign-origin-claiming-same-origin",
        ),
    ],
)
async def test_apps_form_cross_site_post_answers_403(
    client: Client, pool: asyncpg.Pool, headers: dict[str, str]
) -> None:
    app_id = fresh_id("csrf")

    response = await client.post(
        "/apps", form={"id": app_id}, headers={**headers, "Accept": "application/json"}
    )

    await assert_error(response, 403, "cross_site_request")
    assert await stored_app(pool, app_id) is None


async def test_apps_form_cross_site_post_answers_403_html_page(
    client: Client, pool: asyncpg.Pool
) -> None:
    app_id = fresh_id("csrf")

    response = await client.post(
        "/apps", form={"id": app_id}, headers={"Sec-Fetch-Site": "cross-site"}
    )

    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "cross_site_request" in await response.get_data(as_text=True)
    assert await stored_app(pool, app_id) is None


async def test_apps_api_cross_site_post_answers_403(client: Client, pool: asyncpg.Pool) -> None:
    app_id = fresh_id("csrf")

    response = await client.post(
        "/api/apps", json={"id": app_id}, headers={"Origin": "https://evil.example"}
    )

    await assert_error(response, 403, "cross_site_request")
    assert await stored_app(pool, app_id) is None


@pytest.mark.parametrize("app_id", ["Bad Id", "", "shop\n"], ids=["space", "empty", "newline"])
async def test_apps_form_bad_id_answers_400_page(client: Client, app_id: str) -> None:
    response = await client.post("/apps", form={"id": app_id, "name": "x"})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "invalid_app_id" in await response.get_data(as_text=True)
