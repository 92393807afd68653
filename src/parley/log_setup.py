"""Loguru as the one logging pipeline.

- stdlib ``logging`` (uvicorn, sqlalchemy, httpx, langchain …) is routed into loguru;
- development: human-readable lines; staging/production: one JSON object per line;
- every line carries the request id (and the user id once known) of the request
  that produced it, read from context variables, so no call site has to pass them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from asgi_correlation_id import correlation_id
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

current_user_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("parley_user_id", default=None)

_HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{extra[request_id]}</cyan> <level>{message}</level> {extra[fields]}"
)
_NOISY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "httpx", "httpcore")


class InterceptHandler(logging.Handler):
    """Forward stdlib records to loguru, keeping the original caller's location."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _add_context(record: Record) -> None:
    extra = record["extra"]
    extra.setdefault("request_id", correlation_id.get() or "-")
    user_id = current_user_id.get()
    if user_id is not None:
        extra.setdefault("user_id", user_id)
    shown = {k: v for k, v in extra.items() if k not in {"request_id", "fields"}}
    extra["fields"] = " ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""


def _json_sink(message: Message) -> None:
    record = message.record
    payload: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    payload.update({k: v for k, v in record["extra"].items() if k != "fields"})
    if record["exception"] is not None:
        payload["exception"] = "".join(message.split("\n", 1)[1:]).strip() or repr(record["exception"].value)
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def configure_logging(*, level: str = "INFO", json_lines: bool = False) -> None:
    """Install the loguru sinks and route the standard library into them (idempotent)."""
    logger.remove()
    logger.configure(patcher=_add_context)
    if json_lines:
        logger.add(
            _json_sink, level=level.upper(), format="{message}\n{exception}", backtrace=False, diagnose=False
        )
    else:
        logger.add(sys.stderr, level=level.upper(), format=_HUMAN_FORMAT, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in _NOISY_LOGGERS:
        std_logger = logging.getLogger(name)
        std_logger.handlers = [InterceptHandler()]
        std_logger.propagate = False
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
