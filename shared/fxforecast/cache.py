"""The local data cache: a data folder like the embedded snapshot, replaced file by file.

It lives in DATA_DIR when that is set, else in `data/` under the folder the service runs in.
market_daily.csv and rates_daily.csv have the snapshot's exact columns, so the cache loads like
any data folder; crosscheck_daily.csv holds the official series used only to check them.
"""

import fcntl
import io
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import MARKET_FILE, RATES_COLUMNS, RATES_FILE, RawData, _read_csv, clean, load_raw
from .errors import DataError
from .fsio import write_all
from .settings import Settings

DEFAULT_CACHE_DIR = Path("data")
CROSSCHECK_FILE = "crosscheck_daily.csv"
CROSSCHECK_COLUMNS = ["date", "dolar_observado", "libra_cobre"]
LOCK_FILE = ".cache.lock"


def cache_dir(settings: Settings) -> Path:
    return settings.data_dir or DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class Stored:
    """What a refresh starts from and writes back: the three tables, indexed by date."""

    market: pd.DataFrame
    rates: pd.DataFrame
    crosscheck: pd.DataFrame

    def column(self, name: str) -> pd.Series:
        for table in (self.market, self.rates, self.crosscheck):
            if name in table.columns:
                return table[name]
        raise KeyError(name)


def _newest_close(raw: RawData) -> pd.Timestamp:
    return raw.market["USDCLP"].last_valid_index()


def choose(folder: Path, log) -> tuple[RawData, str]:
    """The cache if it loads and is not older than the snapshot, else the snapshot; and which."""
    snapshot = load_raw(None)
    if not (folder / MARKET_FILE).exists():
        return snapshot, "snapshot"
    try:
        cached = load_raw(folder)
    except DataError as exc:
        log.warning("cache unreadable; using the embedded snapshot", error=str(exc))
        return snapshot, "snapshot"
    if _newest_close(cached) < _newest_close(snapshot):
        log.warning(
            "cache is older than the embedded snapshot; using the snapshot",
            cache_newest=str(_newest_close(cached).date()),
        )
        return snapshot, "snapshot"
    return cached, "cache"


def _read_crosscheck(folder: Path, log) -> pd.DataFrame:
    path = folder / CROSSCHECK_FILE
    if path.exists():
        try:
            return _read_csv(path, CROSSCHECK_COLUMNS, "date")
        except DataError as exc:
            log.warning("cross-check file unreadable; starting it afresh", error=str(exc))
    return pd.DataFrame(
        columns=CROSSCHECK_COLUMNS[1:], dtype=float, index=pd.DatetimeIndex([], name="date")
    )


def read(folder: Path, log) -> Stored:
    raw, _ = choose(folder, log)
    return Stored(raw.market, raw.rates, _read_crosscheck(folder, log))


@contextmanager
def locked(folder: Path):
    """One writer at a time: concurrent services merge into each other's results in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _csv(frame: pd.DataFrame, date_label: str) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index_label=date_label, date_format="%Y-%m-%d")
    return buffer.getvalue().encode()


def write(folder: Path, stored: Stored) -> None:
    """Check the new files with the loader and cleaner every run uses, then rename them in.

    A DataError from the check leaves the cache as it was."""
    files = {
        MARKET_FILE: _csv(stored.market, "Date"),
        RATES_FILE: _csv(stored.rates[RATES_COLUMNS[1:]], "date"),
        CROSSCHECK_FILE: _csv(stored.crosscheck[CROSSCHECK_COLUMNS[1:]], "date"),
    }
    with tempfile.TemporaryDirectory(dir=folder, prefix=".check-") as check:
        for name, content in files.items():
            (Path(check) / name).write_bytes(content)
        clean(load_raw(Path(check)))
    write_all(folder, files)
