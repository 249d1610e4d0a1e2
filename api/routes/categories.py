"""Categories: everyone reads, administrators write. Reads are cached (namespace ``categories``)."""

from __future__ import annotations

from starlette.responses import Response

from api.errors import NotFound
from api.http.endpoint import JSON, Auth, Call, Operation, endpoint
from api.schemas.shop import Category, CategoryIn, CategoryPage, CategoryPath, CategoryQuery
from api.store import shop

NAMESPACE = "categories"


@endpoint(
    Operation(
        "listCategories",
        "List categories by name",
        "categories",
        response=CategoryPage,
        query=CategoryQuery,
    )
)
async def list_(call: Call) -> Response:
    query = call.query_as(CategoryQuery)
    db = call.services.db

    async def load() -> bytes:
        page = await shop.list_categories(db, limit=query.limit, offset=query.offset)
        items = [Category.model_validate(row) for row in page.rows]
        return (
            CategoryPage(items=items, total=page.total, limit=query.limit, offset=query.offset)
            .model_dump_json()
            .encode()
        )

    entry = f"list:{query.limit}:{query.offset}"
    body = await call.services.cache.get_or_load(NAMESPACE, "category_list", entry, load)
    return Response(body, media_type=JSON)


@endpoint(
    Operation(
        "getCategory",
        "One category",
        "categories",
        response=Category,
        path=CategoryPath,
        errors=(404,),
    )
)
async def get(call: Call) -> Response:
    category_id = call.path_as(CategoryPath).category_id
    db = call.services.db

    async def load() -> bytes:
        row = await shop.get_category(db, category_id)
        return b"" if row is None else Category.model_validate(row).model_dump_json().encode()

    body = await call.services.cache.get_or_load(NAMESPACE, "category", f"id:{category_id}", load)
    if not body:  # misses are cached too (as empty), so probing ids does not reach PostgreSQL
        raise NotFound(f"no category with id {category_id}")
    return Response(body, media_type=JSON)


@endpoint(
    Operation(
        "createCategory",
        "Create a category (administrators)",
        "categories",
        status=201,
        response=Category,
        body=CategoryIn,
        auth=Auth.ADMIN,
        errors=(409,),
    )
)
async def create(call: Call) -> Category:
    body = call.body_as(CategoryIn)
    row = await shop.create_category(call.services.db, name=body.name, description=body.description)
    await call.services.cache.invalidate(NAMESPACE)
    return Category.model_validate(row)


@endpoint(
    Operation(
        "updateCategory",
        "Replace a category (administrators)",
        "categories",
        response=Category,
        path=CategoryPath,
        body=CategoryIn,
        auth=Auth.ADMIN,
        errors=(404, 409),
    )
)
async def update(call: Call) -> Category:
    category_id = call.path_as(CategoryPath).category_id
    body = call.body_as(CategoryIn)
    row = await shop.update_category(
        call.services.db, category_id, name=body.name, description=body.description
    )
    if row is None:
        raise NotFound(f"no category with id {category_id}")
    await call.services.cache.invalidate(NAMESPACE)
    return Category.model_validate(row)


@endpoint(
    Operation(
        "deleteCategory",
        "Delete a category without products (administrators)",
        "categories",
        status=204,
        path=CategoryPath,
        auth=Auth.ADMIN,
        errors=(404, 409),
    )
)
async def delete(call: Call) -> None:
    category_id = call.path_as(CategoryPath).category_id
    if not await shop.delete_category(call.services.db, category_id):
        raise NotFound(f"no category with id {category_id}")
    await call.services.cache.invalidate(NAMESPACE)
