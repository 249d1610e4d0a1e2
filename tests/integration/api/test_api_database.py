"""The PostgreSQL side: the pool is sized from the configuration, and the list queries the API
really sends use the indexes made for them."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from apitest_helpers import ApiFactory
from sqlalchemy.dialects import postgresql

from api.db.tables import products


async def test_the_pool_never_opens_more_connections_than_configured(
    make_api: ApiFactory,
) -> None:
    async with make_api(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="2") as api:
        db = api.services.db
        query = sa.text("SELECT pg_backend_pid() FROM pg_sleep(0.15)")
        started = asyncio.get_running_loop().time()
        pids = await asyncio.gather(*(db.fetch_val(query) for _ in range(6)))
        spent = asyncio.get_running_loop().time() - started
        assert len(set(pids)) == 2  # six concurrent queries share two connections...
        assert spent >= 0.45  # ... so they ran two at a time, three rounds
        opened = await db.fetch_val(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        assert opened <= 1  # only the other pooled connection, idle


async def test_listing_by_category_uses_its_index(make_api: ApiFactory) -> None:
    async with make_api() as api:
        db = api.services.db
        for sql in (
            "INSERT INTO users (email, name, password_hash) VALUES ('o@shop.example', 'O', 'x')",
            "INSERT INTO categories (name) SELECT 'c' || n FROM generate_series(1, 20) n",
            # 5000 products in 19 busy categories, 10 in a small one
            "INSERT INTO products (name, price_cents, category_id, owner_id) "
            "SELECT 'p' || n, n, (SELECT min(id) FROM categories) + "
            "CASE WHEN n <= 10 THEN 19 ELSE n % 19 END, "
            "(SELECT id FROM users) FROM generate_series(1, 5010) n",
            "ANALYZE products",
        ):
            await db.execute(sa.text(sql))
        small = await db.fetch_val(sa.text("SELECT max(id) FROM categories"))
        # the two statements list_products sends for ?category_id=…: one page, and the total
        condition = products.c.category_id == small
        page = sa.select(products).where(condition).order_by(products.c.id.desc()).limit(20)
        total = sa.select(sa.func.count()).select_from(products).where(condition)
        for query in (page, total):
            sql = str(
                query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            )
            rows = await db.fetch_all(sa.text("EXPLAIN " + sql))
            plan = " ".join(" ".join(map(str, r.values())) for r in rows)
            assert "ix_products_category_id_id" in plan, plan
            assert "Seq Scan" not in plan, plan
