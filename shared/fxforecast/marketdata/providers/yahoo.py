"""Yahoo Finance's chart API: daily closes of the market columns.

GET {base}/v8/finance/chart/{symbol}?period1=..&period2=..&interval=1d answers
{"chart": {"result": [{"meta": {"currency": .., "exchangeTimezoneName": ..},
"timestamp": [..], "indicators": {"quote": [{"close": [..]}]}}], "error": null}};
each timestamp is the start of a trading day in the exchange's zone, a close is null where
nothing traded, and a failure comes as {"chart": {"result": null, "error": {...}}}.
"""

import json
from datetime import date
from urllib.parse import quote

import pandas as pd

from .http import Http, SourceError

# The currency Yahoo states for a symbol, where a different one means the wrong series.
CURRENCY = {"CLP=X": "CLP"}


def _timestamp(day: date) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def fetch(http: Http, base_url: str, symbol: str, start: date, today: date) -> pd.Series:
    body = http.get(
        "yahoo",
        f"{base_url}/v8/finance/chart/{quote(symbol, safe='')}",
        {
            "period1": _timestamp(start),
            "period2": _timestamp(today + pd.Timedelta(days=1)),
            "interval": "1d",
        },
    )
    try:
        chart = json.loads(body)["chart"]
        if chart.get("error"):
            raise SourceError(f"Yahoo {symbol}: {chart['error'].get('description', 'error')}")
        result = chart["result"][0]
        currency = result["meta"].get("currency")
        zone = result["meta"].get("exchangeTimezoneName") or "UTC"
        stamps = result.get("timestamp", [])  # absent when the period has no trading day
        closes = result["indicators"]["quote"][0].get("close", [])
        days = pd.to_datetime(stamps, unit="s", utc=True).tz_convert(zone)
        values = pd.to_numeric(pd.Series(closes, dtype=object), errors="raise")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise SourceError(f"Yahoo {symbol}: malformed chart response ({exc!r:.80})") from None
    if len(stamps) != len(closes):
        raise SourceError(
            f"Yahoo {symbol}: truncated response ({len(stamps)} timestamps, {len(closes)} closes)"
        )
    expected = CURRENCY.get(symbol)
    if expected and currency != expected:
        raise SourceError(f"Yahoo {symbol}: quoted in {currency}, expected {expected}")
    series = pd.Series(
        values.to_numpy(dtype=float),
        index=pd.DatetimeIndex(days.tz_localize(None).normalize(), name="date"),
    )
    # Today's bar is still trading: its "close" is the latest price, not a close.
    return series[series.index != pd.Timestamp(today)]
