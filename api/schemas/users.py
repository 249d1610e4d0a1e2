from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.schemas.common import Id, Name, RequestBody, ResponseBody

Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]


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
