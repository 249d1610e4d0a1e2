"""Cache-aside in Redis: reads come from the cache; every write invalidates it on all replicas."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from apitest_helpers import Api, ApiFactory

from api.cache import Cache


def _count(api: Api, cache: str, result: str) -> float:
    value = api.services.metrics.registry.get_sample_value(
        "api_cache_requests_total", {"cache": cache, "result": result}
    )
    return value or 0.0


async def _rename_behind_the_apis_back(api: Api, name: str) -> None:
    await api.services.db.execute(sa.text("UPDATE products SET name = :n").bindparams(n=name))


async def test_listing_is_cached_and_invalidated_by_writes(api: Api) -> None:
    admin = await api.admin()
    category = (await api.client.post("/categories", json={"name": "Tools"}, headers=admin)).json()
    body = {"name": "Hammer", "price_cents": 5, "category_id": category["id"]}
    product = (await api.client.post("/products", json=body, headers=admin)).json()

    assert (await api.client.get("/products")).json()["items"][0]["name"] == "Hammer"
    assert _count(api, "product_list", "miss") == 1
    await _rename_behind_the_apis_back(api, "Changed in SQL")
    # served from Redis: the direct change is not visible yet
    assert (await api.client.get("/products")).json()["items"][0]["name"] == "Hammer"
    assert (await api.client.get(f"/products/{product['id']}")).json()["name"] == "Changed in SQL"
    assert _count(api, "product_list", "hit") == 1

    # any product write through the API invalidates every product entry
    other = {"name": "Saw", "price_cents": 7, "category_id": category["id"]}
    assert (await api.client.post("/products", json=other, headers=admin)).status_code == 201
    names = [p["name"] for p in (await api.client.get("/products")).json()["items"]]
    assert names == ["Saw", "Changed in SQL"]

    await api.client.put(
        f"/products/{product['id']}", json={**body, "name": "Mallet"}, headers=admin
    )
    assert (await api.client.get(f"/products/{product['id']}")).json()["name"] == "Mallet"
    await api.client.delete(f"/products/{product['id']}", headers=admin)
    assert (await api.client.get("/products")).json()["total"] == 1
    assert (await api.client.get(f"/products/{product['id']}")).status_code == 404


async def test_category_cache_is_invalidated_by_category_writes(api: Api) -> None:
    admin = await api.admin()
    created = (await api.client.post("/categories", json={"name": "Tools"}, headers=admin)).json()
    assert (await api.client.get("/categories")).json()["total"] == 1
    assert (await api.client.get(f"/categories/{created['id']}")).status_code == 200
    await api.client.put(f"/categories/{created['id']}", json={"name": "Toolz"}, headers=admin)
    assert (await api.client.get("/categories")).json()["items"][0]["name"] == "Toolz"
    assert (await api.client.get(f"/categories/{created['id']}")).json()["name"] == "Toolz"
    await api.client.delete(f"/categories/{created['id']}", headers=admin)
    assert (await api.client.get("/categories")).json()["total"] == 0
    assert (await api.client.get(f"/categories/{created['id']}")).status_code == 404


async def test_a_write_on_one_replica_reaches_the_others_within_the_sync_interval(
    make_api: ApiFactory,
) -> None:
    async with make_api() as first, make_api() as second:  # CACHE_LOCAL_SYNC_MS=100
        admin = await first.admin()
        created = await first.client.post("/categories", json={"name": "A"}, headers=admin)
        category = created.json()
        assert (await second.client.get("/products")).json()["total"] == 0  # cached on "second"
        body = {"name": "New", "price_cents": 1, "category_id": category["id"]}
        assert (await first.client.post("/products", json=body, headers=admin)).status_code == 201
        assert (await first.client.get("/products")).json()["total"] == 1  # at once on "first"
        written = time.monotonic()
        while (await second.client.get("/products")).json()["total"] != 1:
            assert time.monotonic() - written < 0.5, "the other replica still serves stale data"
            await asyncio.sleep(0.01)


async def test_without_the_local_tier_other_replicas_see_writes_at_once(
    make_api: ApiFactory,
) -> None:
    async with (
        make_api(CACHE_LOCAL_SYNC_MS="0") as first,
        make_api(CACHE_LOCAL_SYNC_MS="0") as second,
    ):
        admin = await first.admin()
        created = await first.client.post("/categories", json={"name": "A"}, headers=admin)
        assert (await second.client.get("/products")).json()["total"] == 0
        body = {"name": "New", "price_cents": 1, "category_id": created.json()["id"]}
        assert (await first.client.post("/products", json=body, headers=admin)).status_code == 201
        assert (await second.client.get("/products")).json()["total"] == 1


async def test_a_slow_reader_does_not_cache_data_older_than_a_write(api: Api) -> None:
    """The classic cache-aside race: a reader loads, a write invalidates, the reader stores."""
    cache: Cache = api.services.cache
    loaded = asyncio.Event()
    proceed = asyncio.Event()

    async def slow_load() -> bytes:
        loaded.set()
        await proceed.wait()
        return b"stale"

    reader = asyncio.create_task(cache.get_or_load("race", "product_list", "e", slow_load))
    await loaded.wait()
    await cache.invalidate("race")  # a write commits while the reader is loading
    proceed.set()
    assert await reader == b"stale"  # the reader itself answers with what it read

    async def fresh_load() -> bytes:
        return b"fresh"

    # ... but did not store it: the next reader loads again
    assert await cache.get_or_load("race", "product_list", "e", fresh_load) == b"fresh"
