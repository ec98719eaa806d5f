"""The local data cache: a data folder like the embedded snapshot, replaced file by file.

It lives in DATA_DIR when that is set, else in `data/` under the folder the service runs in.
market_daily.csv and rates_daily.csv have the snapshot's exact columns, so the cache loads like
any data folder; crosscheck_daily.csv holds the official series used only to check them.
`read` gives the cache, or the snapshot when the cache is missing, unreadable or older, with
why; each file is read once.
"""

from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..fsio import locked as file_lock
from ..fsio import write_all
from ..settings import Settings
from .clean import clean
from .schema import (
    CROSSCHECK_COLUMNS,
    CROSSCHECK_FILE,
    MARKET_FILE,
    RATES_COLUMNS,
    RATES_FILE,
    RawData,
    load_raw,
    read_csv,
)

DEFAULT_CACHE_DIR = Path("data")
LOCK_FILE = ".cache.lock"


def cache_dir(settings: Settings) -> Path:
    return settings.data_dir or DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class Stored:
    """The three tables, indexed by date, and where market and rates came from."""

    market: pd.DataFrame
    rates: pd.DataFrame
    crosscheck: pd.DataFrame
    kind: str  # cache or snapshot
    source: str  # the folder read
    why: str  # why this folder: a line for the log and the metrics line

    def column(self, name: str) -> pd.Series:
        for table in (self.market, self.rates, self.crosscheck):
            if name in table.columns:
                return table[name]
        raise KeyError(name)

    def raw(self) -> RawData:
        return RawData(self.market, self.rates, self.source)


def _newest_close(raw: RawData) -> pd.Timestamp:
    return raw.market["USDCLP"].last_valid_index()


def _empty_crosscheck() -> pd.DataFrame:
    return pd.DataFrame(
        columns=CROSSCHECK_COLUMNS[1:], dtype=float, index=pd.DatetimeIndex([], name="date")
    )


def _read_crosscheck(folder: Path, log) -> pd.DataFrame:
    path = folder / CROSSCHECK_FILE
    if path.exists():
        try:
            return read_csv(path, CROSSCHECK_COLUMNS, "date")
        except DataError as exc:
            log.warning("cross-check file unreadable; starting it afresh", error=str(exc))
    return _empty_crosscheck()


def _choose(folder: Path, log) -> tuple[RawData, str, str]:
    """The cache if it loads and is not older than the snapshot, else the snapshot; which; why."""
    snapshot = load_raw(None)
    if not (folder / MARKET_FILE).exists():
        return snapshot, "snapshot", f"no cache in {folder}"
    try:
        cached = load_raw(folder)
    except DataError as exc:
        log.warning("cache unreadable; using the embedded snapshot", error=str(exc))
        return snapshot, "snapshot", f"cache unreadable: {exc}"
    if _newest_close(cached) < _newest_close(snapshot):
        newest = str(_newest_close(cached).date())
        log.warning(
            "cache is older than the embedded snapshot; using the snapshot", cache_newest=newest
        )
        return snapshot, "snapshot", f"cache ends {newest}, before the embedded snapshot"
    return cached, "cache", "cache at least as new as the embedded snapshot"


def read(folder: Path, log, crosscheck: bool = False) -> Stored:
    """What a run (or a refresh, with `crosscheck`) starts from; each file read once."""
    raw, kind, why = _choose(folder, log)
    checks = _read_crosscheck(folder, log) if crosscheck else _empty_crosscheck()
    return Stored(raw.market, raw.rates, checks, kind, raw.source, why)


@contextmanager
def locked(folder: Path):
    """One refresh at a time reads, extends and writes the cache. A folder that cannot be
    written cannot be locked either: the refresh goes on and reports the failed write."""
    with ExitStack() as stack:
        with suppress(OSError):
            stack.enter_context(file_lock(folder / LOCK_FILE))
        yield


def _csv(frame: pd.DataFrame, date_label: str) -> bytes:
    return frame.to_csv(index_label=date_label, date_format="%Y-%m-%d").encode()


def _as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as read_csv gives it back: dates named `date`, no frequency."""
    return frame.set_axis(pd.DatetimeIndex(frame.index, name="date", freq=None))


def write(folder: Path, stored: Stored) -> Stored:
    """Check the tables with the cleaner every run uses, then rename the files in; returns them
    as the cache now holds them. A DataError from the check leaves the cache as it was."""
    stored = replace(
        stored,
        market=_as_read(stored.market),
        rates=_as_read(stored.rates[RATES_COLUMNS[1:]]),
        crosscheck=_as_read(stored.crosscheck[CROSSCHECK_COLUMNS[1:]]),
    )
    clean(stored.raw())
    write_all(
        folder,
        {
            MARKET_FILE: _csv(stored.market, "Date"),
            RATES_FILE: _csv(stored.rates, "date"),
            CROSSCHECK_FILE: _csv(stored.crosscheck, "date"),
        },
    )
    return replace(stored, kind="cache", source=str(folder), why="refreshed into the cache")
