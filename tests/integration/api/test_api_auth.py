"""Registration, login, logout, /users/me and the token lifecycle."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from apitest_helpers import Api, ApiFactory

from api.auth import hash_token


async def test_register_login_me_logout(api: Api) -> None:
    created = await api.register("Ann@Shop.Example", password="correct horse", name="Ann")
    assert created["email"] == "Ann@shop.example"  # domain normalised
    assert created["role"] == "user"
    assert set(created) == {"id", "email", "name", "role", "created_at"}

    response = await api.client.post(
        "/auth/login", json={"email": "ann@SHOP.example", "password": "correct horse"}
    )
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 86_400
    headers = {"Authorization": f"Bearer {token['access_token']}"}

    me = await api.client.get("/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == created["id"]

    assert (await api.client.post("/auth/logout", headers=headers)).status_code == 204
    after = await api.client.get("/users/me", headers=headers)
    assert after.status_code == 401
    assert after.json()["error"] == "unauthorized"
    assert after.headers["www-authenticate"].startswith("Bearer")


async def test_password_is_stored_as_argon2id(api: Api) -> None:
    await api.register("hash@shop.example", password="correct horse")
    row = await api.services.db.fetch_one(
        sa.text("SELECT password_hash FROM users WHERE email = 'hash@shop.example'")
    )
    assert row is not None
    assert row["password_hash"].startswith("$argon2id$")
    assert "correct horse" not in row["password_hash"]


async def test_duplicate_email_is_409_whatever_the_case(api: Api) -> None:
    await api.register("dup@shop.example")
    response = await api.client.post(
        "/auth/register",
        json={"email": "DUP@shop.example", "password": "another one", "name": "Bob"},
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "a user with this email is already registered",
    }


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    await api.register("known@shop.example")
    wrong = await api.client.post(
        "/auth/login", json={"email": "known@shop.example", "password": "wrong password"}
    )
    unknown = await api.client.post(
        "/auth/login", json={"email": "nobody@shop.example", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "unauthorized",
            "detail": "wrong email or password",
        }
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"email": "not-an-email", "password": "long enough", "name": "x"}, "body.email"),
        ({"email": "a@shop.example", "password": "short", "name": "x"}, "body.password"),
        ({"email": "a@shop.example", "password": "long enough", "name": "   "}, "body.name"),
        ({"email": "a@shop.example", "password": "long enough", "name": "a\u0000b"}, "body.name"),
        ({"email": "a@shop.example", "password": "long enough"}, "body.name"),
        ({"email": "a@shop.example", "password": "long enough", "name": "x", "role": "admin"},
         "body.role"),
        ({"email": 5, "password": "long enough", "name": "x"}, "body.email"),
    ],
)  # fmt: skip
async def test_invalid_registration_is_422_naming_the_field(api: Api, body: dict, loc: str) -> None:
    response = await api.client.post("/auth/register", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "validation_failed"
    assert loc in [f["loc"] for f in payload["fields"]]
    count = await api.services.db.fetch_val(sa.text("SELECT count(*) FROM users"))
    assert count == 0  # bad input changes nothing


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b'{"name": "\\ud800"}', "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 422, "validation_failed"),
        (b"email=a@b.c", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
async def test_malformed_bodies_get_4xx(
    api: Api, content: bytes, content_type: str, status: int, error: str
) -> None:
    response = await api.client.post(
        "/auth/register", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer dl_" + "x" * 43],
)
async def test_missing_or_bad_tokens_are_401(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await api.client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_tokens_expire(api: Api) -> None:
    headers = await api.user("expiring@shop.example")
    assert (await api.client.get("/users/me", headers=headers)).status_code == 200
    api.clock.advance(86_400 + 1)
    response = await api.client.get("/users/me", headers=headers)
    assert response.status_code == 401


async def test_only_a_hash_of_the_token_is_stored(api: Api) -> None:
    headers = await api.user("stored@shop.example")
    token = headers["Authorization"].removeprefix("Bearer ")
    rows = await api.services.db.fetch_all(sa.text("SELECT token_hash FROM auth_tokens"))
    assert [bytes(r["token_hash"]) for r in rows] == [hash_token(token)]


async def test_logout_revokes_on_every_replica(make_api: ApiFactory) -> None:
    """Two app instances share PostgreSQL and Redis: a token revoked on one fails on the other."""
    async with make_api() as first, make_api() as second:
        headers = await first.user("replicas@shop.example")
        assert (await second.client.get("/users/me", headers=headers)).status_code == 200  # cached
        assert (await first.client.post("/auth/logout", headers=headers)).status_code == 204
        assert (await second.client.get("/users/me", headers=headers)).status_code == 401


async def test_create_admin_promotes_an_existing_user(api: Api) -> None:
    await api.register("boss@shop.example")
    headers = await api.admin("boss@shop.example")
    me = await api.client.get("/users/me", headers=headers)
    assert me.json()["role"] == "admin"


async def test_a_hash_with_other_parameters_is_upgraded_at_the_next_login(
    make_api: ApiFactory,
) -> None:
    """Changing ARGON2_* is safe: old hashes still verify and are rehashed with the new cost."""
    query = sa.text("SELECT password_hash FROM users WHERE email = 'old@shop.example'")
    async with make_api(ARGON2_TIME_COST="1", ARGON2_MEMORY_KIB="1024") as before:
        await before.register("old@shop.example", password="correct horse")
        old = (await before.services.db.fetch_one(query))["password_hash"]  # type: ignore[index]
    assert "$m=1024,t=1,p=1$" in old
    async with make_api(ARGON2_TIME_COST="2", ARGON2_MEMORY_KIB="2048") as after:
        wrong = {"email": "old@shop.example", "password": "wrong horse"}
        assert (await after.client.post("/auth/login", json=wrong)).status_code == 401
        assert (await after.services.db.fetch_one(query))["password_hash"] == old  # type: ignore[index]
        right = {"email": "old@shop.example", "password": "correct horse"}
        assert (await after.client.post("/auth/login", json=right)).status_code == 200
        new = (await after.services.db.fetch_one(query))["password_hash"]  # type: ignore[index]
        assert "$m=2048,t=2,p=1$" in new
        assert (await after.client.post("/auth/login", json=right)).status_code == 200
