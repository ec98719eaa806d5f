"""A stand-in for Yahoo, FRED and mindicador on 127.0.0.1 for runs under a moved clock: it
answers in the shapes recorded in fixtures/live (Yahoo's chart JSON with each symbol's recorded
meta and bar times, FRED's CSV, mindicador's yearly series) and publishes one more business day
as its `today` moves. Up to the snapshot's last day it serves the snapshot's own values; after
it, each series goes on from its last real value with small deterministic moves (a stand-in's
data, not a market's). `stop()` freezes what is published; `resume()` publishes again."""

import json
import math
import re
from pathlib import Path

import pandas as pd
from fxforecast.marketdata.schema import load_raw
from pytest_httpserver import HTTPServer
from werkzeug import Response

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "live"
YAHOO = {  # symbol: (recorded answer, market column)
    "CLP=X": ("usdclp", "USDCLP"),
    "HG=F": ("copper", "Copper"),
    "CL=F": ("oil", "Oil"),
    "DX-Y.NYB": ("dxy", "DXY"),
    "^GSPC": ("sp500", "SP500"),
    "^VIX": ("vix", "VIX"),
}
MINDICADOR = {"dolar": "USDCLP", "libra_cobre": "Copper", "tpm": "chile_rate"}


class Sources:
    def __init__(self):
        raw = load_raw(None)
        self.last_real_day = raw.market.index[-1]
        self.real = {c: raw.market[c].dropna() for c in raw.market.columns}
        self.real["chile_rate"] = raw.rates["chile_rate"].dropna()
        self.fed_rate = float(raw.rates["fed_rate"].iloc[-1])
        self.today: pd.Timestamp | None = None  # set by the test: the runs' (moved) date
        self.stopped_after: pd.Timestamp | None = None
        self.clocks: list[pd.Timestamp] = []  # each Yahoo request's `now` (its period2)
        self.server = HTTPServer(host="127.0.0.1", port=0)
        for symbol in YAHOO:
            self.server.expect_request(f"/v8/finance/chart/{symbol}").respond_with_handler(
                self._yahoo
            )
        self.server.expect_request(re.compile(r"^/api/\w+/\d{4}$")).respond_with_handler(
            self._mindicador
        )
        self.server.expect_request("/graph/fredgraph.csv").respond_with_handler(self._fred)
        self.server.start()

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def close(self) -> None:
        self.server.clear()
        self.server.stop()

    def stop(self) -> None:
        """Publish nothing after the last business day before `today`."""
        self.stopped_after = self.published()[-1]

    def resume(self) -> None:
        self.stopped_after = None

    def published(self) -> pd.DatetimeIndex:
        """The finished business days after the snapshot: before `today`, and not after the day
        the sources stopped."""
        days = pd.bdate_range(
            self.last_real_day + pd.Timedelta(days=1), self.today, inclusive="left"
        )
        return days if self.stopped_after is None else days[days <= self.stopped_after]

    def value(self, column: str, day: pd.Timestamp) -> float:
        if day <= self.last_real_day:
            return float(self.real[column].asof(day))
        if column == "chile_rate":
            return float(self.real[column].iloc[-1])
        step = len(pd.bdate_range(self.last_real_day, day)) - 1
        return float(self.real[column].iloc[-1]) * math.exp(0.004 * math.sin(step))

    def series(self, column: str, start: pd.Timestamp) -> pd.Series:
        """Every published business day from `start` (the snapshot's days, then the new ones)."""
        days = pd.bdate_range(start, self.last_real_day).union(self.published())
        return pd.Series([self.value(column, day) for day in days], index=days)

    def _yahoo(self, request) -> Response:
        symbol = request.path.rsplit("/", 1)[1]
        recorded = json.loads((FIXTURES / f"yahoo_{YAHOO[symbol][0]}.json").read_text())
        result = recorded["chart"]["result"][0]
        zone = result["meta"]["exchangeTimezoneName"]
        first_bar = pd.Timestamp(result["timestamp"][0], unit="s", tz="UTC").tz_convert(zone)
        start = pd.Timestamp(int(request.args["period1"]), unit="s").normalize()
        now = pd.Timestamp(int(request.args["period2"]), unit="s", tz="UTC")
        self.clocks.append(now)
        closes = self.series(YAHOO[symbol][1], start)
        if self.stopped_after is None and self.today.day_of_week < 5:  # today's bar, trading
            closes[self.today] = closes.iloc[-1]
        # Each bar stamped at the recorded bar's time of day in the exchange's zone.
        stamps = [
            int((day.tz_localize(zone) + (first_bar - first_bar.normalize())).timestamp())
            for day in closes.index
        ]
        kept = [i for i, stamp in enumerate(stamps) if stamp < now.timestamp()]
        values = [round(closes.iloc[i], 4) for i in kept]
        result["timestamp"] = [stamps[i] for i in kept]
        result["indicators"]["quote"][0] = {
            "open": values,
            "high": values,
            "low": values,
            "close": values,
            "volume": [0] * len(values),
        }
        result["meta"]["regularMarketTime"] = int(now.timestamp())
        return Response(json.dumps(recorded), content_type="application/json")

    def _mindicador(self, request) -> Response:
        _, _, code, year = request.path.split("/")
        recorded = json.loads((FIXTURES / f"mindicador_{code}_2024.json").read_text())
        series = self.series(MINDICADOR[code], pd.Timestamp(f"{year}-01-01"))
        series = series[series.index.year == int(year)]
        recorded["serie"] = [
            {"fecha": f"{day.date()}T03:00:00.000Z", "valor": round(value, 4)}
            for day, value in series.iloc[::-1].items()
        ]
        return Response(json.dumps(recorded), content_type="application/json; charset=utf-8")

    def _fred(self, request) -> Response:
        start = pd.Timestamp(request.args["cosd"])
        published = self.published()
        end = published[-1] if len(published) else self.last_real_day
        rows = [f"{day.date()},{self.fed_rate}" for day in pd.date_range(start, end)]
        return Response("observation_date,DFF\n" + "\n".join(rows) + "\n", content_type="text/csv")
