"""Yahoo Finance's chart API: daily closes of the market columns.

GET {base}/v8/finance/chart/{symbol}?period1=..&period2=..&interval=1d answers
{"chart": {"result": [{"meta": {"currency": .., "exchangeTimezoneName": ..,
"regularMarketTime": .., ...}, "timestamp": [..], "indicators": {"quote": [{"open": [..],
"close": [..], ...}]}}], "error": null}}; each timestamp is the start of a trading day in the
exchange's zone, a close is null where nothing traded. An unknown symbol is HTTP 404 with
{"chart": {"result": null, "error": {"code": "Not Found", "description": "..."}}}.

Quirks handled here, so that one value per finished exchange day leaves this module:
- while a session trades, the answer can carry a "live" row stamped at
  `meta.regularMarketTime`, on the same exchange day as that day's bar (yfinance's
  fix_Yahoo_returning_live_separate): it is dropped, and of two rows on one day the earlier
  stamp (the day's bar) is kept;
- the current exchange day's bar is still trading, and "today" is the exchange's, not UTC's:
  CLP=X (Europe/London) starts the next day's bar at 23:00 UTC in British summer time, and a
  futures session opens in the New York evening.
"""

import json
from datetime import date
from urllib.parse import quote

import numpy as np
import pandas as pd

from .http import FetchFailed, Http, SourceError

# The currency Yahoo states for a symbol, where a different one means the wrong series.
CURRENCY = {"CLP=X": "CLP"}


def _timestamp(day: date) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def _error_description(body: bytes) -> str | None:
    """Yahoo's own words in an error answer, if the body is its JSON error object."""
    try:
        error = json.loads(body)["chart"]["error"]
        return f"{error['code']}: {error['description']}"
    except (ValueError, KeyError, TypeError):
        return None


def fetch(http: Http, base_url: str, symbol: str, start: date, now: pd.Timestamp) -> pd.Series:
    try:
        body = http.get(
            "yahoo",
            f"{base_url}/v8/finance/chart/{quote(symbol, safe='')}",
            {"period1": _timestamp(start), "period2": int(now.timestamp()), "interval": "1d"},
        )
    except FetchFailed as exc:
        reason = _error_description(exc.body)
        if reason is None:
            raise
        raise FetchFailed(f"Yahoo {symbol}: {reason} (HTTP {exc.status})", exc.status) from None
    try:
        chart = json.loads(body)["chart"]
        if chart.get("error"):
            raise SourceError(f"Yahoo {symbol}: {_error_description(body) or chart['error']}")
        result = chart["result"][0]
        meta = result["meta"]
        currency = meta.get("currency")
        zone = meta.get("exchangeTimezoneName") or "UTC"
        live_stamp = meta.get("regularMarketTime")
        stamps = np.asarray(result.get("timestamp", []), dtype=np.int64)  # absent: no trading
        closes = result["indicators"]["quote"][0].get("close", [])
        values = pd.to_numeric(pd.Series(closes, dtype=object), errors="raise")
        local = pd.to_datetime(stamps, unit="s", utc=True).tz_convert(zone)
        exchange_today = now.tz_convert(zone).normalize().tz_localize(None)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise SourceError(f"Yahoo {symbol}: malformed chart response ({exc!r:.80})") from None
    if len(stamps) != len(closes):
        raise SourceError(
            f"Yahoo {symbol}: truncated response ({len(stamps)} timestamps, {len(closes)} closes)"
        )
    expected = CURRENCY.get(symbol)
    if expected and currency != expected:
        raise SourceError(f"Yahoo {symbol}: quoted in {currency}, expected {expected}")
    days = local.tz_localize(None).normalize()
    bars = pd.DataFrame({"stamp": stamps, "close": values.to_numpy(dtype=float)}, index=days)
    finished = (bars.index < exchange_today) & (bars["stamp"] != live_stamp)
    bars = bars[finished].dropna().sort_values("stamp", kind="stable")
    series = bars[~bars.index.duplicated(keep="first")].sort_index()["close"]
    return series.rename(None).rename_axis("date")
