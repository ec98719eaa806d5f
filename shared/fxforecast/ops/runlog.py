"""Structured logs (console + JSON lines per service) and the one-line-per-run metrics file.

Every run leaves one metrics line: also a run stopped by a bad setting, and also when
METRICS_LOG_PATH cannot be written (the line then goes to a fallback file, and stderr says
where)."""

import io
import json
import logging
import math
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import structlog
from dotenv import dotenv_values

from .. import __version__
from ..fsio import append_locked, fix_for
from ..settings import Settings

# Outside the project: the one place every user can write to.
FALLBACK_METRICS = Path(tempfile.gettempdir()) / "fxforecast-metrics.jsonl"

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(service: str, log_dir: Path, debug: bool = False) -> structlog.BoundLogger:
    """Readable lines on stderr, JSON lines in <log_dir>/<service>.log (only the console when
    that file cannot be written: the run itself then fails naming the folder)."""
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
    handlers = [console]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / f"{service}.log", encoding="utf-8"))
    except OSError:
        pass
    else:
        handlers[1].setFormatter(
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
    for handler in handlers:
        root.addHandler(handler)
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


def new_record(service: str, days: int) -> dict:
    """A failed run's line; a run that gets further fills in the rest."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "service": service,
        "horizon_days": days,
        "as_of": None,
        "status": "failed",
        "error": None,
        "version": __version__,
    }


def append_record(path: Path, record: dict) -> bool:
    """Append the line to `path`, else to FALLBACK_METRICS; False when `path` failed."""
    try:
        append_metrics(path, record)
        return True
    except OSError as exc:  # a full disk too: append_metrics leaves no partial line
        problem = f"cannot append to METRICS_LOG_PATH={path}: {exc.strerror}"
        fix = fix_for(exc, path, "METRICS_LOG_PATH")
    try:
        # The file it was meant for, so that `fxforecast status` there finds it here.
        append_metrics(FALLBACK_METRICS, {**record, "metrics_log_path": str(path.resolve())})
        where = f"this run's line went to {FALLBACK_METRICS}"
    except OSError as exc:
        where = f"nor to {FALLBACK_METRICS} ({exc.strerror}); the line is lost"
    print(f"error: {problem}; {where}; {fix}", file=sys.stderr)
    return False


def metrics_path_despite(env_file: Path | None) -> Path:
    """Where this service's metrics go when its settings could not be read as a whole: the
    METRICS_LOG_PATH text from the environment or the .env file, else the default."""
    text = os.environ.get("METRICS_LOG_PATH")
    if text is None and env_file is not None:
        try:  # bytes that are not UTF-8 (the settings' error says so) must not hide this key
            content = env_file.read_bytes().decode("utf-8", "replace")
            text = dotenv_values(stream=io.StringIO(content)).get("METRICS_LOG_PATH")
        except OSError:  # a missing or unreadable .env: the default then
            text = None
    return Path(text.strip()).expanduser() if text and text.strip() else Settings.metrics_log_path


def record_settings_error(service: str, days: int, env_file: Path | None, error: str) -> None:
    """The metrics line of a run its settings stopped, so that monitoring sees it."""
    record = new_record(service, days)
    record["error"] = error
    append_record(metrics_path_despite(env_file), record)
