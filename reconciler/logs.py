"""Logging: loguru, one JSON object per line on stderr (``log.format: json``) or readable text.

Every line carries ``stack``, ``revision`` and ``phase`` (context variables the pass sets, so they
follow it across await points) and is masked for secrets by the agent's
:class:`~reconciler.masking.Masker` (its known secrets, URL credentials, token shapes and the
values of secret-looking variables in field diffs).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

from reconciler.masking import Masker

if TYPE_CHECKING:
    from loguru import Message, Record

#: set by the pipeline; every log line of the pass carries them
current_revision: ContextVar[str | None] = ContextVar("current_revision", default=None)
current_phase: ContextVar[str | None] = ContextVar("current_phase", default=None)
current_stack: ContextVar[str | None] = ContextVar("current_stack", default=None)


def _patch(record: Record) -> None:
    extra = record["extra"]
    if extra.get("revision") is None:
        extra["revision"] = current_revision.get()
    if extra.get("phase") is None:
        extra["phase"] = current_phase.get()
    if extra.get("stack") is None:
        extra["stack"] = current_stack.get()


def _json_sink(stream: TextIO, mask: Callable[[str], str]) -> Any:
    def sink(message: Message) -> None:
        record: Record = message.record
        extra = dict(record["extra"])
        payload: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "message": mask(record["message"]),
            "stack": extra.pop("stack", None),
            "revision": extra.pop("revision", None),
            "phase": extra.pop("phase", None),
            "logger": record["name"],
        }
        for key, value in extra.items():
            payload[key] = mask(value) if isinstance(value, str) else value
        if record["exception"] is not None:
            exc = record["exception"]
            payload["exception"] = mask(f"{exc.type.__name__ if exc.type else ''}: {exc.value}")
        stream.write(json.dumps(payload, default=str) + "\n")
        stream.flush()

    return sink


def _text_format(mask: Callable[[str], str]) -> Callable[[Record], str]:
    def fmt(record: Record) -> str:
        return _text_line(record, mask)

    return fmt


def _text_line(record: Record, mask: Callable[[str], str]) -> str:
    extra = record["extra"]
    rev = str(extra.get("revision") or "-")[:12]
    phase = extra.get("phase") or "-"
    record["extra"]["_masked"] = mask(record["message"])
    return (
        "<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> "
        f"[{rev} {phase}] " + "{extra[_masked]}\n{exception}"
    )


def setup_logging(
    level: str = "INFO",
    fmt: str = "json",
    stream: TextIO | None = None,
    masker: Masker | None = None,
) -> None:
    logger.remove()
    logger.configure(patcher=_patch)
    out = stream or sys.stderr
    mask = (masker or Masker()).mask
    if fmt == "json":
        logger.add(_json_sink(out, mask), level=level.upper(), backtrace=False, diagnose=False)
    else:
        logger.add(
            out, level=level.upper(), format=_text_format(mask), backtrace=False, diagnose=False
        )
