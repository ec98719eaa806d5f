import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from fxforecast.engine.combiner import GreedyCombiner
from fxforecast.engine.member_cache import MemberCache
from fxforecast.errors import DataError
from fxforecast.evaluation.backtest import (
    BacktestSpec,
    fingerprint,
    plan,
    run_backtest,
    run_block,
    save_part,
    weekly_origins,
)
from fxforecast.evaluation.cluster import run_local
from fxforecast.settings import Settings
from joblib import delayed

SPEC = BacktestSpec(horizons=(7,), start="2019-10-04", end="2019-10-25", every=1, refit_weeks=4)
CONTRACT = [
    "model",
    "origin",
    "horizon_days",
    "target_date",
    "steps",
    "q0.025",
    "q0.1",
    "q0.5",
    "q0.9",
    "q0.975",
]


def test_origins_are_friday_closes_or_the_last_row_of_the_week(raw):
    origins = weekly_origins(raw.market.index, "2019-12-16", "2020-01-10")
    assert [o.date().isoformat() for o in origins] == [
        "2019-12-20",
        "2019-12-27",
        "2020-01-03",
        "2020-01-10",
    ]
    thursday_week = pd.DatetimeIndex(["2021-04-05", "2021-04-06", "2021-04-07", "2021-04-08"])
    assert weekly_origins(thursday_week, "2021-04-01", "2021-04-30") == [pd.Timestamp("2021-04-08")]


@pytest.fixture(scope="module")
def backtest(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("bt")
    settings = Settings(cache_dir=out / "cache")  # two processes share it
    metrics = run_backtest(raw, settings, SPEC, out, jobs=2, progress=False)
    return out, metrics


def test_backtest_writes_the_contract_and_scores(backtest):
    out, metrics = backtest
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert list(forecasts.columns[: len(CONTRACT)]) == CONTRACT
    assert set(forecasts["model"]) == {
        "ensemble",
        "random_walk",
        "arima_garch",
        "var",
        "random_forest",
    }
    ensemble = forecasts[forecasts["model"] == "ensemble"]
    assert list(ensemble["origin"]) == ["2019-10-04", "2019-10-11", "2019-10-18", "2019-10-25"]
    assert list(ensemble["target_date"]) == ["2019-10-11", "2019-10-18", "2019-10-25", "2019-11-01"]
    assert (ensemble["steps"] == 5).all()
    q = forecasts[CONTRACT[5:]].to_numpy()
    assert (q[:, 1:] >= q[:, :-1]).all()
    assert set(metrics["model"]) == set(forecasts["model"])
    for name in ("coverage.png", "relative_error.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    text = (out / "metrics.md").read_text()
    assert "rel_wql" in text and "dm_pvalue" in text
    assert not (out / ".parts").exists()


def test_later_data_leaves_earlier_forecasts_byte_identical(raw, backtest, tmp_path):
    out, _ = backtest
    market = raw.market.copy()
    later = market.index > pd.Timestamp("2019-10-18")
    # Inside the bad-tick bound: a larger jump that persists is refused as a level shift.
    market.loc[later, ["USDCLP", "Copper", "DXY"]] *= 1.1
    changed = type(raw)(market, raw.rates, raw.source)
    # With the first run's member cache: the earlier origins' paths are found there, the later
    # ones' keys changed with the rows they read, so they are computed again.
    run_backtest(changed, Settings(cache_dir=out / "cache"), SPEC, tmp_path, progress=False)
    columns = CONTRACT

    def rows(folder, earlier=True):
        frame = pd.read_csv(folder / "forecasts.csv", dtype=str)
        return frame[(frame["origin"] <= "2019-10-18") == earlier][columns].to_csv(index=False)

    assert rows(out) == rows(tmp_path)
    assert rows(out, earlier=False) != rows(tmp_path, earlier=False)
    later_rows = pd.read_csv(tmp_path / "forecasts.csv", dtype=str)
    original = pd.read_csv(out / "forecasts.csv", dtype=str)
    assert not later_rows[later_rows["origin"] == "2019-10-25"][columns].equals(
        original[original["origin"] == "2019-10-25"][columns]
    )


def test_a_finished_block_is_reused_and_a_stale_one_is_not(raw, tmp_path):
    spec = BacktestSpec((7,), "2019-10-04", "2019-10-04", 1, 4)
    [(days, origins)] = plan(raw, spec)
    parts = tmp_path / ".parts"

    def interrupted_after_one_block():
        """What an interrupted run leaves: its fingerprint and one finished block (marked)."""
        parts.mkdir()
        (parts / "fingerprint").write_text(fingerprint(raw, Settings(), spec))
        frame, _ = run_block(raw, Settings(cache_dir=None), days, origins, spec.refit_weeks)
        save_part(parts, days, origins, frame)
        part = next(parts.glob("h7_*.csv"))
        marked = pd.read_csv(part)
        marked.loc[marked["model"] == "ensemble", "q0.5"] = 12345.0
        marked.to_csv(part, index=False)

    interrupted_after_one_block()
    run_backtest(raw, Settings(cache_dir=None), spec, tmp_path, progress=False)
    result = pd.read_csv(tmp_path / "forecasts.csv")
    assert result.loc[result["model"] == "ensemble", "q0.5"].iloc[0] == 12345.0

    interrupted_after_one_block()  # other settings make the saved block stale
    run_backtest(raw, Settings(enable_rf=False, cache_dir=None), spec, tmp_path, progress=False)
    result = pd.read_csv(tmp_path / "forecasts.csv")
    assert result.loc[result["model"] == "ensemble", "q0.5"].iloc[0] != 12345.0
    assert "random_forest" not in set(result["model"])


def test_cli_rejects_a_reversed_window_in_one_line(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fxforecast",
            "backtest",
            "--start",
            "2020-01-10",
            "--end",
            "2019-01-04",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --start 2020-01-10 is after --end 2019-01-04"


def test_a_rerun_with_another_calibration_fits_no_combiner(raw, tmp_path, monkeypatch):
    """The combiner's fit at each origin is kept too: a re-run that changes only the
    calibration fits none, and its forecasts are those of a cold run with that calibration."""
    spec = BacktestSpec((7,), "2019-10-04", "2019-10-11", 1, 4)
    cache = MemberCache(tmp_path / "cache", 10**9)
    run_backtest(raw, Settings(cache_dir=cache.folder), spec, tmp_path / "first", progress=False)
    kept = {(row["member"], row["kind"]): row["entries"] for row in cache.info()["members"]}
    assert kept[("ensemble", "combination")] == 2  # one per origin
    fits = []
    fit = GreedyCombiner.fit
    monkeypatch.setattr(GreedyCombiner, "fit", lambda self, *a: fits.append(1) or fit(self, *a))
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    run_backtest(
        raw, Settings(cache_dir=cache.folder, calibration="regime"), spec, warm, progress=False
    )
    assert fits == []
    run_backtest(raw, Settings(cache_dir=None, calibration="regime"), spec, cold, progress=False)
    assert len(fits) == 2
    assert (warm / "forecasts.csv").read_bytes() == (cold / "forecasts.csv").read_bytes()


def test_a_rerun_with_another_combiner_and_calibration_computes_no_member(raw, tmp_path):
    """Every member path comes from the first run's cache; the forecasts are byte for byte
    those of a backtest run cold with the new combiner and calibration."""
    spec = BacktestSpec((7,), "2019-10-04", "2019-10-11", 1, 4)
    cache = MemberCache(tmp_path / "cache", 10**9)
    run_backtest(raw, Settings(cache_dir=cache.folder), spec, tmp_path / "first", progress=False)
    other = {"combiner": "inverse_loss", "calibration": "split_conformal"}
    warm = tmp_path / "warm"
    run_backtest(raw, Settings(cache_dir=cache.folder, **other), spec, warm, progress=False)
    assert cache.info()["last_run"]["misses"] == 0
    assert cache.info()["last_run"]["hits"] > 0
    cold = tmp_path / "cold"
    run_backtest(raw, Settings(cache_dir=None, **other), spec, cold, progress=False)
    assert (warm / "forecasts.csv").read_bytes() == (cold / "forecasts.csv").read_bytes()
    first = pd.read_csv(tmp_path / "first" / "forecasts.csv")
    assert not first.equals(pd.read_csv(warm / "forecasts.csv"))  # the settings did matter


def _block(k, folder):
    """A stand-in block: notes that it ran (and where), then fails (block 0) or waits."""
    (folder / f"{k}").write_text(str(os.getpid()))
    if k == 0:
        raise DataError("block 0 cannot run")
    time.sleep(0.2)
    return k


def test_local_workers_return_every_block_or_the_first_error_and_start_no_more(tmp_path):
    """--jobs 2: every block's result once, computed in two processes other than this one; a
    block's error reaches the caller as itself, and the blocks not yet started never run."""
    done = tmp_path / "ok"
    done.mkdir()
    results = run_local(2, [delayed(_block)(k, done) for k in range(1, 7)])
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    workers = {path.read_text() for path in done.iterdir()}
    assert len(workers) == 2 and str(os.getpid()) not in workers
    failing = tmp_path / "failing"
    failing.mkdir()
    with pytest.raises(DataError, match="block 0 cannot run"):
        list(run_local(2, [delayed(_block)(k, failing) for k in range(30)]))
    assert len(list(failing.iterdir())) < 10
