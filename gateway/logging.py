"""Structured logs (structlog) in which phone, ID, plate numbers and e-mail addresses are masked.

Every string value of every event passes ``nlu.pii.mask_pii`` before it is rendered, so a citizen's
number never reaches a log line in clear, whoever logged it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from nlu.pii import mask_pii


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict


class _MaskingFilter(logging.Filter):
    """Masks records of libraries that log through the standard library (uvicorn, httpx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_pii(str(record.msg))
        if record.args:
            record.args = tuple(_mask(a) for a in record.args) if isinstance(record.args, tuple) else record.args
        return True


def configure(level: str = "INFO", json_logs: bool = False) -> None:
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json_logs else (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(isinstance(f, _MaskingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_MaskingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.handlers = [handler]
