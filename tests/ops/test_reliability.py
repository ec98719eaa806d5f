"""A service run's reliability (issue 14, cases 1, 4-7 and 9), each through `fxforecast run` in
this process with the random walk only: nothing broken is published, every run leaves a metrics
line, requests are honoured or refused, status survives any line, killed runs leave nothing
behind, and tests never read the developer's own settings."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from fxforecast.cli import main
from fxforecast.engine import gate
from fxforecast.quantiles import QUANTILE_COLUMNS
from helpers import FAST_MEMBERS, edit_rows, error_line, metrics_lines, run_service, strict_json


def test_a_missing_week_in_the_validation_window_publishes_a_finite_forecast(
    cli, data_copy, tmp_path
):
    edit_rows(
        data_copy / "market_daily.csv",
        lambda lines: [line for line in lines if not "2024-06-10" <= line[:10] <= "2024-06-14"],
    )
    code, out, err = cli(DATA_DIR=data_copy)
    assert code == 0, err
    assert "nan" not in out
    payload = strict_json((tmp_path / "output/forecaster_7d/2024-11-29/forecast.json").read_text())
    published = np.array([[step[c] for c in QUANTILE_COLUMNS] for step in payload["steps"]])
    assert gate.problems(published) == []
    assert any("2024-06-07 to 2024-06-17" in warning for warning in payload["warnings"])
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["data"]["gaps"] == [{"after": "2024-06-07", "before": "2024-06-17", "days": 10}]
    assert any("2024-06-07 to 2024-06-17" in warning for warning in line["warnings"])
    assert all(math.isfinite(value) for value in line["forecast"].values())


def test_a_missing_env_file_is_an_error_that_monitoring_sees(cli, tmp_path):
    code, _, err = cli("--env-file", tmp_path / "nowhere.env")
    assert code == 2
    assert error_line(err) == (
        f"error: --env-file {tmp_path / 'nowhere.env'} does not exist; give an existing .env file"
    )
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "nowhere.env" in line["error"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_member_timeout_must_be_finite_and_positive(cli, value):
    code, _, err = cli(MEMBER_TIMEOUT_S=value)
    assert code == 2
    assert error_line(err) == (
        f"error: MEMBER_TIMEOUT_S={value!r} in the environment: must be a finite number above 0"
    )


def test_status_survives_valid_json_lines_with_wrong_types(tmp_path, capsys):
    good = {
        "timestamp": pd.Timestamp.now("UTC").isoformat(),
        "service": "forecaster_7d",
        "status": "ok",
        "members": {"random_walk": {"status": "ok", "reason": None, "weight": 1.0}},
        "warnings": [],
    }
    bad = [
        {**good, "members": {"var": {"status": "ok", "weight": "high"}}},
        {**good, "warnings": "stale"},
        {**good, "status": 3},
        {**good, "members": ["var"]},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad]))
    code = main(["status", "--metrics", str(path), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert len(report["skipped_lines"]) == 4 and captured.err.count("warning:") == 4
    assert "members.var.weight is a str" in report["skipped_lines"][0]
    week = report["services"]["forecaster_7d"]
    assert week["runs"] == 1 and week["last_warnings"] == [] and week["alerts"] == []
    assert code == 2  # the other three services never ran


def test_the_next_run_removes_staging_folders_of_killed_runs(cli, tmp_path):
    stale = tmp_path / "output/forecaster_7d/.2024-11-29.partial-99999999"
    stale.mkdir(parents=True)
    (stale / "forecast.json").write_text('{"half": ')
    unrelated = tmp_path / "output/forecaster_7d/notes.partial"
    unrelated.write_text("an operator's file")
    code, _, err = cli()
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "output/forecaster_7d").iterdir()) == [
        "2024-11-29",
        "notes.partial",
    ]


def test_services_in_tests_ignore_the_callers_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no such folder"))
    monkeypatch.setenv("STALE_DATA_DAYS", "not a number")
    done = run_service("forecaster_7d", tmp_path, **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr
