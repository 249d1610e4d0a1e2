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
import threading
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

from loguru import logger

from api.settings import LogSettings


class JsonSink:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

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
        self.emit(line)

    def emit(self, line: dict[str, Any]) -> None:
        # not named ``write``: loguru would take the sink for a file and hand it strings
        text = json.dumps(line, default=str, ensure_ascii=False) + "\n"
        with self._lock:
            self._stream.write(text)
            self._stream.flush()


class AccessLog:
    """One line per request, in the same JSON format as every other line.

    A request line carries all its fields already, so it skips loguru's record building (the
    largest cost of a cached read) and goes straight to the configured sink, at the configured
    level. Without a configured sink (tests, embedding) it goes through loguru as usual.
    """

    def __init__(self) -> None:
        self.sink: JsonSink | None = None
        self.level_no = 0

    def enabled(self, level: str) -> bool:
        return self.sink is None or _LEVEL_NO[level] >= self.level_no

    def write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if self.sink is None:
            logger.bind(**fields).log(level, message)
            return
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "message": message,
            "logger": "api.access",
            **fields,
        }
        self.sink.emit(line)


_LEVEL_NO = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40,
             "CRITICAL": 50}  # fmt: skip
access_log = AccessLog()


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
    sink = JsonSink(stream or sys.stdout)
    logger.add(sink, level=settings.level, format="{message}")
    access_log.sink, access_log.level_no = sink, _LEVEL_NO[settings.level]
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "databases"):
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    # uvicorn's per-request access log duplicates ours; asyncpg/databases debug logs carry SQL args
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("databases").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
