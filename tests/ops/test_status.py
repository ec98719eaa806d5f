"""`fxforecast status` on a metrics file with ok, degraded, failed and corrupt lines."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from fxforecast.cli import main
from fxforecast.ops.status import STANDARD_SERVICES
from helpers import FAST_MEMBERS, run_service, service_env

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
    assert code == 2 and report["state"] == "CRITICAL"  # 30d failed, 90d no recent success
    assert len(report["skipped_lines"]) == 3
    assert captured.err.count("warning:") == 3 and "line 3" in captured.err
    services = report["services"]
    assert list(services) == STANDARD_SERVICES

    week = services["forecaster_7d"]
    assert week["state"] == "OK" and week["alerts"] == week["warnings"] == []
    assert week["recent_runs"] == 3 and week["success_rate"] == 1.0
    assert week["runtime_s_p50"] == 5.0 and week["runtime_s_max"] == 6.0
    assert week["peak_rss_mb_max"] == 900.0
    assert week["days_since_success"] == pytest.approx(0.5, abs=0.1)
    # The last run's Chronos status; the mean weight covers every run that used it.
    assert week["chronos"] == {"status": "failed", "mean_weight": 0.2, "runs_used": 3}
    assert week["failed_members"]["chronos"]["last_reason"] == "OOM"

    degraded = services["forecaster_15d"]
    assert degraded["state"] == "WARNING" and degraded["alerts"] == []
    assert degraded["warnings"] == ["last run degraded: forecast not stored; member var failed"]
    assert degraded["last_status"] == "degraded"
    assert degraded["last_warnings"] == ["forecast not stored"]
    assert degraded["failed_members"]["var"]["count"] == 1
    assert "singular" in degraded["failed_members"]["var"]["last_reason"]

    failed = services["forecaster_30d"]
    assert failed["state"] == "CRITICAL"
    assert failed["alerts"] == ["last run failed: data file not found: x.csv"]
    assert failed["success_rate"] == 0.5

    stale = services["forecaster_90d"]
    assert stale["state"] == "CRITICAL"
    assert stale["alerts"] == ["last success 10.0 days ago (limit 8)"]


def test_last_n_limits_the_window(metrics, capsys):
    main(["status", "--metrics", str(metrics), "--json", "--last", "1"])
    week = json.loads(capsys.readouterr().out)["services"]["forecaster_7d"]
    assert week["recent_runs"] == 1 and week["runtime_s_max"] == 5.0
    assert week["chronos"]["mean_weight"] == 0.0


def test_text_output_names_each_state(metrics, capsys):
    assert main(["status", "--metrics", str(metrics)]) == 2
    out = capsys.readouterr().out
    lines = out.splitlines()
    # The first line sums up, as a monitoring plugin's does.
    assert lines[0].startswith("CRITICAL: forecaster_15d: last run degraded")
    assert "forecaster_30d: last run failed: data file not found: x.csv" in lines[0]
    assert "WARNING: 3 metrics line(s) skipped as corrupt or partial" in out
    assert "forecaster_7d: OK" in lines and "forecaster_15d: WARNING" in lines
    assert "forecaster_30d: CRITICAL" in lines and "forecaster_90d: CRITICAL" in lines
    assert "  CRITICAL  last run failed: data file not found: x.csv" in lines
    assert "  WARNING   last run degraded: forecast not stored; member var failed" in lines
    assert "failed member   var 1x" in out
    assert "warning         forecast not stored" in out
    assert "chronos         failed, mean weight 0.200 over 3 runs" in out


def test_healthy_file_exits_zero(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    write(path, [run(name, 2) for name in STANDARD_SERVICES])
    assert main(["status", "--metrics", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 4 services OK\n")
    assert "CRITICAL" not in out and "WARNING" not in out


def test_a_warning_alone_exits_one(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    records = [run(name, 2) for name in STANDARD_SERVICES]
    records[1]["warnings"] = ["report not refreshed at output/report/index.html: disk full"]
    write(path, records)
    assert main(["status", "--metrics", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("WARNING: forecaster_15d: last run warned: report not refreshed")


def test_service_that_never_ran_is_an_alert(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    write(path, [run("forecaster_7d", 1)])
    assert main(["status", "--metrics", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["services"]["forecaster_90d"]["alerts"] == ["no run recorded"]


def test_missing_metrics_file_is_unknown(tmp_path, capsys):
    assert main(["status", "--metrics", str(tmp_path / "nope.jsonl")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: no metrics file at") and err.count("\n") == 1


def test_bad_last_is_a_usage_error(metrics, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--metrics", str(metrics), "--last", "0"])
    assert exit_info.value.code == 2
    assert "is not a whole number of at least 1" in capsys.readouterr().err


def data_block(newest, age_days, stale, limit=7, source="cache", refresh=None):
    block = {
        "data_source": source,
        "data_reason": "cache at least as new as the embedded snapshot",
        "newest": {"USDCLP": newest},
        "last_date": newest,
        "age_days": age_days,
        "stale": stale,
        "stale_data_days": limit,
    }
    if refresh is not None:
        block["refresh"] = refresh
    return block


def test_stale_data_is_a_named_alert(tmp_path, capsys):
    """The run judged its newest close too old (and published `degraded`): CRITICAL, in the
    alert's own words, with how old the close is now."""
    newest = (NOW - timedelta(days=12)).date().isoformat()
    records = [run(name, 2) for name in STANDARD_SERVICES]
    for record in records:
        record["data"] = data_block(newest, 10, stale=False, limit=30)
    records[0].update(status="degraded", data=data_block(newest, 10, stale=True))
    path = tmp_path / "metrics.jsonl"
    write(path, records)
    assert main(["status", "--metrics", str(path)]) == 2
    out = capsys.readouterr().out
    alert = f"stale data: newest USD/CLP close ({newest}) is 12 days old (limit STALE_DATA_DAYS=7)"
    assert out.startswith(f"CRITICAL: forecaster_7d: {alert}")
    assert f"  CRITICAL  {alert}" in out
    # The other services judged the same close against a limit of 30 days: not stale.
    assert out.count("stale data") == 2  # the summary line and forecaster_7d's
    assert f"newest close    USD/CLP {newest} (12 days old now, 10 at the last success)" in out
    assert "last refresh    off in this service (DATA_REFRESH=false)" in out


def test_data_facts_show_the_last_refresh_and_failing_feeds(tmp_path, capsys):
    """A feed that failed at the last run is a warning before it makes the data stale; the last
    successful refresh is the newest run whose data came live."""
    newest = (NOW - timedelta(days=3)).date().isoformat()
    records = [run(name, 2) for name in STANDARD_SERVICES]
    live = data_block(newest, 3, False, source="live", refresh={"USDCLP": "ok: 5 new value(s)"})
    records[0]["data"] = live
    later = run("forecaster_7d", 1)
    later["data"] = data_block(
        newest,
        4,
        False,
        refresh={"USDCLP": "failed: HTTP 503 from yahoo", "fed_rate": "ok: 0 new value(s)"},
    )
    later["data"]["data_reason"] = "cache at least as new as the embedded snapshot"
    path = tmp_path / "metrics.jsonl"
    write(path, [*records, later])
    assert main(["status", "--metrics", str(path), "--json"]) == 1
    week = json.loads(capsys.readouterr().out)["services"]["forecaster_7d"]
    assert week["warnings"] == ["last refresh: USDCLP failed: HTTP 503 from yahoo"]
    assert week["data"]["last_refresh"] == records[0]["timestamp"]
    assert week["data"]["source"] == "cache" and week["data"]["age_days_now"] == 3


def test_status_reads_only_the_newest_lines(tmp_path, capsys):
    """A long history costs what its newest runs cost: what lies before them (here a corrupt
    line and a failed run at the very start) is never read."""
    path = tmp_path / "metrics.jsonl"
    old = [run("forecaster_7d", 400, status="failed", error="long ago")]
    weeks = [run(name, week) for week in range(300, 0, -1) for name in STANDARD_SERVICES]
    write(path, old + weeks, corrupt=[(0, "\x00 torn")])
    assert main(["status", "--metrics", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_lines"] == []
    assert report["services"]["forecaster_7d"]["recent_runs"] == 10
    assert report["services"]["forecaster_7d"]["runs"] == 10


def test_a_corrupt_line_in_a_partly_read_file_is_counted_from_the_end(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    weeks = [run(name, week) for week in range(40, 0, -1) for name in STANDARD_SERVICES]
    write(path, weeks, corrupt=[(len(weeks) - 2, '{"torn": ')])
    assert main(["status", "--metrics", str(path)]) == 1
    assert f"{path} line 3 from the end: not valid JSON" in capsys.readouterr().err


def test_lines_that_went_to_the_fallback_file_are_an_alert(tmp_path):
    """A run that cannot append to METRICS_LOG_PATH puts its line in the fallback file; status
    finds it there (marked with the file it was meant for) and alerts."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be\n")
    metrics = blocked / "metrics.jsonl"
    fallback_dir = tmp_path / "tmp"
    fallback_dir.mkdir()
    env = {"METRICS_LOG_PATH": metrics, "TMPDIR": fallback_dir, "STALE_DATA_DAYS": 100000}
    done = run_service("forecaster_7d", tmp_path, **env, **FAST_MEMBERS)
    assert done.returncode == 1
    status = subprocess.run(
        [sys.executable, "-m", "fxforecast", "status"],
        env=service_env(tmp_path, **env),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert status.returncode == 2, status.stderr
    fallback = fallback_dir / "fxforecast-metrics.jsonl"
    assert (
        f"  CRITICAL  the last run's metrics line went to {fallback}, not the metrics file"
        in status.stdout
    )
    # What that run recorded is read from there: it succeeded.
    assert "forecaster_7d: CRITICAL\n" in status.stdout
    assert "  last success    0.0 days ago" in status.stdout


def test_a_bad_setting_is_unknown_and_the_help_names_every_exit_code(tmp_path, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("STALE_DATA_DAYS=soon\n")
    assert main(["status", "--env-file", str(env_file)]) == 3
    assert capsys.readouterr().err.startswith("error: STALE_DATA_DAYS='soon' in ")
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    help_text = capsys.readouterr().out
    for code in ("0 OK", "1 WARNING", "2 CRITICAL", "3 UNKNOWN"):
        assert code in help_text


def test_a_file_read_whole_across_blocks_names_lines_from_the_start(tmp_path, capsys):
    """The 90-day service never ran, so every line is read (about 0.33 MB, several blocks read
    backwards): each line comes out whole and a corrupt one is named by its line number."""
    path = tmp_path / "metrics.jsonl"
    weeks = [run(name, week) for week in range(400, 0, -1) for name in STANDARD_SERVICES[:3]]
    write(path, weeks, corrupt=[(123, '{"torn": ')])
    assert path.stat().st_size > 5 * 2**16
    assert main(["status", "--metrics", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == f"warning: {path} line 124: not valid JSON (corrupt or truncated); skipped\n"
    )
    report = json.loads(captured.out)
    assert report["services"]["forecaster_7d"]["runs"] == 400
    assert report["services"]["forecaster_90d"]["alerts"] == ["no run recorded"]
