from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from api.schemas.common import Id, Name, RequestBody, ResponseBody

Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


# A dot-atom local part and a DNS name with an alphabetic top-level label (RFC 5322 without
# quoted local parts, IP literals or bare host names): what a shop's users actually have.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}$"


def _normalise_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    if len(local) > 64:  # RFC 5321; the pattern cannot say it (no look-ahead in pydantic's regex)
        raise ValueError("the part before the @ must not be longer than 64 characters")
    return f"{local}@{domain.lower()}"


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254, pattern=_EMAIL),
    Field(json_schema_extra={"format": "email"}),
    AfterValidator(_normalise_email),
]


class RegisterRequest(RequestBody):
    email: Email
    password: Password = Field(description="8 to 128 characters")
    name: Name


class LoginRequest(RequestBody):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class User(ResponseBody):
    id: Id
    email: str
    name: str
    role: Literal["user", "admin"]
    created_at: datetime


class Token(ResponseBody):
    access_token: str = Field(description="send it as `Authorization: Bearer <token>`")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_at: datetime
    expires_in: int = Field(description="seconds until the token expires")
