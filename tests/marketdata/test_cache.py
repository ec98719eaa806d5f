"""The cache is written only with data every run can use: the tables pass the cleaner a run
applies before any byte is renamed in."""

from dataclasses import replace

import pytest
import structlog
from fxforecast.errors import DataError
from fxforecast.marketdata import cache
from fxforecast.marketdata.clean import clean

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
