"""Logs as JSON lines on stdout (loguru), one object per line.

Fields: ``ts`` (UTC, ISO 8601), ``level``, ``message``, ``logger``, then whatever the request
context bound (``trace_id``, ``request_id``, ``method``, ``route``, ``status``, ``duration_ms``,
``client_ip``, ``user_id``, ...) and ``exception`` with the traceback when there is one. Standard
``logging`` records (uvicorn, alembic, asyncio) are routed through the same sink.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC
from typing import Any, TextIO

from loguru import logger

from api.settings import LogSettings


class JsonSink:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, message: Any) -> None:
        record = message.record
        line: dict[str, Any] = {
            "ts": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["extra"].get("logger") or record["name"],
        }
        for key, value in record["extra"].items():
            if key != "logger":
                line[key] = value
        if record["exception"] is not None:
            exc_type, exc_value, tb = record["exception"]
            line["exception"] = "".join(traceback.format_exception(exc_type, exc_value, tb))
        self._stream.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
        self._stream.flush()


class _InterceptHandler(logging.Handler):
    """Send standard-library log records to loguru (the recipe from loguru's documentation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(logger=record.name).opt(exception=record.exc_info).log(
            level, record.getMessage()
        )


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    logger.remove()
    logger.add(JsonSink(stream or sys.stdout), level=settings.level, format="{message}")
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "databases"):
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    # uvicorn's per-request access log duplicates ours; asyncpg/databases debug logs carry SQL args
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("databases").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
