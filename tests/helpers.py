"""Run a real service the way cron does: its run.py in a fresh interpreter, every output under
one working folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The random walk alone: a real run in ~3 s; for tests whose checks (files, store, metrics,
# locks) do not depend on which members ran.
FAST_MEMBERS = {"ENABLE_ARIMA": "false", "ENABLE_VAR": "false", "ENABLE_RF": "false"}


def service_env(workdir: Path, **extra) -> dict:
    """Environment for a service run whose every output lands under `workdir`; member and
    Chronos switches set in the caller's environment do not leak in."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("ENABLE_", "CHRONOS_"))}
    return {
        **inherited,
        "OUTPUT_DIR": str(workdir / "output"),
        "LOG_DIR": str(workdir / "logs"),
        "METRICS_LOG_PATH": str(workdir / "metrics.jsonl"),
        "FORECAST_DB": str(workdir / "forecasts.sqlite"),
        **{key: str(value) for key, value in extra.items()},
    }


def start_service(service: str, workdir: Path, *args: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "services" / service / "run.py"), *args],
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
