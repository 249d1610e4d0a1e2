"""Categories and products."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from api.db.database import Db, Row
from api.db.tables import categories, products
from api.errors import Conflict, IntegrityViolation
from api.errors import FieldIssue as Issue


@dataclass(frozen=True)
class Page:
    rows: Sequence[Row]
    total: int


async def _page(db: Db, query: sa.Select[Any], count: sa.Select[Any],
                limit: int, offset: int) -> Page:  # fmt: skip
    """One round trip: the rows carry the total as a window count (a second query only when the
    offset is past the end)."""
    windowed = query.add_columns(sa.func.count().over().label("_total")).limit(limit).offset(offset)
    rows = await db.fetch_all(windowed)
    if rows:
        total = int(rows[0]["_total"])
        return Page([{k: v for k, v in row.items() if k != "_total"} for row in rows], total)
    return Page([], int(await db.fetch_val(count) or 0))


# ------------------------------------------------------------------ categories


def _category_conflict(exc: IntegrityViolation) -> Exception:
    if exc.kind == "unique":
        return Conflict("a category with this name already exists")
    return exc


async def list_categories(db: Db, *, limit: int, offset: int) -> Page:
    query = sa.select(categories).order_by(categories.c.name, categories.c.id)
    count = sa.select(sa.func.count()).select_from(categories)
    return await _page(db, query, count, limit, offset)


async def get_category(db: Db, category_id: int) -> Row | None:
    return await db.fetch_one(sa.select(categories).where(categories.c.id == category_id))


async def create_category(db: Db, *, name: str, description: str) -> Row:
    query = categories.insert().values(name=name, description=description).returning(categories)
    try:
        row = await db.fetch_one(query)
    except IntegrityViolation as exc:
        raise _category_conflict(exc) from exc
    assert row is not None
    return row


async def update_category(db: Db, category_id: int, *, name: str, description: str) -> Row | None:
    query = (
        categories.update()
        .where(categories.c.id == category_id)
        .values(name=name, description=description, updated_at=sa.func.now())
        .returning(categories)
    )
    try:
        return await db.fetch_one(query)
    except IntegrityViolation as exc:
        raise _category_conflict(exc) from exc


async def delete_category(db: Db, category_id: int) -> bool:
    query = categories.delete().where(categories.c.id == category_id).returning(categories.c.id)
    try:
        return await db.fetch_one(query) is not None
    except IntegrityViolation as exc:
        if exc.kind == "foreign_key":
            raise Conflict("the category still has products; move or delete them first") from exc
        raise


# ------------------------------------------------------------------ products


def _unknown_category(exc: IntegrityViolation) -> Exception:
    if exc.kind == "foreign_key":
        # 409, not 422: the body is well-formed; it refers to something that is not there (now)
        return Conflict(
            "the category does not exist",
            fields=(Issue("body.category_id", "no category with this id"),),
        )
    return exc


async def list_products(
    db: Db, *, limit: int, offset: int, category_id: int | None, q: str | None
) -> Page:
    conditions = []
    if category_id is not None:
        conditions.append(products.c.category_id == category_id)
    if q:
        conditions.append(products.c.name.icontains(q, autoescape=True))
    query = sa.select(products).where(*conditions).order_by(products.c.id.desc())
    count = sa.select(sa.func.count()).select_from(products).where(*conditions)
    return await _page(db, query, count, limit, offset)


async def get_product(db: Db, product_id: int) -> Row | None:
    return await db.fetch_one(sa.select(products).where(products.c.id == product_id))


async def create_product(
    db: Db, *, owner_id: int, name: str, description: str, price_cents: int, category_id: int
) -> Row:
    query = (
        products.insert()
        .values(
            owner_id=owner_id,
            name=name,
            description=description,
            price_cents=price_cents,
            category_id=category_id,
        )
        .returning(products)
    )
    try:
        row = await db.fetch_one(query)
    except IntegrityViolation as exc:
        raise _unknown_category(exc) from exc
    assert row is not None
    return row


async def update_product(
    db: Db, product_id: int, *, name: str, description: str, price_cents: int, category_id: int
) -> Row | None:
    query = (
        products.update()
        .where(products.c.id == product_id)
        .values(
            name=name,
            description=description,
            price_cents=price_cents,
            category_id=category_id,
            updated_at=sa.func.now(),
        )
        .returning(products)
    )
    try:
        return await db.fetch_one(query)
    except IntegrityViolation as exc:
        raise _unknown_category(exc) from exc


async def delete_product(db: Db, product_id: int) -> bool:
    query = products.delete().where(products.c.id == product_id).returning(products.c.id)
    return await db.fetch_one(query) is not None
