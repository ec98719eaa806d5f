"""`fxforecast status` on a metrics file with ok, degraded, failed and corrupt lines."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fxforecast.cli import main
from fxforecast.ops.status import STANDARD_SERVICES

NOW = datetime.now(UTC)


def run(
    service, days_ago, status="ok", runtime=4.0, rss=300.0, members=None, error=None, warnings=None
):
    return {
        "timestamp": (NOW - timedelta(days=days_ago)).isoformat(timespec="seconds"),
        "service": service,
        "horizon_days": 7,
        "as_of": "2024-11-29",
        "status": status,
        "error": error,
        "runtime_s": runtime,
        "peak_rss_mb": rss,
        "members": members or {"random_walk": {"status": "ok", "reason": None, "weight": 1.0}},
        "warnings": warnings or [],
    }


def chronos(status, weight, reason=None):
    return {
        "random_walk": {"status": "ok", "reason": None, "weight": 1 - weight},
        "chronos": {"status": status, "reason": reason, "weight": weight},
    }


def write(path, records, corrupt=()):
    lines = [json.dumps(r) for r in records]
    for index, text in corrupt:
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def metrics(tmp_path):
    """7d healthy with Chronos; 15d degraded (VAR failing); 30d last run failed; 90d stale;
    plus a truncated line, a line of garbage and a JSON line that is not a run."""
    records = [
        run("forecaster_7d", 14, members=chronos("ok", 0.2)),
        run("forecaster_7d", 7, runtime=6.0, rss=900.0, members=chronos("ok", 0.4)),
        run("forecaster_7d", 0.5, runtime=5.0, rss=850.0, members=chronos("failed", 0.0, "OOM")),
        run("forecaster_15d", 7),
        run(
            "forecaster_15d",
            0.5,
            status="degraded",
            warnings=["forecast not stored"],
            members={
                "random_walk": {"status": "ok", "reason": None, "weight": 1.0},
                "var": {"status": "failed", "reason": "LinAlgError: singular matrix", "weight": 0},
            },
        ),
        run("forecaster_30d", 7),
        run("forecaster_30d", 0.5, status="failed", error="data file not found: x.csv"),
        run("forecaster_90d", 10),
    ]
    path = tmp_path / "metrics.jsonl"
    write(
        path,
        records,
        corrupt=[
            (2, '{"timestamp": "2026-01-01T06:00:00+00:00", "serv'),
            (5, "\x00\x00garbage"),
            (7, '["not", "a", "run"]'),
        ],
    )
    return path


def test_report_per_service_and_alerts(metrics, capsys):
    code = main(["status", "--metrics", str(metrics), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 1  # 30d failed, 90d stale
    assert len(report["skipped_lines"]) == 3
    assert captured.err.count("warning:") == 3 and "line 3" in captured.err
    services = report["services"]
    assert list(services) == STANDARD_SERVICES

    week = services["forecaster_7d"]
    assert week["alerts"] == []
    assert week["recent_runs"] == 3 and week["success_rate"] == 1.0
    assert week["runtime_s_p50"] == 5.0 and week["runtime_s_max"] == 6.0
    assert week["peak_rss_mb_max"] == 900.0
    assert week["days_since_success"] == pytest.approx(0.5, abs=0.1)
    # The last run's Chronos status; the mean weight covers every run that used it.
    assert week["chronos"] == {"status": "failed", "mean_weight": 0.2, "runs_used": 3}
    assert week["failed_members"]["chronos"]["last_reason"] == "OOM"

    degraded = services["forecaster_15d"]
    assert degraded["alerts"] == [] and degraded["last_status"] == "degraded"
    assert degraded["last_warnings"] == ["forecast not stored"]
    assert degraded["failed_members"]["var"]["count"] == 1
    assert "singular" in degraded["failed_members"]["var"]["last_reason"]

    failed = services["forecaster_30d"]
    assert failed["alerts"] == ["last run failed: data file not found: x.csv"]
    assert failed["success_rate"] == 0.5

    stale = services["forecaster_90d"]
    assert stale["alerts"] == ["last success 10.0 days ago (limit 8)"]


def test_last_n_limits_the_window(metrics, capsys):
    main(["status", "--metrics", str(metrics), "--json", "--last", "1"])
    week = json.loads(capsys.readouterr().out)["services"]["forecaster_7d"]
    assert week["recent_runs"] == 1 and week["runtime_s_max"] == 5.0
    assert week["chronos"]["mean_weight"] == 0.0


def test_text_output_names_problems(metrics, capsys):
    assert main(["status", "--metrics", str(metrics)]) == 1
    out = capsys.readouterr().out
    assert "forecaster_7d: OK" in out and "forecaster_30d: ALERT" in out
    assert "! last run failed: data file not found: x.csv" in out
    assert "failed member   var 1x" in out
    assert "warning         forecast not stored" in out
    assert "chronos         failed, mean weight 0.200 over 3 runs" in out


def test_healthy_file_exits_zero(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    write(path, [run(name, 2) for name in STANDARD_SERVICES])
    assert main(["status", "--metrics", str(path)]) == 0
    assert "ALERT" not in capsys.readouterr().out


def test_service_that_never_ran_is_an_alert(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    write(path, [run("forecaster_7d", 1)])
    assert main(["status", "--metrics", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["services"]["forecaster_90d"]["alerts"] == ["no run recorded"]


def test_missing_metrics_file_is_one_line_error(tmp_path, capsys):
    assert main(["status", "--metrics", str(tmp_path / "nope.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no metrics file at") and err.count("\n") == 1


def test_bad_last_is_a_usage_error(metrics, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--metrics", str(metrics), "--last", "0"])
    assert exit_info.value.code == 2
    assert "is not a whole number of at least 1" in capsys.readouterr().err
