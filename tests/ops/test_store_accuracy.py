"""Every forecast is stored once per (service, as-of); realized accuracy once actuals exist;
two runs of one service at once."""

import fcntl
import json
import sqlite3
import time

import pandas as pd
import pytest
from fxforecast.cli import main
from fxforecast.marketdata.schema import default_data_dir
from helpers import FAST_MEMBERS, metrics_lines, run_service, start_service

# Targets 2024-05-10, 09-20 and 11-29 (the snapshot's last day): 2, 2 and 3 in the windows.
AS_OF = ["2024-05-03", "2024-09-13", "2024-11-22"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Three 7d forecasts inside the snapshot, the first one made twice."""
    folder = tmp_path_factory.mktemp("store")
    for as_of in [*AS_OF, AS_OF[0]]:
        done = run_service("forecaster_7d", folder, "--as-of", as_of, **FAST_MEMBERS)
        assert done.returncode == 0, done.stderr
    return folder


def stored_rows(db):
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT service, as_of, target_date FROM forecasts ORDER BY as_of"
        ).fetchall()


def test_rerun_replaces_never_duplicates(workdir):
    assert stored_rows(workdir / "forecasts.sqlite") == [
        ("forecaster_7d", "2024-05-03", "2024-05-10"),
        ("forecaster_7d", "2024-09-13", "2024-09-20"),
        ("forecaster_7d", "2024-11-22", "2024-11-29"),
    ]
    assert len(metrics_lines(workdir / "metrics.jsonl")) == 4


def actual_close(date: str) -> float:
    """Straight from the shipped CSV, independent of the cleaning code."""
    market = pd.read_csv(default_data_dir() / "market_daily.csv", index_col="Date")
    return float(market.loc[date, "USDCLP"])


def test_accuracy_matches_the_forecast_files(workdir, capsys):
    code = main(["status", "--accuracy", "--json", "--db", str(workdir / "forecasts.sqlite")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["actuals_until"] == "2024-11-29"
    entry = report["services"]["forecaster_7d"]
    assert entry["stored"] == 3 and entry["pending"] == 0
    assert entry["newest_target"] == "2024-11-29"

    forecasts = [
        json.loads((workdir / "output/forecaster_7d" / d / "forecast.json").read_text())
        for d in AS_OF
    ]
    actual = [actual_close(f["target_date"]) for f in forecasts]
    target = [f["steps"][-1] for f in forecasts]
    errors = [t["q0.5"] - a for t, a in zip(target, actual, strict=True)]
    no_change = [abs(f["last_close"] - a) for f, a in zip(forecasts, actual, strict=True)]
    in80 = [t["q0.1"] <= a <= t["q0.9"] for t, a in zip(target, actual, strict=True)]

    three = entry["windows"]["3m"]  # targets after 2024-08-29: the last two forecasts only
    assert three["n"] == 2 and entry["windows"]["6m"]["n"] == 2
    assert three["mae"] == pytest.approx(sum(map(abs, errors[1:])) / 2, abs=1e-3)
    year = entry["windows"]["12m"]
    assert year["n"] == 3
    assert year["mae"] == pytest.approx(sum(map(abs, errors)) / 3, abs=1e-3)
    assert year["bias"] == pytest.approx(sum(errors) / 3, abs=1e-3)
    assert year["rel_mae"] == pytest.approx(sum(map(abs, errors)) / sum(no_change), abs=1e-4)
    assert year["coverage_80"] == pytest.approx(sum(in80) / 3, abs=1e-3)


def test_forecast_beyond_the_data_awaits_its_actual(workdir, tmp_path, capsys):
    """Actuals that end 2024-10-31 leave the November forecast waiting."""
    for name in ("market_daily.csv", "rates_daily.csv"):
        frame = pd.read_csv(default_data_dir() / name, dtype=str)
        frame[frame.iloc[:, 0] <= "2024-10-31"].to_csv(tmp_path / name, index=False)
    main(
        [
            "status",
            "--accuracy",
            "--json",
            "--db",
            str(workdir / "forecasts.sqlite"),
            "--data-dir",
            str(tmp_path),
        ]
    )
    entry = json.loads(capsys.readouterr().out)["services"]["forecaster_7d"]
    assert entry["pending"] == 1 and entry["windows"]["12m"]["n"] == 2


def test_accuracy_text_and_missing_db(workdir, tmp_path, capsys):
    assert main(["status", "--accuracy", "--db", str(workdir / "forecasts.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "rel_MAE" in out and "3 stored, 0 awaiting" in out
    assert main(["status", "--accuracy", "--db", str(tmp_path / "none.sqlite")]) == 1
    assert "no forecast database at" in capsys.readouterr().err


def test_store_failure_keeps_the_forecast(tmp_path):
    """A database path that is a folder: the run still succeeds and says what went wrong."""
    (tmp_path / "blocked.sqlite").mkdir()
    done = run_service(
        "forecaster_7d",
        tmp_path,
        "--as-of",
        "2024-10-04",
        FORECAST_DB=str(tmp_path / "blocked.sqlite"),
        **FAST_MEMBERS,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output/forecaster_7d/2024-10-04/forecast.json").is_file()
    [record] = metrics_lines(tmp_path / "metrics.jsonl")
    assert record["status"] == "ok"
    assert any("forecast not stored" in w for w in record["warnings"])


def test_two_runs_of_one_service_at_once(tmp_path):
    """Both runs wait while the service lock is held and write nothing until they have it,
    then run one after the other: both finish, the metrics file stays valid, the store keeps
    one forecast for the as-of date."""
    lock_path = tmp_path / "logs/forecaster_7d.lock"
    lock_path.parent.mkdir()
    with open(lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        runs = [
            start_service("forecaster_7d", tmp_path, "--as-of", "2024-10-04", **FAST_MEMBERS)
            for _ in range(2)
        ]
        log = tmp_path / "logs/forecaster_7d.log"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            not log.exists() or log.read_text().count("holds the lock; waiting") < 2
        ):
            time.sleep(0.2)
        assert log.read_text().count("holds the lock; waiting") == 2
        # Held a while longer: a run that went on without the lock would write its forecast,
        # its row in the store and its metrics line in these seconds (a fast run takes ~3 s).
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert not (tmp_path / "output/forecaster_7d").exists()
            assert not (tmp_path / "forecasts.sqlite").exists()
            assert not (tmp_path / "metrics.jsonl").exists()
            time.sleep(0.2)
        assert all(run.poll() is None for run in runs)  # both are waiting, neither gave up
        fcntl.flock(held, fcntl.LOCK_UN)
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    records = metrics_lines(tmp_path / "metrics.jsonl")
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert stored_rows(tmp_path / "forecasts.sqlite") == [
        ("forecaster_7d", "2024-10-04", "2024-10-11")
    ]


def test_accuracy_reads_the_cache_the_services_read(tmp_path, monkeypatch, capsys):
    """Actuals that only the live-data cache holds (a week past the snapshot) are scored."""
    cache = tmp_path / "data"
    cache.mkdir()
    week = pd.bdate_range("2024-12-02", "2024-12-06").strftime("%Y-%m-%d")
    market = pd.read_csv(default_data_dir() / "market_daily.csv", dtype=str)
    extra = pd.DataFrame({c: market[c].iloc[-1] for c in market.columns}, index=range(5))
    extra["Date"], extra["USDCLP"] = week, ["971.5", "968.2", "972.0", "969.9", "970.4"]
    pd.concat([market, extra]).to_csv(cache / "market_daily.csv", index=False)
    rates = pd.read_csv(default_data_dir() / "rates_daily.csv", dtype=str)
    more = pd.DataFrame({c: rates[c].iloc[-1] for c in rates.columns}, index=range(7))
    more["date"] = pd.date_range("2024-11-30", "2024-12-06").strftime("%Y-%m-%d")
    pd.concat([rates, more]).to_csv(cache / "rates_daily.csv", index=False)

    done = run_service("forecaster_7d", tmp_path, "--as-of", "2024-11-29", **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr
    monkeypatch.chdir(tmp_path)  # the services' folder: its data/ is the cache
    monkeypatch.delenv("DATA_DIR", raising=False)
    code = main(["status", "--accuracy", "--json", "--db", str(tmp_path / "forecasts.sqlite")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["actuals_until"] == "2024-12-06"
    entry = report["services"]["forecaster_7d"]
    assert entry["pending"] == 0 and entry["newest_target"] == "2024-12-06"
