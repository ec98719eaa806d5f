"""The local data cache: a data folder like the embedded snapshot, replaced file by file.

It lives in DATA_DIR when that is set, else in `data/` under the folder the service runs in.
market_daily.csv and rates_daily.csv have the snapshot's exact columns, so the cache loads like
any data folder; crosscheck_daily.csv holds the official series used only to check them, and
.cache-written.json the size of each file as last written. `read` gives the cache, or the
snapshot when there is no cache or it is older, with why; each file is read once. A cache file
that fails its checks is moved aside and its good rows kept; one shorter than the cache wrote is
refused (cut, or replaced while being read), never repaired.
"""

import json
import os
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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
    LAYOUT,
    MARKET_FILE,
    RATES_COLUMNS,
    RATES_FILE,
    WRITTEN_FILE,
    RawData,
    check_written,
    load_raw,
    parse_csv,
    read_whole,
    read_written,
    salvage_csv,
    written,
)

DEFAULT_CACHE_DIR = Path("data")
LOCK_FILE = ".cache.lock"
_HELD: set[str] = set()  # cache folders this process holds the lock of


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
    repair: str | None = None  # what a cache that failed its checks lost, and where it went

    def column(self, name: str) -> pd.Series:
        for table in (self.market, self.rates, self.crosscheck):
            if name in table.columns:
                return table[name]
        raise KeyError(name)

    def raw(self) -> RawData:
        return RawData(self.market, self.rates, self.source)


def _newest_close(market: pd.DataFrame) -> pd.Timestamp:
    return market["USDCLP"].last_valid_index()


def _empty_crosscheck() -> pd.DataFrame:
    return pd.DataFrame(
        columns=CROSSCHECK_COLUMNS[1:], dtype=float, index=pd.DatetimeIndex([], name="date")
    )


def _load(folder: Path, names: list[str]) -> tuple[dict, dict]:
    """Each file read once and checked: its table by name, and (its bytes, the problem) by
    name for each that failed. A file shorter than the cache wrote is a DataError, not a
    problem to repair: it may be being replaced right now."""
    record = read_written(folder)  # before the files: the cache renames it in after them
    tables, problems = {}, {}
    for name in names:
        path = folder / name
        if name == CROSSCHECK_FILE and not path.exists():
            tables[name] = _empty_crosscheck()  # not fetched yet
            continue
        try:
            content = read_whole(path)
        except DataError as exc:
            problems[name] = (b"", str(exc))
            continue
        check_written(path, content, record)
        if name == CROSSCHECK_FILE and content.strip() == ",".join(CROSSCHECK_COLUMNS).encode():
            tables[name] = _empty_crosscheck()  # as written before any official value came
            continue
        try:
            tables[name] = parse_csv(path, content, LAYOUT[name])
        except DataError as exc:
            problems[name] = (content, str(exc))
            continue
        if name == MARKET_FILE and tables[name]["USDCLP"].notna().sum() == 0:
            problems[name] = (content, f"{path} has no USDCLP values")
    return tables, problems


def _repair(folder: Path, tables: dict, problems: dict, snapshot: RawData, log) -> str:
    """Copy each failed file, as read, into folder/broken-<UTC time>/, keep its good rows (the
    snapshot filling the days they lack: stored values win), and write the cache again.
    Fills `tables`; returns what happened, for the log and the metrics line."""
    base = {MARKET_FILE: snapshot.market, RATES_FILE: snapshot.rates}
    kept = dropped = 0
    for name, (content, _) in problems.items():
        good, lost = salvage_csv(content, LAYOUT[name])
        kept, dropped = kept + len(good), dropped + lost
        tables[name] = good.combine_first(base[name]) if name in base else good
    market = tables[MARKET_FILE]
    tables[MARKET_FILE] = market.loc[: _newest_close(market)]
    aside = folder / f"broken-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired")
    try:
        write_all(aside, {name: content for name, (content, _) in problems.items() if content})
        stored = write(folder, stored)
        tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=True))
        where = f"moved aside to {aside}"
    except OSError as exc:
        where = f"not moved aside ({exc.strerror}; this run uses its good rows)"
    first = next(iter(problems.values()))[1]
    repair = (
        f"cache failed its checks ({first}); {where}, its good rows kept ({kept} rows, "
        f"{dropped} lines left out)"
    )
    log.warning("cache failed its checks; its good rows kept", repair=repair)
    return repair


def read(folder: Path, log, crosscheck: bool = False) -> Stored:
    """What a run (or a refresh, with `crosscheck`) starts from: the cache if there is one and
    it is not older than the snapshot, else the snapshot; each file read once."""
    snapshot = load_raw(None)
    if not (folder / MARKET_FILE).exists():
        empty = _empty_crosscheck()
        why = f"no cache in {folder}"
        return Stored(snapshot.market, snapshot.rates, empty, "snapshot", snapshot.source, why)
    names = list(LAYOUT) if crosscheck else [MARKET_FILE, RATES_FILE]
    tables, problems = _load(folder, names)
    repair = None
    if problems:
        with locked(folder):  # one repair at a time; another run may have done it meanwhile
            tables, problems = _load(folder, list(LAYOUT))
            if problems:
                repair = _repair(folder, tables, problems, snapshot, log)
    checks = tables[CROSSCHECK_FILE] if crosscheck else _empty_crosscheck()
    newest = _newest_close(tables[MARKET_FILE])
    if newest < _newest_close(snapshot.market):
        log.warning(
            "cache is older than the embedded snapshot; using the snapshot",
            cache_newest=str(newest.date()),
        )
        why = f"cache ends {newest.date()}, before the embedded snapshot"
        return Stored(
            snapshot.market, snapshot.rates, checks, "snapshot", snapshot.source, why, repair
        )
    why = "cache at least as new as the embedded snapshot"
    return Stored(
        tables[MARKET_FILE], tables[RATES_FILE], checks, "cache", str(folder), why, repair
    )


@contextmanager
def locked(folder: Path):
    """One refresh (or repair) at a time reads, extends and writes the cache; a repair inside a
    refresh already holds it. A folder that cannot be written cannot be locked either: the
    refresh goes on and reports the failed write."""
    key = os.path.abspath(folder)
    if key in _HELD:
        yield
        return
    with ExitStack() as stack:
        with suppress(OSError):
            stack.enter_context(file_lock(folder / LOCK_FILE))
            _HELD.add(key)
            stack.callback(_HELD.discard, key)
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
    files = {
        MARKET_FILE: _csv(stored.market, "Date"),
        RATES_FILE: _csv(stored.rates, "date"),
        CROSSCHECK_FILE: _csv(stored.crosscheck, "date"),
    }
    # Renamed in last (write_all keeps this order), and read first by _load and load_raw: a
    # reader never finds a file shorter than the record it read says.
    files[WRITTEN_FILE] = json.dumps({name: written(b) for name, b in files.items()}).encode()
    write_all(folder, files)
    return replace(stored, kind="cache", source=str(folder), why="refreshed into the cache")
