"""Loguru as the one logging pipeline.

- stdlib ``logging`` (uvicorn, sqlalchemy, httpx, langchain …) is routed into loguru;
- development: human-readable lines; staging/production: one JSON object per line;
- every line carries the request id (and the user id once known) of the request
  that produced it, read from context variables, so no call site has to pass them.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TextIO

from asgi_correlation_id import correlation_id
from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

current_user_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("parley_user_id", default=None)

_HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{extra[request_id]}</cyan> <level>{message}</level> {extra[fields]}"
)
# Loggers with handlers of their own (uvicorn installs some): make them go through loguru.
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "sqlalchemy", "httpx", "httpcore")
# Parley writes one access line per request itself (with the request id and route template);
# uvicorn writes its own only when this logger has a handler, which it must not have.
_SILENCED_LOGGERS = ("uvicorn.access",)
# Below WARNING these log SQL parameters (password hashes), request bodies (messages,
# tokens) or every HTTP request to the model, whatever LOG_LEVEL says.
_CAPPED_LOGGERS = (
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "httpx",
    "httpcore",
    "openai",
    "langfuse",
    "urllib3",
    "pgserver",  # the embedded database echoes whole initdb/pg_ctl outputs at INFO
    "slowapi",  # a WARNING per rejected request, with its key; we count and log those ourselves
    "alembic.runtime.plugins",  # a line per Alembic plugin at every start-up
)


class InterceptHandler(logging.Handler):
    """Forward stdlib records to loguru under their stdlib logger name, keeping the
    original caller's location (loguru's own recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None:
            filename = frame.f_code.co_filename
            in_logging = filename == logging.__file__ or (
                "importlib" in filename and "_bootstrap" in filename
            )
            if depth > 0 and not in_logging:
                break
            frame, depth = frame.f_back, depth + 1
        name = record.name

        def rename(loguru_record: Record) -> None:
            loguru_record["name"] = name

        logger.patch(rename).opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _add_context(record: Record) -> None:
    """Patcher: tag every record with the request id and user id of the running request."""
    extra = record["extra"]
    extra.setdefault("request_id", correlation_id.get() or "-")
    user_id = current_user_id.get()
    if user_id is not None:
        extra.setdefault("user_id", user_id)
    shown = {k: v for k, v in extra.items() if k not in {"request_id", "fields"}}
    extra["fields"] = " ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""


def json_line(record: Record) -> str:
    """One record as a JSON object: time, level, message, logger, its context and fields,
    and the traceback (without local variables) when an exception is attached."""
    payload: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        if key != "fields" and key not in payload:
            payload[key] = value
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        payload["exception_type"] = exception.type.__name__
        payload["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    return json.dumps(payload, default=str, ensure_ascii=False)


def _writer(stream: TextIO | None, default: Literal["stdout", "stderr"]) -> Callable[[str], None]:
    """Write (and flush) to ``stream``; with None, to ``sys.<default>`` *as it is at each
    write*, so a stream swapped later (test runners, CLI runners) never gets a closed one."""

    def write(text: str) -> None:
        target = stream if stream is not None else getattr(sys, default)
        target.write(text)
        target.flush()

    return write


def configure_logging(*, level: str = "INFO", json_lines: bool = False, stream: TextIO | None = None) -> None:
    """Install the loguru sink and route the standard library into it (idempotent).

    ``stream`` defaults to stdout for JSON lines (what log shippers read) and stderr
    for human-readable lines. Tracebacks never show local variables (``diagnose=False``):
    they could hold passwords or tokens.
    """
    logger.remove()
    logger.configure(patcher=_add_context)
    threshold = logger.level(level.upper()).no
    if json_lines:
        write_json = _writer(stream, "stdout")
        logger.add(
            lambda message: write_json(json_line(message.record) + "\n"),
            level=threshold,
            backtrace=False,
            diagnose=False,
        )
    else:
        colorize = stream is None and sys.stderr.isatty()
        write_text = _writer(stream, "stderr")
        logger.add(
            write_text,
            level=threshold,
            format=_HUMAN_FORMAT,
            colorize=colorize,
            backtrace=False,
            diagnose=False,
        )
    # Only what would pass the sink crosses over from the standard library.
    logging.basicConfig(handlers=[InterceptHandler()], level=threshold, force=True)
    for name in _ROUTED_LOGGERS:
        std_logger = logging.getLogger(name)
        std_logger.handlers = [InterceptHandler()]
        std_logger.propagate = False
    for name in _CAPPED_LOGGERS:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    for name in _SILENCED_LOGGERS:
        silenced = logging.getLogger(name)
        silenced.handlers = []
        silenced.propagate = False
