"""Types shared by the request and response models."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

MAX_ID = 2**63 - 1  # PostgreSQL bigint
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
_SOME_TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"  # ... and a name needs a visible character


def _whole_number(value: object) -> object:
    """JSON Schema counts 2.0 as an integer; so do we (2.5 stays an error)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)
Id = Annotated[int, Field(ge=1, le=MAX_ID), WholeNumber]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=_SOME_TEXT),
    AfterValidator(str.strip),
]
Description = Annotated[
    str,
    StringConstraints(max_length=2000, pattern=_NO_NUL),
    AfterValidator(str.strip),
]
SearchTerm = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_SOME_TEXT)]


class RequestBody(BaseModel):
    """Strict JSON bodies: no unknown fields, no "12" for an integer."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseBody(BaseModel):
    """What the API sends back (serialised with ``model_dump_json``)."""


class FieldError(ResponseBody):
    loc: str = Field(description="where the problem is, e.g. `body.email` or `query.limit`")
    msg: str


class ErrorBody(ResponseBody):
    """Every 4xx and 5xx response has this shape."""

    error: str = Field(description="machine-readable code, e.g. `validation_failed`")
    detail: str = Field(description="what is wrong, for humans")
    fields: list[FieldError] | None = Field(
        default=None, description="one entry per invalid input field (validation errors only)"
    )


class Pagination(BaseModel):
    """``?limit=&offset=`` of a list."""

    limit: int = Field(default=20, ge=1, le=100, description="items per page")
    offset: int = Field(default=0, ge=0, le=100_000, description="items to skip")
