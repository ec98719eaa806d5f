import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fxforecast.data import default_data_dir, load_raw

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def raw():
    """The shipped snapshot, loaded once."""
    return load_raw()


@pytest.fixture
def data_copy(tmp_path):
    """A writable copy of the snapshot's two files."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("market_daily.csv", "rates_daily.csv"):
        (folder / name).write_bytes((default_data_dir() / name).read_bytes())
    return folder


def service_env(tmp_path: Path, **extra) -> dict:
    """Environment that sends a service's outputs, logs and metrics into tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENABLE_", "CHRONOS_"))}
    env.update(
        OUTPUT_DIR=str(tmp_path / "output"),
        LOG_DIR=str(tmp_path / "logs"),
        METRICS_LOG_PATH=str(tmp_path / "logs" / "metrics.jsonl"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_service(service: str, tmp_path: Path, *args, **extra) -> subprocess.CompletedProcess:
    """Start a service the way cron does: its run.py in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, str(ROOT / "services" / service / "run.py"), *args],
        env=service_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


def metrics_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "logs" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
