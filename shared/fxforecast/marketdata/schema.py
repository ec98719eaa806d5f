"""The data files' shape: file and column names, reading one CSV with row-level errors, and a
data folder read into RawData (the embedded snapshot's folder by default).

Each file is read once, whole, and parsed from those bytes: a file replaced while a run reads
it gives that run one version or the other, never a line of each. A folder the cache wrote
records each file's size (WRITTEN_FILE): a file shorter than that was cut or replaced by an
older copy, and is refused.
"""

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fsio import utf8_text
from . import defects

MARKET_FILE = "market_daily.csv"
RATES_FILE = "rates_daily.csv"
CROSSCHECK_FILE = "crosscheck_daily.csv"  # the official series, only used to check live answers
MARKET_COLUMNS = ["Date", "USDCLP", "Copper", "Oil", "DXY", "SP500", "VIX"]
RATES_COLUMNS = ["date", "fed_rate", "chile_rate", "rate_differential"]
CROSSCHECK_COLUMNS = ["date", "dolar_observado", "libra_cobre"]
# Each file's columns, the date column first.
LAYOUT = {
    MARKET_FILE: MARKET_COLUMNS,
    RATES_FILE: RATES_COLUMNS,
    CROSSCHECK_FILE: CROSSCHECK_COLUMNS,
}
WRITTEN_FILE = ".cache-written.json"  # rows and bytes of each file as the cache last wrote it
BLANKS = ["", "nan", "NaN", "null", "NA"]


@dataclass(frozen=True)
class RawData:
    market: pd.DataFrame  # indexed by date, the market columns as floats
    rates: pd.DataFrame  # indexed by date, the rates columns as floats
    source: str


def _not_found(path: Path) -> DataError:
    return DataError(
        f"data file not found: {path}; point DATA_DIR or --data-dir at a folder holding "
        f"{MARKET_FILE} and {RATES_FILE}"
    )


def read_whole(path: Path) -> bytes:
    """A data file's bytes, in one read."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a data file; remove or rename it") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; make it readable") from None


def _lines(path: Path, content: bytes) -> list[str]:
    """The file's lines, blank ones left out; DataError when it is not UTF-8 text or a line has
    another number of fields than the header (a cut or torn line, e.g. `2024-12-02,9`)."""
    try:
        text = utf8_text(content)
    except ValueError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8 CSV") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise DataError(f"{path} is empty; it needs a header and daily rows")
    width = numbered[0][1].count(",") + 1
    for number, line in numbered[1:]:
        if line.count(",") + 1 != width:
            raise DataError(
                f"{path} line {number}: {line.count(',') + 1} field(s) where the header has "
                f"{width} ({line[:60]!r}): a cut or torn line; complete or remove it"
            )
    return [line for _, line in numbered]


def parse_csv(path: Path, content: bytes, columns: list[str]) -> pd.DataFrame:
    """One data file's bytes, indexed by date (the first of `columns`), every other column as
    floats; DataError naming the file, row and column of the first problem."""
    lines = _lines(path, content)
    df = pd.read_csv(io.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    date_column = columns[0]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )
    if df.empty:
        raise DataError(f"{path} has a header but no rows")
    dates = pd.to_datetime(df[date_column], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna())[0])
        raise DataError(
            f"{path} row {row + 2}: {date_column} {df[date_column].iloc[row]!r} is not a "
            "yyyy-mm-dd date; fix or remove that row"
        )
    defects.check_dates(path, dates, date_column)
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
    for col in columns[1:]:
        text = df[col].str.strip()
        blank = text.isin(BLANKS)
        values = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = values.isna() & ~blank
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{path} row {row + 2} ({df[date_column].iloc[row]}): {col} value "
                f"{df[col].iloc[row]!r} is not a number; fix or blank that value"
            )
        defects.check_values(path, dates, col, values.to_numpy(dtype=float))
        out[col] = values.to_numpy(dtype=float)
    return out.sort_index()  # rows out of date order are taken in date order


def salvage_csv(content: bytes, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """The rows of a file that failed parse_csv that pass every check on their own (a whole
    line, a date not after today, numbers finite and plausible; the first row of a date seen
    twice), and how many lines were left out. No row if the header lacks a column."""
    lines = content.decode("utf-8-sig", "replace").replace("\x00", "").splitlines()
    lines = [line for line in lines if line.strip()]
    header = lines[0].split(",") if lines else []
    if any(c not in header for c in columns):
        empty = pd.DataFrame(columns=columns[1:], dtype=float, index=_dates([]))
        return empty, max(len(lines) - 1, 0)
    whole = [line for line in lines[1:] if line.count(",") + 1 == len(header)]
    df = pd.read_csv(io.StringIO("\n".join([lines[0], *whole])), dtype=str, keep_default_na=False)
    dates = pd.to_datetime(df[columns[0]], format="%Y-%m-%d", errors="coerce")
    good = dates.notna() & (dates <= pd.Timestamp(datetime.now(UTC).date()) + defects.FUTURE_MARGIN)
    values = {}
    for col in columns[1:]:
        text = df[col].str.strip()
        blank = text.isin(BLANKS)
        numbers = pd.to_numeric(text.where(~blank), errors="coerce")
        good &= blank | (numbers.abs() <= defects.MAX_ABS_VALUE)
        values[col] = numbers.to_numpy(dtype=float)
    kept = pd.DataFrame(values, index=_dates(dates)).loc[good.to_numpy()]
    kept = kept[~kept.index.duplicated()]
    return kept.sort_index(), len(lines) - 1 - len(kept)


def _dates(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values, name="date")


def read_written(folder: Path) -> dict:
    """What the cache last wrote in `folder` (nothing for a folder it never wrote). Read before
    the data files: the cache renames this record in after them."""
    try:
        return json.loads((folder / WRITTEN_FILE).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{folder / WRITTEN_FILE} is unreadable ({exc}); delete it (the cache writes it again)"
        ) from None


def written(content: bytes) -> dict:
    """The record of one file the cache writes: its data rows and bytes."""
    return {"rows": content.count(b"\n") - 1, "bytes": len(content)}


def check_written(path: Path, content: bytes, record: dict) -> None:
    """Refuse a file shorter than the cache last wrote it."""
    expected = record.get(path.name)
    if expected and len(content) < expected["bytes"]:
        found = written(content)
        raise DataError(
            f"{path} has {found['rows']} rows ({found['bytes']} bytes), fewer than the "
            f"{expected['rows']} rows ({expected['bytes']} bytes) the cache last wrote: it was cut "
            f"or replaced by an older copy; restore it, or delete {path.parent / WRITTEN_FILE} "
            "to take it as it is"
        )


def default_data_dir() -> Path:
    """The snapshot shipped inside the package (ends 2024-11-29)."""
    return Path(str(resources.files("fxforecast.marketdata") / "snapshot"))


def load_raw(data_dir: Path | None = None) -> RawData:
    """A data folder's two files (each read once), or the embedded snapshot's."""
    folder = Path(data_dir) if data_dir else default_data_dir()
    if not folder.is_dir():
        raise DataError(
            f"data folder not found: {folder}; point DATA_DIR or --data-dir at a folder holding "
            f"{MARKET_FILE} and {RATES_FILE}"
        )
    record = read_written(folder)
    tables = {}
    for name in (MARKET_FILE, RATES_FILE):
        content = read_whole(folder / name)
        check_written(folder / name, content, record)
        tables[name] = parse_csv(folder / name, content, LAYOUT[name])
    if tables[MARKET_FILE]["USDCLP"].notna().sum() == 0:
        raise DataError(f"{folder / MARKET_FILE} has no USDCLP values")
    return RawData(market=tables[MARKET_FILE], rates=tables[RATES_FILE], source=str(folder))
