"""Input models: the edge cases that would otherwise reach PostgreSQL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas.shop import ProductIn, ProductQuery
from api.schemas.users import RegisterRequest


@pytest.mark.parametrize(
    "email",
    ["a.b+tag@shop.example", "x@sub.domain.io", "o'neil@shop.example"],
)
def test_plain_addresses_are_accepted(email: str) -> None:
    model = RegisterRequest(email=email, password="long enough", name="x")
    assert model.email.split("@")[0] == email.split("@")[0]


@pytest.mark.parametrize(
    "email",
    [".a@shop.example", "a..b@shop.example", "a@shop", "a@[127.0.0.1]", '"q"@shop.example',
     "a@shop.123", "x" * 65 + "@shop.example", "a b@shop.example"],
)  # fmt: skip
def test_unusual_addresses_are_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest(email=email, password="long enough", name="x")


def test_domain_is_lower_cased_local_part_kept() -> None:
    assert RegisterRequest(email="Ann@Shop.EXAMPLE", password="long enough", name="x").email == (
        "Ann@shop.example"
    )


def test_names_are_trimmed_and_need_a_visible_character() -> None:
    assert (
        ProductIn.model_validate_json(
            '{"name": "  Hammer  ", "price_cents": 1, "category_id": 1}'
        ).name
        == "Hammer"
    )
    with pytest.raises(ValidationError):
        ProductIn.model_validate_json('{"name": " \\t ", "price_cents": 1, "category_id": 1}')


def test_nul_bytes_never_reach_the_database() -> None:
    with pytest.raises(ValidationError):
        ProductIn.model_validate_json('{"name": "a\\u0000", "price_cents": 1, "category_id": 1}')
    with pytest.raises(ValidationError):
        ProductQuery.model_validate({"q": "a\x00"})
