from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import ResponseBody


class Live(ResponseBody):
    status: Literal["ok"] = "ok"


class Ready(ResponseBody):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(
        description="`postgres`, `redis`, `schema`: `ok` or what is wrong"
    )


class Version(ResponseBody):
    version: str
    revision: str
    image_tag: str
