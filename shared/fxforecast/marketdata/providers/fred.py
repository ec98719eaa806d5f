"""FRED's public CSV download: the US effective federal funds rate (series DFF).

GET {base}/graph/fredgraph.csv?id=DFF&cosd=yyyy-mm-dd answers a CSV with header
`observation_date,DFF` (older files: `DATE,DFF`), one row per day, `.` where there is no value.
"""

import io
from datetime import date

import pandas as pd

from .http import Http, SourceError

DATE_HEADERS = ("observation_date", "DATE")


def fetch(http: Http, base_url: str, series_id: str, start: date, today: date) -> pd.Series:
    body = http.get(
        "fred", f"{base_url}/graph/fredgraph.csv", {"id": series_id, "cosd": start.isoformat()}
    )
    try:
        table = pd.read_csv(io.BytesIO(body), dtype=str, na_values=["."], keep_default_na=False)
        date_header = next(h for h in DATE_HEADERS if h in table.columns)
        days = pd.to_datetime(table[date_header], format="%Y-%m-%d")
        values = pd.to_numeric(table[series_id])
    except StopIteration:
        raise SourceError(f"FRED {series_id}: not the expected CSV (no date column)") from None
    except (ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"FRED {series_id}: malformed CSV ({exc!r:.80})") from None
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(days, name="date"))
    return series[series.index >= pd.Timestamp(start)]
