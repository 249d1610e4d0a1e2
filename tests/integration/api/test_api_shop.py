"""Categories and products: every endpoint's success and error paths, pagination, filters."""

from __future__ import annotations

import pytest
from apitest_helpers import Api


async def _category(api: Api, admin: dict[str, str], name: str) -> dict:
    response = await api.client.post("/categories", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _product(
    api: Api, headers: dict[str, str], category_id: int, name: str, price: int = 100
) -> dict:
    body = {"name": name, "price_cents": price, "category_id": category_id}
    response = await api.client.post("/products", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_categories_crud_for_admins(api: Api) -> None:
    admin = await api.admin()
    created = await _category(api, admin, "Tools")
    assert created["description"] == ""
    listed = (await api.client.get("/categories")).json()
    assert [c["name"] for c in listed["items"]] == ["Tools"]
    assert listed["total"] == 1

    path = f"/categories/{created['id']}"
    assert (await api.client.get(path)).json()["name"] == "Tools"
    updated = await api.client.put(
        path, json={"name": "Hand tools", "description": "d"}, headers=admin
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Hand tools"
    assert (await api.client.get(path)).json()["description"] == "d"

    assert (await api.client.delete(path, headers=admin)).status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert (await api.client.delete(path, headers=admin)).status_code == 404
    assert (await api.client.put(path, json={"name": "x"}, headers=admin)).status_code == 404


async def test_category_writes_need_an_admin(api: Api) -> None:
    admin = await api.admin()
    user = await api.user("user@shop.example")
    category = await _category(api, admin, "Garden")
    path = f"/categories/{category['id']}"
    for method, url, body in (
        ("POST", "/categories", {"name": "Mine"}),
        ("PUT", path, {"name": "Mine"}),
        ("DELETE", path, None),
    ):
        anonymous = await api.client.request(method, url, json=body)
        assert anonymous.status_code == 401
        forbidden = await api.client.request(method, url, json=body, headers=user)
        assert forbidden.status_code == 403
        assert forbidden.json() == {
            "error": "forbidden",
            "detail": "only administrators may do this",
        }
    assert (await api.client.get(path)).json()["name"] == "Garden"  # unchanged


async def test_category_conflicts(api: Api) -> None:
    admin = await api.admin()
    garden = await _category(api, admin, "Garden")
    await _category(api, admin, "Kitchen")
    duplicate = await api.client.post("/categories", json={"name": "garden"}, headers=admin)
    assert duplicate.status_code == 409
    rename = await api.client.put(
        f"/categories/{garden['id']}", json={"name": "KITCHEN"}, headers=admin
    )
    assert rename.status_code == 409
    await _product(api, admin, garden["id"], "Rake")
    in_use = await api.client.delete(f"/categories/{garden['id']}", headers=admin)
    assert in_use.status_code == 409
    assert "products" in in_use.json()["detail"]


async def test_products_crud_and_ownership(api: Api) -> None:
    admin = await api.admin()
    owner = await api.user("owner@shop.example")
    other = await api.user("other@shop.example")
    category = await _category(api, admin, "Tools")
    product = await _product(api, owner, category["id"], "Hammer", 1999)
    assert product["price_cents"] == 1999
    path = f"/products/{product['id']}"

    body = {"name": "Claw hammer", "price_cents": 2499, "category_id": category["id"]}
    assert (await api.client.put(path, json=body)).status_code == 401
    denied = await api.client.put(path, json=body, headers=other)
    assert denied.status_code == 403
    assert (await api.client.delete(path, headers=other)).status_code == 403
    assert (await api.client.get(path)).json()["name"] == "Hammer"

    changed = await api.client.put(path, json=body, headers=owner)
    assert changed.status_code == 200
    assert changed.json()["name"] == "Claw hammer"
    by_admin = await api.client.put(path, json={**body, "price_cents": 1}, headers=admin)
    assert by_admin.json()["price_cents"] == 1
    assert by_admin.json()["owner_id"] == product["owner_id"]

    assert (await api.client.delete(path, headers=owner)).status_code == 204
    assert (await api.client.get(path)).status_code == 404
    assert (await api.client.put(path, json=body, headers=owner)).status_code == 404
    assert (await api.client.delete(path, headers=admin)).status_code == 404


async def test_product_with_unknown_category_is_409(api: Api) -> None:
    user = await api.user("u@shop.example")
    response = await api.client.post(
        "/products", json={"name": "Ghost", "price_cents": 1, "category_id": 999}, headers=user
    )
    assert response.status_code == 409
    assert response.json()["fields"] == [
        {"loc": "body.category_id", "msg": "no category with this id"}
    ]
    assert (await api.client.get("/products")).json()["total"] == 0


async def test_list_paginates_filters_and_searches(api: Api) -> None:
    admin = await api.admin()
    tools = await _category(api, admin, "Tools")
    garden = await _category(api, admin, "Garden")
    names = ["Hammer", "Saw", "Garden hose", "Hose reel", "Spade", "100%_cotton gloves"]
    for i, name in enumerate(names):
        await _product(api, admin, garden["id"] if i % 2 else tools["id"], name)

    first = (await api.client.get("/products", params={"limit": 4})).json()
    assert first["total"] == 6
    assert [p["name"] for p in first["items"]] == names[::-1][:4]  # newest first
    second = (await api.client.get("/products", params={"limit": 4, "offset": 4})).json()
    assert [p["name"] for p in second["items"]] == names[::-1][4:]
    past_end = (await api.client.get("/products", params={"offset": 50})).json()
    assert past_end == {"items": [], "total": 6, "limit": 20, "offset": 50}

    in_garden = (await api.client.get("/products", params={"category_id": garden["id"]})).json()
    assert {p["name"] for p in in_garden["items"]} == {"Saw", "Hose reel", "100%_cotton gloves"}
    hose = (await api.client.get("/products", params={"q": "HOSE"})).json()
    assert {p["name"] for p in hose["items"]} == {"Garden hose", "Hose reel"}
    both = (
        await api.client.get("/products", params={"q": "hose", "category_id": tools["id"]})
    ).json()
    assert [p["name"] for p in both["items"]] == ["Garden hose"]
    literal = (await api.client.get("/products", params={"q": "%_"})).json()  # not wildcards
    assert [p["name"] for p in literal["items"]] == ["100%_cotton gloves"]


async def test_search_uses_the_trigram_index(api: Api) -> None:
    import sqlalchemy as sa

    db = api.services.db
    async with db.transaction():
        await db.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = await db.fetch_all(
            sa.text("EXPLAIN SELECT id FROM products WHERE name ILIKE '%hose%'")
        )
    assert "ix_products_name_trgm" in " ".join(str(dict(r)) for r in plan)


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/products?limit=0", "query.limit"),
        ("/products?limit=101", "query.limit"),
        ("/products?limit=abc", "query.limit"),
        ("/products?offset=-1", "query.offset"),
        ("/products?category_id=0", "query.category_id"),
        ("/products?q=", "query.q"),
        ("/products?q=%00", "query.q"),
        ("/products/abc", "path.product_id"),
        ("/products/0", "path.product_id"),
        ("/products/99999999999999999999999", "path.product_id"),
        ("/categories/-1", "path.category_id"),
        ("/categories?limit=1000", "query.limit"),
    ],
)
async def test_invalid_parameters_are_422(api: Api, url: str, loc: str) -> None:
    response = await api.client.get(url)
    assert response.status_code == 422
    assert loc in [f["loc"] for f in response.json()["fields"]]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "price_cents": -1, "category_id": 1},
        {"name": "x", "price_cents": 1.5, "category_id": 1},
        {"name": "x", "price_cents": "1", "category_id": 1},
        {"name": "x", "price_cents": True, "category_id": 1},
        {"name": "x", "price_cents": 10**13, "category_id": 1},
        {"name": "x" * 201, "price_cents": 1, "category_id": 1},
        {"name": "x", "price_cents": 1, "category_id": 2**63},
        {"name": "x", "price_cents": 1},
    ],
)
async def test_invalid_product_bodies_are_422(api: Api, body: dict) -> None:
    user = await api.user("v@shop.example")
    response = await api.client.post("/products", json=body, headers=user)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_failed"


async def test_whole_floats_are_integers(api: Api) -> None:
    admin = await api.admin()
    category = await _category(api, admin, "Tools")
    body = {"name": "Nail", "price_cents": 5.0, "category_id": float(category["id"])}
    response = await api.client.post("/products", json=body, headers=admin)
    assert response.status_code == 201
    assert response.json()["price_cents"] == 5


async def test_unknown_paths_and_methods(api: Api) -> None:
    missing = await api.client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await api.client.patch("/products")
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert wrong.json()["error"] == "method_not_allowed"
