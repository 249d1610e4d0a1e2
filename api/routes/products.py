"""Products: everyone reads, signed-in users create, owners and administrators change.

Reads are cached (namespace ``products``); every write invalidates the namespace.
"""

from __future__ import annotations

import hashlib

from starlette.responses import Response

from api.auth import Principal
from api.db.database import Row
from api.errors import Forbidden, NotFound
from api.http.endpoint import JSON, Auth, Call, Operation, endpoint
from api.schemas.shop import Product, ProductIn, ProductPage, ProductPath, ProductQuery
from api.store import shop

NAMESPACE = "products"


@endpoint(
    Operation(
        "listProducts",
        "List products, newest first",
        "products",
        response=ProductPage,
        query=ProductQuery,
        description="Paginated with `limit`/`offset`; `category_id` filters by category, `q` "
        "searches names (case-insensitive substring).",
    )
)
async def list_(call: Call) -> Response:
    query = call.query_as(ProductQuery)
    db = call.services.db

    async def load() -> bytes:
        page = await shop.list_products(
            db, limit=query.limit, offset=query.offset, category_id=query.category_id, q=query.q
        )
        items = [Product.model_validate(row) for row in page.rows]
        return (
            ProductPage(items=items, total=page.total, limit=query.limit, offset=query.offset)
            .model_dump_json()
            .encode()
        )

    search = hashlib.sha256(query.q.encode()).hexdigest()[:32] if query.q else ""
    entry = f"list:{query.limit}:{query.offset}:{query.category_id or ''}:{search}"
    body = await call.services.cache.get_or_load(NAMESPACE, "product_list", entry, load)
    return Response(body, media_type=JSON)


@endpoint(
    Operation(
        "getProduct", "One product", "products", response=Product, path=ProductPath, errors=(404,)
    )
)
async def get(call: Call) -> Response:
    product_id = call.path_as(ProductPath).product_id
    db = call.services.db

    async def load() -> bytes:
        row = await shop.get_product(db, product_id)
        return b"" if row is None else Product.model_validate(row).model_dump_json().encode()

    body = await call.services.cache.get_or_load(NAMESPACE, "product", f"id:{product_id}", load)
    if not body:
        raise NotFound(f"no product with id {product_id}")
    return Response(body, media_type=JSON)


@endpoint(
    Operation(
        "createProduct",
        "Create a product (signed-in users; the caller owns it)",
        "products",
        status=201,
        response=Product,
        body=ProductIn,
        auth=Auth.USER,
        errors=(409,),
    )
)
async def create(call: Call) -> Product:
    body = call.body_as(ProductIn)
    services = call.services
    row = await shop.create_product(
        services.db,
        owner_id=call.user.user_id,
        name=body.name,
        description=body.description,
        price_cents=body.price_cents,
        category_id=body.category_id,
    )
    await services.cache.invalidate(NAMESPACE)
    services.metrics.products_created.labels(str(body.category_id)).inc()
    return Product.model_validate(row)


async def _owned(call: Call, product_id: int) -> Row:
    row = await shop.get_product(call.services.db, product_id)
    if row is None:
        raise NotFound(f"no product with id {product_id}")
    if not _may_change(call.user, row):
        raise Forbidden("only the product's owner or an administrator may change it")
    return row


def _may_change(user: Principal, row: Row) -> bool:
    return user.is_admin or row["owner_id"] == user.user_id


@endpoint(
    Operation(
        "updateProduct",
        "Replace a product (its owner or an administrator)",
        "products",
        response=Product,
        path=ProductPath,
        body=ProductIn,
        auth=Auth.USER,
        errors=(403, 404, 409),
    )
)
async def update(call: Call) -> Product:
    product_id = call.path_as(ProductPath).product_id
    body = call.body_as(ProductIn)
    await _owned(call, product_id)
    row = await shop.update_product(
        call.services.db,
        product_id,
        name=body.name,
        description=body.description,
        price_cents=body.price_cents,
        category_id=body.category_id,
    )
    if row is None:
        raise NotFound(f"no product with id {product_id}")
    await call.services.cache.invalidate(NAMESPACE)
    return Product.model_validate(row)


@endpoint(
    Operation(
        "deleteProduct",
        "Delete a product (its owner or an administrator)",
        "products",
        status=204,
        path=ProductPath,
        auth=Auth.USER,
        errors=(403, 404),
    )
)
async def delete(call: Call) -> None:
    product_id = call.path_as(ProductPath).product_id
    await _owned(call, product_id)
    if not await shop.delete_product(call.services.db, product_id):
        raise NotFound(f"no product with id {product_id}")
    await call.services.cache.invalidate(NAMESPACE)
