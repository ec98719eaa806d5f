"""status's rules by hand on a few hand-made runs: every field of one service's health, each
alert and warning in its exact words and at its limit, the data facts, the lines that are not
runs, the fallback file's runs merged in by time, and the printed report."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fxforecast.ops import status
from fxforecast.ops.status import (
    data_health,
    data_texts,
    health_report,
    run_timestamp,
    service_health,
    worst,
)

NOW = datetime(2024, 12, 10, 12, 0, tzinfo=UTC)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="seconds")


def run(days_ago, status="ok", **fields):
    return {
        "timestamp": at(days_ago),
        "service": "forecaster_7d",
        "status": status,
        "error": None,
        "as_of": "2024-12-06",
        "warnings": [],
        "members": {"random_walk": {"status": "ok", "reason": None, "weight": 1.0}},
        **fields,
    }


DATA = {
    "data_source": "cache",
    "data_reason": "cache at least as new as the embedded snapshot",
    "newest": {"USDCLP": "2024-12-06"},
    "age_days": 1,
    "stale": False,
    "stale_data_days": 10,
    "refresh": {"USDCLP": "ok (5 new)", "Copper": "failed: timed out", "count": 3},
    "refresh_error": "cannot write the cache in /srv/data: disk full",
}


def test_one_services_health_by_hand():
    members = {
        "arima": {"status": "failed", "reason": "did not converge", "weight": None},
        "random_walk": {"status": "ok", "reason": None, "weight": 0.8},
        "chronos": {"status": "ok", "reason": None, "weight": 0.12345},
    }
    runs = [
        run(30, runtime_s=3.0, peak_rss_mb=400.0, members=members),  # older than last_n
        run(16, runtime_s=12.34567, peak_rss_mb=512.5, members=members),
        run(9, "failed", error="boom", runtime_s=None, peak_rss_mb=None),
        # 2.25 days and one second ago: 2.3 to one decimal
        {
            **run(0, "degraded", runtime_s=20.0, peak_rss_mb=300.0, data=DATA),
            "timestamp": (NOW - timedelta(days=2.25, seconds=1)).isoformat(),
            "members": {
                "arima": {"status": "failed", "reason": "singular matrix", "weight": None},
                "chronos": {"status": "disabled", "reason": None, "weight": 0.5},
            },
            "warnings": ["forecast not stored"],
            "as_of": "2024-12-06",
        },
    ]
    health = service_health(runs, 3, NOW, whole=True)
    assert health == {
        "runs": 4,
        "state": status.WARNING,
        "alerts": [],
        "warnings": [
            "last run degraded: forecast not stored; member arima failed",
            "last refresh: Copper failed: timed out; "
            "cannot write the cache in /srv/data: disk full",
        ],
        "last_run": runs[-1]["timestamp"],
        "last_status": "degraded",
        "last_as_of": "2024-12-06",
        "last_warnings": ["forecast not stored"],
        "days_since_success": 2.3,
        "data": {
            "source": "cache",
            "reason": "cache at least as new as the embedded snapshot",
            "newest_close": "2024-12-06",
            "age_days_at_run": 1,
            "age_days_now": 4,
            "stale": False,
            "stale_data_days": 10,
            "refresh": {"USDCLP": "ok (5 new)", "Copper": "failed: timed out"},
            "refresh_on": True,
            "refresh_error": "cannot write the cache in /srv/data: disk full",
            "last_refresh": None,
        },
        "recent_runs": 3,
        "recent_successes": 2,
        "success_rate": 0.667,
        "runtime_s_p50": 16.173,  # the median of 12.34567 and 20.0
        "runtime_s_max": 20.0,
        "peak_rss_mb_max": 512.5,
        # Disabled in the last run: its weight there is not a use.
        "chronos": {"status": "disabled", "mean_weight": 0.1235, "runs_used": 1},
        "failed_members": {
            "arima": {
                "count": 2,
                "last_reason": "singular matrix",
                "last_time": runs[-1]["timestamp"],
            }
        },
    }


def test_a_service_that_never_ran_or_has_no_numbers():
    assert service_health([], 5, NOW, whole=True) == {
        "runs": 0,
        "state": status.CRITICAL,
        "alerts": ["no run recorded"],
        "warnings": [],
    }
    assert service_health([], 5, NOW, whole=False)["alerts"] == [
        "no run in the newest part of the metrics file read"
    ]
    health = service_health([run(1, runtime_s=None)], 5, NOW)
    assert (health["runtime_s_p50"], health["runtime_s_max"], health["peak_rss_mb_max"]) == (
        None,
        None,
        None,
    )
    assert health["chronos"] == {"status": "absent", "mean_weight": None, "runs_used": 0}
    assert worst([]) == status.OK


def test_the_alerts_in_their_words_and_at_their_limits():
    failed = [run(20, "failed", error="no data")]
    assert service_health(failed, 5, NOW, whole=True)["alerts"] == [
        "last run failed: no data",
        "no successful run recorded",
    ]
    assert service_health(failed, 5, NOW, whole=False)["alerts"] == [
        "last run failed: no data",
        "no successful run in the newest 1 runs read",
    ]
    # Exactly 8 days is within the limit; 8.1 is not.
    assert service_health([run(8)], 5, NOW)["alerts"] == []
    assert service_health([run(8.1)], 5, NOW)["alerts"] == ["last success 8.1 days ago (limit 8)"]
    fallback = {**run(1), "metrics_log_path": "/srv/logs/metrics.jsonl"}
    assert service_health([fallback], 5, NOW)["alerts"] == [
        f"the last run's metrics line went to {status.FALLBACK_METRICS}, not the metrics file: "
        "fix METRICS_LOG_PATH or the file's owner and permissions (the run's log says why)"
    ]
    stale = run(1, "degraded", data={**DATA, "stale": True, "newest": {"USDCLP": "2024-11-20"}})
    assert service_health([stale], 5, NOW)["alerts"] == [
        "stale data: newest USD/CLP close (2024-11-20) is 20 days old (limit STALE_DATA_DAYS=10); "
        f"the run of {stale['timestamp'][:10]} published a degraded forecast from it"
    ]


def test_the_warnings_of_a_last_run_that_succeeded():
    assert service_health([run(1, "degraded")], 5, NOW)["warnings"] == [
        "last run degraded: see its metrics line"
    ]
    warned = run(1, warnings=["cache was older", "a feed failed"])
    assert service_health([warned], 5, NOW)["warnings"] == [
        "last run warned: cache was older; a feed failed"
    ]
    # A failed last run is an alert, not a warning, whatever it warned of.
    failed = run(1, "failed", warnings=["cache was older"], data=DATA)
    assert service_health([run(3), failed], 5, NOW)["warnings"] == []


def test_the_data_facts_and_their_texts():
    old = {"data_source": "snapshot", "last_date": "2024-11-29", "data_reason": None}
    runs = [run(3, data={"data_source": "live"}), run(1, data=old)]
    facts = data_health(runs[-1], runs, NOW)
    assert facts["newest_close"] == "2024-11-29" and facts["age_days_now"] == 11
    assert facts["last_refresh"] == runs[0]["timestamp"]
    assert (facts["refresh_on"], facts["refresh_error"], facts["reason"]) == (False, None, None)
    assert data_texts(facts) == {
        "data": "snapshot: no reason recorded",
        "newest close": "USD/CLP 2024-11-29 (11 days old now, None at the last success)",
        "last refresh": "off in this service (DATA_REFRESH=false)",
    }
    on = data_health(run(1, data={"data_source": "cache", "refresh": {}}), [], NOW)
    assert data_texts(on) == {
        "data": "cache: no reason recorded",
        "newest close": "not recorded",
        "last refresh": "none in the runs read",
    }
    assert data_health(None, [], NOW)["refresh"] == {}


def test_lines_that_are_not_runs_are_named():
    problem = status._problem
    good = run(1)
    assert problem(json.dumps(good).encode()) == (good, None)
    assert problem(json.dumps({**good, "timestamp": "yesterday"}).encode()) == (
        None,
        "no service name or timestamp",
    )
    assert problem(json.dumps({"service": "forecaster_7d"}).encode()) == (
        None,
        "no service name or timestamp",
    )
    assert problem(json.dumps({**good, "runtime_s": "4 s"}).encode()) == (
        None,
        "runtime_s is a str, not what a run writes",
    )
    assert problem(json.dumps({**good, "warnings": ["ok", 3]}).encode()) == (
        None,
        "warnings holds something other than text",
    )
    weight = {"members": {"arima": {"status": "ok", "weight": "0.5"}}}
    assert problem(json.dumps({**good, **weight}).encode()) == (
        None,
        "members.arima.weight is a str, not what a run writes",
    )
    no_weight = {**good, "members": {"arima": {"status": "ok"}}}  # a key left out is fine
    assert problem(json.dumps(no_weight).encode()) == (no_weight, None)
    bare = {"service": "forecaster_7d", "timestamp": at(1), "status": "ok"}  # no lists at all
    assert problem(json.dumps(bare).encode()) == (bare, None)


def test_timestamps_without_a_zone_are_utc():
    assert run_timestamp({"timestamp": "2024-12-02T10:00:00"}) == datetime(
        2024, 12, 2, 10, tzinfo=UTC
    )
    aware = run_timestamp({"timestamp": "2024-12-02T10:00:00+02:00"})
    assert aware == datetime(2024, 12, 2, 8, tzinfo=UTC) and aware.utcoffset() is not None


def test_runs_that_went_to_the_fallback_file_are_merged_in_by_time(tmp_path, monkeypatch):
    metrics, fallback = tmp_path / "metrics.jsonl", tmp_path / "fallback.jsonl"
    monkeypatch.setattr(status, "FALLBACK_METRICS", fallback)
    meant = str(metrics.resolve())
    metrics.write_text(
        "\n".join(json.dumps(r) for r in [run(14), run(7, service="forecaster_3d")])
        + "\n\n"  # a blank line is passed over
        + json.dumps(run(5))
        + "\n"
    )
    fallback.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {**run(10, "degraded"), "metrics_log_path": meant},
                {**run(1), "metrics_log_path": "/elsewhere/metrics.jsonl"},
            ]
        )
        + "\n"
    )
    report = health_report(metrics, 5, NOW)
    assert (report["metrics"], report["generated_at"]) == (
        str(metrics),
        "2024-12-10T12:00:00+00:00",
    )
    seven = report["services"]["forecaster_7d"]
    # 10 days ago falls between the metrics file's runs of 14 and 5 days ago.
    assert (seven["runs"], seven["last_status"], seven["last_run"]) == (3, "ok", at(5))
    assert seven["success_rate"] == 1.0 and seven["alerts"] == []
    assert list(report["services"]) == [*status.STANDARD_SERVICES, "forecaster_3d"]
    # The whole file was read: a service without runs has none at all.
    assert report["services"]["forecaster_30d"]["alerts"] == ["no run recorded"]
    metrics.unlink()
    only_fallback = health_report(metrics, 5, NOW)["services"]["forecaster_7d"]
    assert (only_fallback["runs"], only_fallback["last_status"]) == (1, "degraded")
    assert only_fallback["alerts"][0].startswith("the last run's metrics line went to")
    # No metrics file: the fallback's runs are all there is.
    assert health_report(metrics, 5, NOW)["services"]["forecaster_30d"]["alerts"] == [
        "no run recorded"
    ]


def test_a_file_read_in_part_says_so(tmp_path):
    """Reading stops once every service has its newest run: 7d's older success is not read."""
    metrics = tmp_path / "metrics.jsonl"
    records = [
        run(14),
        run(7, "failed", error="x"),
        *(run(7, service=f"forecaster_{days}d") for days in (15, 30, 90)),
    ]
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert health_report(metrics, 1, NOW)["services"]["forecaster_7d"]["alerts"] == [
        "last run failed: x",
        "no successful run in the newest 1 runs read",
    ]


def test_a_metrics_file_that_cannot_be_read_is_unknown(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(status, "FALLBACK_METRICS", tmp_path / "no-fallback.jsonl")
    missing = tmp_path / "metrics.jsonl"
    settings = type("Settings", (), {"metrics_log_path": missing})()
    assert status.show_status(settings, 5, False, NOW) == 3
    assert capsys.readouterr().err == (
        f"error: no metrics file at {missing}; run a service first, or point METRICS_LOG_PATH "
        "(or --metrics) at the file the services write\n"
    )
    missing.mkdir()
    assert status.show_status(settings, 5, False, NOW) == 3
    assert capsys.readouterr().err == (
        f"error: cannot read the metrics file {missing}: Is a directory; check its permissions\n"
    )


def test_the_printed_report(tmp_path, capsys):
    metrics = tmp_path / "metrics.jsonl"
    # 7d succeeded; 15d and 30d never ran; 90d failed: the services after one that never ran
    # are printed in full too.
    records = [run(2), run(20, "failed", error="no data", service="forecaster_90d")]
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    settings = type("Settings", (), {"metrics_log_path": metrics})()
    assert status.show_status(settings, 5, False, NOW) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "CRITICAL: forecaster_15d: no run recorded; forecaster_30d: no run recorded; "
        "forecaster_90d: last run failed: no data; forecaster_90d: no successful run recorded"
    )
    assert "  last success    2.0 days ago" in lines
    assert "  last success    never" in lines
    assert "  chronos         absent" in lines
    assert status.show_status(settings, 5, True, NOW) == 2
    out = capsys.readouterr().out
    assert out.startswith('{\n  "metrics": ') and json.loads(out)["last_n"] == 5


@pytest.mark.parametrize("whole", [True, False])
def test_the_alert_for_no_success_says_how_much_was_read(whole):
    runs = [run(2, "failed", error="x"), run(1, "failed", error="y")]
    expected = (
        "no successful run recorded" if whole else "no successful run in the newest 2 runs read"
    )
    assert service_health(runs, 5, NOW, whole)["alerts"][-1] == expected
