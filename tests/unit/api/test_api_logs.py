"""JSON log lines: one object per line with the documented fields."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger

from api.logs import configure_logging
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
