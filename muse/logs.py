"""JSON logs on stdout, one object per line, for Azure Monitor (Container Insights) to parse.

Every record carries time, level, logger and message; request-scoped records add request_id (from a context
variable set by the request middleware), and the access record adds route, method, status and duration_ms.
Uvicorn's own loggers propagate to the same root handler, so nothing is printed in another format.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
import traceback
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("muse_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with extra={...} and is emitted as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# uvicorn passes "color_message" as an extra: it duplicates the message with ANSI codes.
_DROPPED_EXTRAS = frozenset({"color_message"})
# A second line of defence behind the callers' own truncation: no message or field longer than this, so no
# record grows with what a client sent (the access record stays well under 2 KiB). A stack trace (server
# errors only, never a client's doing) gets more room.
MAX_FIELD_CHARS = 512
MAX_EXCEPTION_CHARS = 16 * 1024


def _capped(value: Any, limit: int | None = None) -> Any:
    limit = MAX_FIELD_CHARS if limit is None else limit
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"...[{len(value) - limit} more chars]"
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _capped(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _DROPPED_EXTRAS and not key.startswith("_"):
                entry[key] = _capped(value)
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            entry["exception"] = _capped(text, MAX_EXCEPTION_CHARS)
            entry["exception_type"] = record.exc_info[0].__name__
        if record.stack_info:
            entry["stack"] = record.stack_info
        # default=str: a non-JSON extra must degrade to text, never lose the log line.
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
        uv_logger.setLevel(level)
