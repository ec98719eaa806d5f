import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import FAST_MEMBERS, metrics_lines, run_service, service_env, service_script

SERVICES = {"forecaster_7d": 7, "forecaster_15d": 15, "forecaster_30d": 30, "forecaster_90d": 90}
METRIC_KEYS = {
    "timestamp",
    "service",
    "horizon_days",
    "as_of",
    "status",
    "error",
    "members",
    "forecast",
    "runtime_s",
    "peak_rss_mb",
    "available_mb",
    "version",
    "combiner",
    "calibration",
    "drift_share",
}


# Every member runs at 7 and 90 days; at 15 and 30 days (the same code, 400 validation origins)
# the random walk alone keeps `make test` short.
ALL_MEMBERS_AT = {"forecaster_7d", "forecaster_90d"}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_end_to_end(service, tmp_path):
    members = {} if service in ALL_MEMBERS_AT else FAST_MEMBERS
    # The default limit: the 2024 snapshot is too old for it, so the forecast is degraded.
    done = run_service(service, tmp_path, STALE_DATA_DAYS=7, **members)
    assert done.returncode == 0, done.stderr
    days = SERVICES[service]
    folder = tmp_path / "output" / service / "2024-11-29"
    payload = json.loads((folder / "forecast.json").read_text())
    assert payload["service"] == service and payload["horizon_days"] == days
    assert payload["as_of"] == "2024-11-29" and payload["status"] == "degraded"
    [stale] = [w for w in payload["warnings"] if w.startswith("stale data: ")]
    assert "the newest USD/CLP close (2024-11-29) is" in stale
    assert "(limit STALE_DATA_DAYS=7); nothing refreshes it: set DATA_REFRESH=true" in stale
    steps = payload["steps"]
    assert steps[0]["date"] == "2024-12-02"
    assert payload["target_date"] == steps[-1]["date"]
    assert pd.Timestamp(payload["target_date"]) <= pd.Timestamp("2024-11-29") + pd.Timedelta(
        days=days
    )
    for step in steps:
        values = [step[k] for k in ("q0.025", "q0.1", "q0.5", "q0.9", "q0.975")]
        assert values == sorted(values) and values[0] > 700 and values[-1] < 1300
    assert sum(payload["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(payload["members"]) == {
        "random_walk",
        "arima_garch",
        "var",
        "random_forest",
        "random_walk_empirical",
        "chronos",
    }
    assert payload["members"]["chronos"]["status"] == "disabled"
    assert payload["members"]["random_walk_empirical"]["status"] == "disabled"
    assert payload["calibration"]["method"] == "regime_conformal"
    assert payload["calibration"]["factor"] > 0 and payload["calibration"]["correction80"] > 0

    table = pd.read_csv(folder / "forecast.csv")
    assert list(table.columns) == ["date", "q0.025", "q0.1", "q0.5", "q0.9", "q0.975"]
    assert len(table) == len(steps)
    assert (folder / "fan_chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert set(line) >= METRIC_KEYS
    assert line["status"] == "degraded" and line["service"] == service
    assert line["data"]["stale"] is True and line["data"]["stale_data_days"] == 7
    assert line["forecast"]["q0.5"] == steps[-1]["q0.5"]
    assert set(line["members"]["var"]) >= {"status", "reason", "score", "weight", "seconds"}
    assert line["peak_rss_mb"] > 50
    assert line["warnings"] == payload["warnings"]
    log_lines = (tmp_path / "logs" / f"{service}.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log_lines]
    assert "forecast written" in events and events[-1] == "report refreshed"
    assert f"forecast: {folder}/forecast.json" in done.stdout or "forecast.json" in done.stdout


def test_as_of_runs_on_earlier_data_and_switches_work(tmp_path):
    done = run_service("forecaster_7d", tmp_path, "--as-of", "2022-07-22", ENABLE_VAR="false")
    assert done.returncode == 0, done.stderr
    payload = json.loads((tmp_path / "output/forecaster_7d/2022-07-22/forecast.json").read_text())
    assert payload["members"]["var"]["status"] == "disabled"
    assert "var" not in payload["weights"]
    assert payload["steps"][-1]["date"] == "2022-07-29"
    assert (
        metrics_lines(tmp_path / "metrics.jsonl")[0]["warnings"] == []
    )  # an as-of run is not stale


def test_invalid_setting_names_key_and_file(tmp_path):
    env_file = service_script("forecaster_7d", tmp_path).with_name(".env")
    env_file.write_text("ENABLE_ARIMA=true\nENABLE_VAR=maybe\n")
    done = run_service("forecaster_7d", tmp_path)  # with that .env beside its run.py
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: ENABLE_VAR='maybe' in {env_file}: expected true or false"
    # Monitoring sees the failed run: one metrics line, and status alerts.
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and line["service"] == "forecaster_7d"
    assert line["error"] == f"ENABLE_VAR='maybe' in {env_file}: expected true or false"
    status = subprocess.run(
        [sys.executable, "-m", "fxforecast", "status"],
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert status.returncode == 2
    alert = "forecaster_7d: CRITICAL\n  CRITICAL  last run failed: ENABLE_VAR='maybe'"
    assert alert in status.stdout


def test_bad_data_fails_cleanly_and_loses_nothing(tmp_path, data_copy):
    market = data_copy / "market_daily.csv"
    market.write_text(market.read_text().replace("Copper", "Coper", 1))
    done = run_service("forecaster_7d", tmp_path, DATA_DIR=data_copy)
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "lacks column(s) Copper" in lines[-1]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "output" / "forecaster_7d").exists()  # only the report page
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "Copper" in line["error"]


def test_failed_rendering_leaves_no_partial_output(tmp_path, monkeypatch):
    """A crash while the files are produced leaves the folder empty and says so in one line."""
    from fxforecast.ops import outputs, service
    from fxforecast.settings import Settings

    def broken_chart(*args, **kwargs):
        raise MemoryError("no memory for the chart")

    monkeypatch.setattr(outputs, "fan_chart", broken_chart)
    settings = Settings(
        enable_arima=False,  # the random walk alone: the chart fails whichever members ran
        enable_var=False,
        enable_rf=False,
        output_dir=tmp_path / "output",
        log_dir=tmp_path / "logs",
        metrics_log_path=tmp_path / "metrics.jsonl",
        cache_dir=tmp_path / "cache",
    )
    code = service.run_service("forecaster_7d", 7, settings)
    assert code == 1
    assert not list((tmp_path / "output" / "forecaster_7d").rglob("*.*"))
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "MemoryError" in line["error"]


def test_two_concurrent_runs_leave_a_valid_metrics_file(tmp_path):
    env = service_env(tmp_path, **FAST_MEMBERS)  # the lock and the file, not the members
    script = str(service_script("forecaster_15d", tmp_path))
    runs = [
        subprocess.Popen(
            [sys.executable, script],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for run in runs:
        run.communicate(timeout=600)
        assert run.returncode == 0
    lines = metrics_lines(tmp_path / "metrics.jsonl")
    assert len(lines) == 2 and all(line["status"] == "ok" for line in lines)
    json.loads((tmp_path / "output/forecaster_15d/2024-11-29/forecast.json").read_text())


def test_unwritable_paths_are_one_line_errors_and_still_leave_a_metrics_line(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    done = run_service("forecaster_7d", tmp_path, LOG_DIR=blocked / "logs", **FAST_MEMBERS)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot create the service lock") and "fix LOG_DIR" in last
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "LOG_DIR" in line["error"]

    fallback_dir = tmp_path / "tmp"
    fallback_dir.mkdir()
    done = run_service(
        "forecaster_7d",
        tmp_path,
        METRICS_LOG_PATH=blocked / "metrics.jsonl",
        TMPDIR=fallback_dir,
        **FAST_MEMBERS,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    fallback = fallback_dir / "fxforecast-metrics.jsonl"
    assert f"cannot append to METRICS_LOG_PATH={blocked / 'metrics.jsonl'}" in done.stderr
    assert f"this run's line went to {fallback}" in done.stderr
    [line] = metrics_lines(fallback)
    assert line["status"] == "ok" and line["service"] == "forecaster_7d"
    # The forecast itself was written: only the metrics line could not be.
    assert (tmp_path / "output/forecaster_7d/2024-11-29/forecast.json").exists()
