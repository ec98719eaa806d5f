"""FRED's public CSV download: the US effective federal funds rate (series DFF).

GET {base}/graph/fredgraph.csv?id=DFF&cosd=yyyy-mm-dd answers a CSV with header
`observation_date,DFF` (older files: `DATE,DFF`), one row per day; a day without a value is
an empty field (older files: `.`). A wrong series id or a FRED outage answers an HTML page.
"""

import io
from datetime import date

import pandas as pd

from .http import FetchFailed, Http, SourceError, page_text

DATE_HEADERS = ("observation_date", "DATE")
MISSING = [".", ""]


def fetch(http: Http, base_url: str, series_id: str, start: date, now: pd.Timestamp) -> pd.Series:
    try:
        body = http.get(
            "fred", f"{base_url}/graph/fredgraph.csv", {"id": series_id, "cosd": start.isoformat()}
        )
    except FetchFailed as exc:
        title = page_text(exc.body)
        if title is None:
            raise
        raise FetchFailed(
            f"FRED {series_id}: HTTP {exc.status}, an HTML page instead of the CSV: {title!r}",
            exc.status,
        ) from None
    title = page_text(body)
    if title is not None:
        raise SourceError(f"FRED {series_id}: an HTML page instead of the CSV: {title!r}")
    try:
        table = pd.read_csv(io.BytesIO(body), dtype=str, na_values=MISSING, keep_default_na=False)
        date_header = next(h for h in DATE_HEADERS if h in table.columns)
        days = pd.to_datetime(table[date_header], format="%Y-%m-%d")
        values = pd.to_numeric(table[series_id])
    except StopIteration:
        raise SourceError(f"FRED {series_id}: not the expected CSV (no date column)") from None
    except (ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"FRED {series_id}: malformed CSV ({exc!r:.80})") from None
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(days, name="date"))
    return series[series.index >= pd.Timestamp(start)]
