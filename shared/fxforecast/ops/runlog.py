"""Structured logs (console + JSON lines per service) and the one-line-per-run metrics file."""

import json
import logging
import math
from pathlib import Path

import structlog

from ..fsio import append_locked

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(service: str, log_dir: Path, debug: bool = False) -> structlog.BoundLogger:
    """Readable lines on stderr, JSON lines in <log_dir>/<service>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    console = logging.StreamHandler()
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        )
    )
    to_file = logging.FileHandler(log_dir / f"{service}.log", encoding="utf-8")
    to_file.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.addHandler(console)
    root.addHandler(to_file)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    return structlog.get_logger("fxforecast")


def _finite(value):
    """JSON has no NaN or Infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def append_metrics(path: Path, record: dict) -> None:
    """Append one whole JSON line under an exclusive lock, in a single write."""
    line = (json.dumps(_finite(record), default=str, allow_nan=False) + "\n").encode()
    append_locked(path, line)
