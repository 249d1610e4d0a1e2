"""JSON log lines: one object per line with the documented fields."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger

from api.logs import access_log, configure_logging
from api.settings import LogSettings


def test_json_lines_with_bound_context_and_exceptions() -> None:
    stream = io.StringIO()
    configure_logging(LogSettings(level="INFO"), stream=stream)
    try:
        with logger.contextualize(trace_id="t1", request_id="r1"):
            logger.bind(status=200, route="/x").info("hello")
            logger.debug("not at INFO")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
        logging.getLogger("uvicorn.error").warning("from the standard library")
    finally:
        logger.remove()
        access_log.sink = None
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["hello", "failed", "from the standard library"]
    first = lines[0]
    assert first["level"] == "INFO"
    assert first["trace_id"] == "t1"
    assert first["request_id"] == "r1"
    assert first["status"] == 200
    assert first["route"] == "/x"
    assert first["ts"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    assert lines[2]["logger"] == "uvicorn.error"
    assert lines[2]["level"] == "WARNING"


def test_access_lines_share_the_format_and_respect_the_level() -> None:
    stream = io.StringIO()
    configure_logging(LogSettings(level="WARNING"), stream=stream)
    try:
        assert not access_log.enabled("INFO")
        assert access_log.enabled("WARNING")
        access_log.write("WARNING", "GET /x 404", {"trace_id": "t", "status": 404})
    finally:
        logger.remove()
        access_log.sink = None
    line = json.loads(stream.getvalue())
    assert line["logger"] == "api.access"
    assert line["level"] == "WARNING"
    assert line["status"] == 404
    assert line["ts"].endswith("+00:00")
