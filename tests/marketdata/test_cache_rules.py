"""What the cache hands a run, field by field: the tables as the files give them back, where
they came from and why, what a repair logs, and which files a read looks at."""

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import structlog
from fxforecast.marketdata import cache
from fxforecast.marketdata.schema import CROSSCHECK_FILE, RATES_FILE, WRITTEN_FILE, load_raw
from structlog.testing import capture_logs

LOG = structlog.get_logger("test")
SNAPSHOT = load_raw(None)


def _newer(folder):
    """The snapshot with one more day (2024-12-02), as the stored tables a refresh writes."""
    stored = cache.read(folder, LOG)
    market = stored.market.copy()
    market.loc[pd.Timestamp("2024-12-02")] = market.iloc[-1] * 1.001
    return replace(stored, market=market)


def test_a_read_with_no_cache_gives_an_empty_crosscheck_of_the_cache_layout(tmp_path):
    empty = cache.read(tmp_path / "data", LOG).crosscheck
    assert empty.empty and list(empty.columns) == ["dolar_observado", "libra_cobre"]
    assert list(empty.dtypes) == ["float64", "float64"]
    assert isinstance(empty.index, pd.DatetimeIndex) and empty.index.name == "date"


def test_a_write_returns_the_tables_as_the_files_give_them_back(tmp_path):
    """Whatever the index was called and however it was spaced, the cache holds dates named
    `date` with no frequency, the rates' and cross-check's own columns, and says where from."""
    folder = tmp_path / "data"
    stored = _newer(folder)
    days = pd.date_range("2024-11-25", periods=8, freq="D")
    crosscheck = pd.DataFrame(
        {"dolar_observado": range(8), "libra_cobre": range(8), "extra": range(8)},
        index=days,
        dtype=float,
    )
    rates = stored.rates.assign(extra=1.0).rename_axis("day")
    market = stored.market.rename_axis(None)
    market.index.freq = None
    written = cache.write(
        folder, replace(stored, market=market, rates=rates, crosscheck=crosscheck)
    )
    assert (written.kind, written.source, written.why) == (
        "cache",
        str(folder),
        "refreshed into the cache",
    )
    for table in (written.market, written.rates, written.crosscheck):
        assert table.index.name == "date" and table.index.freq is None
    assert list(written.rates.columns) == ["fed_rate", "chile_rate", "rate_differential"]
    assert list(written.crosscheck.columns) == ["dolar_observado", "libra_cobre"]
    assert (folder / CROSSCHECK_FILE).read_text().splitlines()[:2] == [
        "date,dolar_observado,libra_cobre",
        "2024-11-25,0.0,0.0",
    ]


def test_the_files_hold_dates_without_a_time(tmp_path):
    folder = tmp_path / "data"
    stored = _newer(folder)
    market = stored.market.rename(
        index={pd.Timestamp("2024-12-02"): pd.Timestamp("2024-12-02 15:30")}
    )
    cache.write(folder, replace(stored, market=market))
    assert (folder / "market_daily.csv").read_text().splitlines()[-1].startswith("2024-12-02,")


def test_a_missing_rates_file_is_rebuilt_from_the_snapshot(tmp_path):
    folder = tmp_path / "data"
    cache.write(folder, _newer(folder))
    (folder / RATES_FILE).unlink()
    (folder / WRITTEN_FILE).unlink()
    stored = cache.read(folder, LOG)
    assert stored.kind == "cache"
    pd.testing.assert_frame_equal(stored.rates, SNAPSHOT.rates, check_freq=False)
    assert stored.repair.startswith(
        f"cache failed its checks (data file not found: {folder / RATES_FILE};"
    )
    assert stored.repair.endswith(", its good rows kept (0 rows, 0 lines left out)")
    [aside] = folder.glob("broken-*")
    assert list(aside.iterdir()) == []  # nothing was read, so nothing to keep


def test_a_broken_crosscheck_file_keeps_its_good_rows_and_is_read_only_when_asked(tmp_path):
    folder = tmp_path / "data"
    stored = _newer(folder)
    crosscheck = pd.DataFrame(
        {"dolar_observado": [940.0, 941.0], "libra_cobre": [4.1, 4.2]},
        index=pd.DatetimeIndex(["2024-11-29", "2024-12-02"], name="date"),
    )
    cache.write(folder, replace(stored, crosscheck=crosscheck))
    path = folder / CROSSCHECK_FILE
    path.write_text(path.read_text().replace("2024-11-29,940.0", "2024-11-29,abc"))
    (folder / WRITTEN_FILE).unlink()
    assert cache.read(folder, LOG).repair is None  # a run does not read it
    assert not list(folder.glob("broken-*"))
    repaired = cache.read(folder, LOG, crosscheck=True)
    assert repaired.repair.startswith(f"cache failed its checks ({path} ")
    assert repaired.crosscheck.to_dict("index") == {
        pd.Timestamp("2024-12-02"): {"dolar_observado": 941.0, "libra_cobre": 4.2}
    }


def test_a_repair_is_logged_and_kept_aside_under_the_utc_time(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/Santiago")  # local time is not UTC here
    time.tzset()
    try:
        folder = tmp_path / "data"
        cache.write(folder, _newer(folder))
        (folder / RATES_FILE).write_text("date,fed_rate,chile_rate,rate_differential\nx,1,2,3\n")
        (folder / WRITTEN_FILE).unlink()
        start = datetime.now(UTC).replace(microsecond=0)
        with capture_logs() as logs:
            stored = cache.read(folder, LOG)
        end = datetime.now(UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    [aside] = folder.glob("broken-*")
    seconds = range(int((end - start).total_seconds()) + 1)
    names = {f"broken-{start + timedelta(seconds=s):%Y%m%dT%H%M%SZ}" for s in seconds}
    assert aside.name in names
    assert logs == [
        {
            "event": "cache failed its checks; its good rows kept",
            "repair": stored.repair,
            "log_level": "warning",
        }
    ]


def test_an_older_cache_gives_the_snapshot_and_says_so(tmp_path):
    """The snapshot's tables and folder, the cache's cross-check series (only the snapshot's
    rows are older), and the repair if the older cache needed one."""
    folder = tmp_path / "data"
    stored = _newer(folder)
    crosscheck = pd.DataFrame(
        {"dolar_observado": [940.0], "libra_cobre": [4.1]},
        index=pd.DatetimeIndex(["2024-11-20"], name="date"),
    )
    cache.write(
        folder, replace(stored, market=stored.market.loc[:"2024-11-20"], crosscheck=crosscheck)
    )
    with capture_logs() as logs:
        older = cache.read(folder, LOG, crosscheck=True)
    assert logs == [
        {
            "event": "cache is older than the embedded snapshot; using the snapshot",
            "cache_newest": "2024-11-20",
            "log_level": "warning",
        }
    ]
    assert (older.kind, older.source, older.repair) == ("snapshot", SNAPSHOT.source, None)
    pd.testing.assert_frame_equal(older.market, SNAPSHOT.market)
    pd.testing.assert_frame_equal(older.rates, SNAPSHOT.rates)
    assert older.crosscheck.to_dict("index") == {
        pd.Timestamp("2024-11-20"): {"dolar_observado": 940.0, "libra_cobre": 4.1}
    }
    (folder / RATES_FILE).unlink()
    (folder / WRITTEN_FILE).unlink()
    repaired = cache.read(folder, LOG)
    assert repaired.kind == "snapshot"
    assert repaired.repair.startswith("cache failed its checks (data file not found:")


def test_a_column_no_table_holds_is_named(tmp_path):
    stored = cache.read(tmp_path / "data", LOG)
    assert stored.column("libra_cobre").empty
    with pytest.raises(KeyError, match="'dolar_observador'"):
        stored.column("dolar_observador")
