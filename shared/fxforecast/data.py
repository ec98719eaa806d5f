"""Load, validate and clean the daily market data; align exogenous series on past values only.

Cleaning always happens after the frame is cut at the as-of date, so nothing dated later can
change what a run sees.
"""

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

MARKET_FILE = "market_daily.csv"
RATES_FILE = "rates_daily.csv"
MARKET_COLUMNS = ["Date", "USDCLP", "Copper", "Oil", "DXY", "SP500", "VIX"]
RATES_COLUMNS = ["date", "fed_rate", "chile_rate", "rate_differential"]

# A close further than this (in log terms) from the median of the previous five valid closes
# is a bad tick. USD/CLP's largest genuine day since 2010 is -11.7% (2022-07-21); the known
# bad ticks are ~100x. ln(1.25) leaves a wide margin on both sides.
BAD_TICK_LOG_JUMP = float(np.log(1.25))
TICK_CHECKED = {"USDCLP": "usdclp", "Copper": "copper", "DXY": "dxy"}


@dataclass(frozen=True)
class RawData:
    market: pd.DataFrame  # indexed by date, the market columns as floats
    rates: pd.DataFrame  # indexed by date, the rates columns as floats
    source: str


@dataclass
class CleaningReport:
    bad_ticks: list[dict] = field(default_factory=list)
    stale_closes: int = 0
    missing_closes: int = 0

    def as_dict(self) -> dict:
        return {
            "bad_ticks": self.bad_ticks,
            "stale_closes": self.stale_closes,
            "missing_closes": self.missing_closes,
        }


@dataclass
class MarketData:
    """The cleaned frame: one row per business day up to the as-of date.

    Columns: usdclp (NaN where there was no genuine new close), copper, dxy, oil, sp500, vix,
    rate_differential (forward-filled, past values only).
    """

    frame: pd.DataFrame
    report: CleaningReport
    source: str

    @property
    def as_of(self) -> pd.Timestamp:
        return self.frame.index[-1]

    def closes(self) -> pd.Series:
        """Genuine USD/CLP closes (holidays, stale repeats and bad ticks removed)."""
        return self.frame["usdclp"].dropna()

    def filled_close(self) -> pd.Series:
        """USD/CLP on every business day: the last genuine close on or before it."""
        return self.frame["usdclp"].ffill()


def _read_csv(path: Path, columns: list[str], date_column: str) -> pd.DataFrame:
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
        out[col] = values.to_numpy(dtype=float)
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out


def default_data_dir() -> Path:
    """The snapshot shipped inside the package (ends 2024-11-29)."""
    return Path(str(resources.files("fxforecast") / "data"))


def load_raw(data_dir: Path | None = None) -> RawData:
    folder = Path(data_dir) if data_dir else default_data_dir()
    if not folder.is_dir():
        raise DataError(
            f"data folder not found: {folder}; point DATA_DIR or --data-dir at a folder holding "
            f"{MARKET_FILE} and {RATES_FILE}"
        )
    market = _read_csv(folder / MARKET_FILE, MARKET_COLUMNS, "Date")
    rates = _read_csv(folder / RATES_FILE, RATES_COLUMNS, "date")
    if market["USDCLP"].notna().sum() == 0:
        raise DataError(f"{folder / MARKET_FILE} has no USDCLP values")
    return RawData(market=market, rates=rates, source=str(folder))


def _bad_ticks(series: pd.Series) -> pd.Series:
    """Mask of values too far from the median of the previous five valid values (past only)."""
    valid = series.dropna()
    reference = valid.shift(1).rolling(5, min_periods=1).median()
    jump = np.abs(np.log(valid / reference))
    bad = (valid <= 0) | (jump > BAD_TICK_LOG_JUMP)
    return bad.reindex(series.index, fill_value=False)


def clean(raw: RawData, as_of: pd.Timestamp | str | None = None) -> MarketData:
    """Cut at `as_of` (default: the newest row), then clean and align."""
    market = raw.market
    if as_of is not None:
        as_of = pd.Timestamp(as_of)
        if as_of < market.index[0]:
            raise DataError(
                f"--as-of {as_of.date()} is before the first row of the data "
                f"({market.index[0].date()}); choose a later date"
            )
        market = market.loc[:as_of]
    market = market.copy()
    end = market.index[-1]
    report = CleaningReport()

    for column in TICK_CHECKED:
        bad = _bad_ticks(market[column])
        for date in market.index[bad]:
            if column == "USDCLP":
                report.bad_ticks.append(
                    {
                        "date": str(date.date()),
                        "column": column,
                        "value": float(market.at[date, column]),
                    }
                )
        market.loc[bad, column] = np.nan

    close = market["USDCLP"]
    # A close identical to the previous valid one is a holiday or a stale feed, not a price.
    previous = close.ffill().shift(1)
    stale = close.notna() & (close == previous)
    report.stale_closes = int(stale.sum())
    report.missing_closes = int(close.isna().sum())
    close = close.mask(stale)

    rates = raw.rates.loc[:end, "rate_differential"]
    rate_diff = rates.reindex(rates.index.union(market.index)).ffill().reindex(market.index)

    frame = pd.DataFrame(
        {
            "usdclp": close,
            "copper": market["Copper"].ffill(),
            "dxy": market["DXY"].ffill(),
            "oil": market["Oil"].ffill(),
            "sp500": market["SP500"].ffill(),
            "vix": market["VIX"].ffill(),
            "rate_differential": rate_diff,
        },
        index=market.index,
    )
    if frame["usdclp"].notna().sum() == 0:
        raise DataError(f"no valid USDCLP close on or before {end.date()}")
    return MarketData(frame=frame, report=report, source=raw.source)


def load(data_dir: Path | None = None, as_of=None) -> MarketData:
    return clean(load_raw(data_dir), as_of)
