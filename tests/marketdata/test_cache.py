"""The cache is written only with data every run can use: the tables pass the cleaner a run
applies before any byte is renamed in."""

import json
from dataclasses import replace

import pandas as pd
import pytest
import structlog
from fxforecast.errors import DataError
from fxforecast.marketdata import cache
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import CROSSCHECK_FILE, MARKET_FILE, RATES_FILE, WRITTEN_FILE

LOG = structlog.get_logger("test")


def test_a_merged_cache_that_fails_the_cleaner_is_not_written(tmp_path):
    """Three newest closes x10 (a level shift every run refuses): the write is refused, the
    cache keeps its bytes, and the next run still forecasts from it."""
    folder = tmp_path / "data"
    written = cache.write(folder, cache.read(folder, LOG))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    market = written.market.copy()
    market.iloc[-3:, market.columns.get_loc("USDCLP")] *= 10
    with pytest.raises(DataError, match=r"\(3 in a row\) are 10x the level before them"):
        cache.write(folder, replace(written, market=market))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    stored = cache.read(folder, LOG)
    assert stored.kind == "cache"
    assert clean(stored.raw()).as_of == written.market.index[-1]


def _snapshot_cache(folder):
    """The snapshot written as the cache, with one more day (2024-12-02) so it is newer."""
    stored = cache.read(folder, LOG)
    market = stored.market.copy()
    market.loc[pd.Timestamp("2024-12-02")] = market.iloc[-1] * 1.001
    return cache.write(folder, replace(stored, market=market))


def test_no_cache_an_older_cache_and_a_newer_one(tmp_path):
    folder = tmp_path / "data"
    none = cache.read(folder, LOG)
    assert (none.kind, none.why) == ("snapshot", f"no cache in {folder}")
    assert none.market.index[-1] == pd.Timestamp("2024-11-29") and none.crosscheck.empty
    written = _snapshot_cache(folder)
    newer = cache.read(folder, LOG)
    assert (newer.kind, newer.source, newer.why) == (
        "cache",
        str(folder),
        "cache at least as new as the embedded snapshot",
    )
    pd.testing.assert_frame_equal(newer.market, written.market)
    pd.testing.assert_frame_equal(newer.rates, written.rates)
    older = written.market.loc[:"2024-11-20"]
    cache.write(folder, replace(written, market=older))
    stale = cache.read(folder, LOG)
    assert (stale.kind, stale.why) == (
        "snapshot",
        "cache ends 2024-11-20, before the embedded snapshot",
    )
    assert stale.market.index[-1] == pd.Timestamp("2024-11-29")


def test_the_cache_records_each_file_it_writes(tmp_path):
    folder = tmp_path / "data"
    _snapshot_cache(folder)
    record = json.loads((folder / WRITTEN_FILE).read_bytes())
    for name in (MARKET_FILE, RATES_FILE, CROSSCHECK_FILE):
        content = (folder / name).read_bytes()
        assert record[name] == {"rows": content.count(b"\n") - 1, "bytes": len(content)}
    assert (folder / MARKET_FILE).read_text().splitlines()[
        0
    ] == "Date,USDCLP,Copper,Oil,DXY,SP500,VIX"
    assert (folder / MARKET_FILE).read_text().splitlines()[-1].startswith("2024-12-02,")
    assert (folder / RATES_FILE).read_text().splitlines()[
        0
    ] == "date,fed_rate,chile_rate,rate_differential"


def test_a_file_cut_after_the_cache_wrote_it_is_refused(tmp_path):
    folder = tmp_path / "data"
    _snapshot_cache(folder)
    path = folder / MARKET_FILE
    content = path.read_bytes()
    rows = content.count(b"\n") - 1
    cut = b"".join(content.splitlines(keepends=True)[:-2])
    path.write_bytes(cut)
    with pytest.raises(DataError) as error:
        cache.read(folder, LOG)
    assert str(error.value) == (
        f"{path} has {rows - 2} rows ({len(cut)} bytes), fewer than the {rows} rows "
        f"({len(content)} bytes) the cache last wrote: it was cut or replaced by an older copy; "
        f"restore it, or delete {folder / WRITTEN_FILE} to take it as it is"
    )


def test_a_cache_that_fails_its_checks_keeps_its_good_rows_and_the_file_as_read(tmp_path):
    """A word where a number belongs on 2019-03-01: that row is left out, the snapshot fills
    that day back in, the newer row stays, and the file as read is kept aside."""
    folder = tmp_path / "data"
    written = _snapshot_cache(folder)
    path = folder / MARKET_FILE
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("2019-03-01"))
    cells = lines[at].split(",")
    cells[2] = "abc"
    lines[at] = ",".join(cells[:7])
    broken = "\n".join(lines) + "\n"
    path.write_text(broken)
    (folder / WRITTEN_FILE).unlink()  # edited by hand (shorter than the record says)
    stored = cache.read(folder, LOG)
    assert stored.kind == "cache"
    pd.testing.assert_frame_equal(stored.market, written.market)
    [aside] = folder.glob("broken-*")
    assert (aside / MARKET_FILE).read_text() == broken and [p.name for p in aside.iterdir()] == [
        MARKET_FILE
    ]
    assert stored.repair.startswith(f"cache failed its checks ({path} ")
    assert stored.repair.endswith(
        f"; moved aside to {aside}, its good rows kept ({len(lines) - 2} rows, 1 lines left out)"
    )
    again = cache.read(folder, LOG)  # repaired: read as it is now
    assert again.repair is None
    pd.testing.assert_frame_equal(again.market, written.market)


def test_a_cache_without_usdclp_values_is_repaired_from_the_snapshot(tmp_path):
    folder = tmp_path / "data"
    _snapshot_cache(folder)
    path = folder / MARKET_FILE
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join(
            [
                lines[0],
                *[",".join([line.split(",")[0], "", *line.split(",")[2:]]) for line in lines[1:]],
            ]
        )
        + "\n"
    )
    (folder / WRITTEN_FILE).unlink()
    stored = cache.read(folder, LOG)
    assert f"{path} has no USDCLP values" in stored.repair
    assert stored.market["USDCLP"].last_valid_index() == pd.Timestamp("2024-11-29")


def test_the_cross_check_series_are_read_only_when_asked(tmp_path):
    """None fetched yet (the first refresh found mindicador down): the cache writes the header
    alone, and reads it back as no values, not as a broken file to repair."""
    folder = tmp_path / "data"
    written = _snapshot_cache(folder)
    assert (folder / CROSSCHECK_FILE).read_text() == "date,dolar_observado,libra_cobre\n"
    empty = cache.read(folder, LOG, crosscheck=True)
    assert empty.crosscheck.empty and empty.repair is None
    assert not list(folder.glob("broken-*"))
    crosscheck = pd.DataFrame(
        {"dolar_observado": [940.0], "libra_cobre": [4.1]}, index=pd.DatetimeIndex(["2024-12-02"])
    )
    cache.write(folder, replace(written, crosscheck=crosscheck))
    assert cache.read(folder, LOG).crosscheck.empty
    asked = cache.read(folder, LOG, crosscheck=True).crosscheck
    assert asked.to_dict("list") == {"dolar_observado": [940.0], "libra_cobre": [4.1]}
    (folder / CROSSCHECK_FILE).unlink()
    assert cache.read(folder, LOG, crosscheck=True).crosscheck.empty
