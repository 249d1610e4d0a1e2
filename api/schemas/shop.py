"""Categories and products."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import (
    MAX_ID,
    Description,
    Id,
    Name,
    Pagination,
    RequestBody,
    ResponseBody,
    SearchTerm,
    WholeNumber,
)


class CategoryPath(BaseModel):
    category_id: Id


class ProductPath(BaseModel):
    product_id: Id


class CategoryIn(RequestBody):
    name: Name
    description: Description = ""


class Category(ResponseBody):
    id: Id
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class CategoryPage(ResponseBody):
    items: list[Category]
    total: int
    limit: int
    offset: int


class CategoryQuery(Pagination):
    pass


class ProductIn(RequestBody):
    name: Name
    description: Description = ""
    price_cents: Annotated[
        int, Field(ge=0, le=10**12, description="price in cents (minor units)"), WholeNumber
    ]
    category_id: Id


class Product(ResponseBody):
    id: Id
    name: str
    description: str
    price_cents: int
    category_id: Id
    owner_id: Id
    created_at: datetime
    updated_at: datetime


class ProductPage(ResponseBody):
    items: list[Product]
    total: int
    limit: int
    offset: int


class ProductQuery(Pagination):
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="only this category")
    q: SearchTerm | None = Field(default=None, description="name contains this (case-insensitive)")
