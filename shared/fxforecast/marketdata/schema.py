"""The data files' shape: file and column names, reading one CSV with row-level errors, and a
data folder read into RawData (the embedded snapshot's folder by default)."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from . import defects

MARKET_FILE = "market_daily.csv"
RATES_FILE = "rates_daily.csv"
CROSSCHECK_FILE = "crosscheck_daily.csv"  # the official series, only used to check live answers
MARKET_COLUMNS = ["Date", "USDCLP", "Copper", "Oil", "DXY", "SP500", "VIX"]
RATES_COLUMNS = ["date", "fed_rate", "chile_rate", "rate_differential"]
CROSSCHECK_COLUMNS = ["date", "dolar_observado", "libra_cobre"]


@dataclass(frozen=True)
class RawData:
    market: pd.DataFrame  # indexed by date, the market columns as floats
    rates: pd.DataFrame  # indexed by date, the rates columns as floats
    source: str


def read_csv(path: Path, columns: list[str], date_column: str) -> pd.DataFrame:
    """One data file, indexed by date, every other column as floats; DataError naming the file,
    row and column of the first problem."""
    if not path.is_file():
        raise DataError(
            f"data file not found: {path}; point DATA_DIR or --data-dir at a folder holding "
            f"{MARKET_FILE} and {RATES_FILE}"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; it needs a header and daily rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise DataError(f"{path} is not a readable CSV file ({first_line})") from None
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
    for col in columns:
        if col == date_column:
            continue
        text = df[col].str.strip()
        blank = text.isin(["", "nan", "NaN", "null", "NA"])
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
    market = read_csv(folder / MARKET_FILE, MARKET_COLUMNS, "Date")
    rates = read_csv(folder / RATES_FILE, RATES_COLUMNS, "date")
    if market["USDCLP"].notna().sum() == 0:
        raise DataError(f"{folder / MARKET_FILE} has no USDCLP values")
    return RawData(market=market, rates=rates, source=str(folder))
