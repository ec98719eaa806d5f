"""Run a real service the way cron does: its run.py in a fresh interpreter, every output under
one working folder. Isolated from the developer's own settings: the script runs from a copy
in the working folder (a `.env` beside the real one is never read) and no setting in the
caller's environment leaks in."""

import json
import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from fxforecast.settings import KEYS

ROOT = Path(__file__).resolve().parents[1]
# The random walk alone: a real run in ~3 s; for tests whose checks (files, store, metrics,
# locks) do not depend on which members ran.
FAST_MEMBERS = {"ENABLE_ARIMA": "false", "ENABLE_VAR": "false", "ENABLE_RF": "false"}
# The shipped snapshot ends 2024-11-29 and a run without --as-of judges its age against today:
# tests that are not about stale data allow it any age (those that are set their own limit).
ANY_DATA_AGE = {"STALE_DATA_DAYS": "100000"}


def service_env(workdir: Path, **extra) -> dict:
    """Environment for a service run whose every output lands under `workdir`; no setting of
    the caller's environment leaks in."""
    inherited = {k: v for k, v in os.environ.items() if k not in KEYS}
    return {
        **inherited,
        "OUTPUT_DIR": str(workdir / "output"),
        "LOG_DIR": str(workdir / "logs"),
        "METRICS_LOG_PATH": str(workdir / "metrics.jsonl"),
        "FORECAST_DB": str(workdir / "forecasts.sqlite"),
        **ANY_DATA_AGE,
        **{key: str(value) for key, value in extra.items()},
    }


def service_script(service: str, workdir: Path) -> Path:
    """A copy of the service's run.py under `workdir`, with no .env beside it."""
    script = workdir / "services" / service / "run.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_bytes((ROOT / "services" / service / "run.py").read_bytes())
    return script


def start_service(service: str, workdir: Path, *args: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(service_script(service, workdir)), *args],
        env=service_env(workdir, **extra),
        cwd=workdir,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_service(service: str, workdir: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    process = start_service(service, workdir, *args, **extra)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def metrics_lines(path: Path) -> list[dict]:
    """Every line parsed: a corrupt line fails the test here."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def edit_rows(path: Path, edit) -> None:
    """Rewrite a CSV file's lines (header first) through `edit`."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def error_line(err: str) -> str:
    """A run's one-line error: the last line on stderr, with no traceback before it."""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as every other JSON reader does."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def assert_publishable(quantiles, step_dates, as_of, days: int) -> None:
    """What may be published, checked here rather than by the gate under test: finite positive
    prices, the levels in increasing order, the 95% interval wider than the 80% one on both
    sides, one row for each weekday after the as-of date up to as-of + days."""
    q = np.asarray(quantiles, dtype=float)
    assert q.ndim == 2 and q.shape[1] == 5, q.shape
    assert np.isfinite(q).all() and (q > 0).all()
    assert (np.diff(q, axis=1) >= 0).all()
    assert (q[:, 0] < q[:, 1]).all() and (q[:, 4] > q[:, 3]).all()
    as_of = pd.Timestamp(as_of)
    calendar = [as_of + pd.Timedelta(days=k) for k in range(1, days + 1)]
    assert [pd.Timestamp(d) for d in step_dates] == [d for d in calendar if d.weekday() < 5]
    assert len(q) == len(step_dates)


@contextmanager
def file_size_limit(limit: int):
    """No file of this process grows past `limit` bytes meanwhile: a write beyond it is cut
    short, then fails with EFBIG, as a full disk does (SIGXFSZ ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
