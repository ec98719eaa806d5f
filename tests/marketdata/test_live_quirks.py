"""How the real sources behave beyond their documentation, on a local server (127.0.0.1).

Yahoo's refusals (429) and browser check, its duplicated last day and partial bars, exchange
days against UTC days, the sources' own error words, and a refresh that never fails a run.
"""

import json
import re
from datetime import date

import fxforecast.marketdata.refresh as refreshing
import pandas as pd
import pytest
import test_refresh
from fxforecast.marketdata import checks
from fxforecast.marketdata.providers import FETCHERS, Http, SourceError, mindicador, yahoo
from fxforecast.marketdata.schema import load_raw
from fxforecast.ops.service import run_service
from test_refresh import (
    FIXTURES,
    LOG,
    _down_settings,
    _last_metrics,
    fetch,
    line_for,
    seed_with_snapshot,
    serve,
    yahoo_answer,
)
from werkzeug import Response

sources = test_refresh.sources  # the fixture: every source URL at the local server
REFUSED = Response((FIXTURES / "yahoo_429.txt").read_bytes(), status=429)
YAHOO_404 = Response((FIXTURES / "yahoo_not_found.json").read_bytes(), status=404)


def _requests_to(server, path: str) -> int:
    return sum(1 for request, _ in server.log if request.path == path)


def _at(server, now: str, symbol: str, answer: dict) -> pd.Series:
    """One symbol's series as the provider returns it when asked at `now` (UTC)."""
    server.expect_request(f"/v8/finance/chart/{symbol}").respond_with_json(answer)
    http = Http(timeout_s=2, budget_s=10)
    try:
        base = server.url_for("").rstrip("/")
        return yahoo.fetch(http, base, symbol, date(2024, 11, 1), pd.Timestamp(now, tz="UTC"))
    finally:
        http.close()


# 1. Yahoo refuses plain clients; a 429 is one short retry, the other symbols still tried.


def test_yahoo_is_asked_as_a_browser_and_the_others_as_fxforecast(sources, tmp_path, capsys):
    serve(sources)
    assert fetch(capsys, tmp_path / "cache")[0] == 0
    agents = {request.path: request.headers.get("User-Agent", "") for request, _ in sources.log}
    assert "Chrome/" in agents["/v8/finance/chart/CLP=X"]  # curl_cffi's Chrome impersonation
    assert agents["/graph/fredgraph.csv"].startswith("fxforecast/")


def test_a_refused_symbol_is_retried_once_and_the_others_still_come(sources, tmp_path, capsys):
    serve(sources, {"/v8/finance/chart/HG=F": REFUSED})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    assert "failed: " in line_for(out, "Copper")
    assert "refused by the source (HTTP 429 Too Many Requests) after 2 attempt(s)" in out
    assert _requests_to(sources, "/v8/finance/chart/HG=F") == 2
    for column in ("USDCLP", "Oil", "DXY", "SP500", "VIX"):
        assert " ok: " in line_for(out, column)


def test_when_yahoo_refuses_everything_each_symbol_is_asked_once_more_at_most(
    sources, tmp_path, capsys
):
    serve(sources, {re.compile(r"^/v8/"): REFUSED})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    yahoo_requests = [r for r, _ in sources.log if r.path.startswith("/v8/")]
    assert len(yahoo_requests) == 2 + 5  # the first symbol twice, then each other one once
    for column in ("USDCLP", "Copper", "Oil", "DXY", "SP500", "VIX"):
        assert "refused by the source (HTTP 429" in line_for(out, column)
    assert " ok: " in line_for(out, "fed_rate") and "data for runs: cache" in out


# 2. The last day twice: the day's bar and a "live" row stamped at regularMarketTime.


def test_duplicated_last_day_is_stored_once_from_the_days_bar(sources, tmp_path, capsys):
    answer = yahoo_answer("sp500")
    result = answer["chart"]["result"][0]
    assert result["timestamp"][-1] == result["meta"]["regularMarketTime"]  # the recorded shape
    result["indicators"]["quote"][0]["close"][-1] = 6101.5  # the live row's later price
    serve(sources, {"/v8/finance/chart/^GSPC": Response(json.dumps(answer))})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0 and "ok: 5 new value(s), newest 2024-12-06" in line_for(out, "SP500")
    market = load_raw(tmp_path / "cache").market
    assert market.at[pd.Timestamp("2024-12-06"), "SP500"] == pytest.approx(6090.27)


def test_check_refuses_two_values_for_one_day():
    days = pd.to_datetime(["2024-12-05", "2024-12-06", "2024-12-06"])
    new = pd.Series([6075.11, 6090.27, 6090.27], index=days)
    history = load_raw(None).market["SP500"]
    feed = next(f for f in checks.FEEDS if f.column == "SP500")
    with pytest.raises(SourceError, match="more than one value for 2024-12-06"):
        checks.check(feed, new, history, pd.Timestamp("2024-12-09"), LOG)


def test_fetch_data_and_a_service_run_with_duplicate_429_and_fred_down(sources, tmp_path, capsys):
    # The ^GSPC fixture carries the duplicated last day; copper is refused; FRED errs.
    serve(
        sources,
        {
            "/v8/finance/chart/HG=F": REFUSED,
            "/graph/fredgraph.csv": Response("Internal Server Error", status=500),
        },
    )
    cache_dir = tmp_path / "data"
    code, out, _ = fetch(capsys, cache_dir)
    assert code == 0
    assert "ok: 5 new value(s), newest 2024-12-06" in line_for(out, "SP500")
    assert "refused by the source" in line_for(out, "Copper")
    assert "HTTP 500 after 3 attempt(s)" in line_for(out, "fed_rate")
    assert "data for runs: live" in out
    market = load_raw(cache_dir).market
    assert market.index[-1] == pd.Timestamp("2024-12-06")
    assert market.loc["2024-12-02":, "USDCLP"].notna().all()

    settings = _down_settings(sources.url_for("").rstrip("/"), tmp_path, stale_data_days=100000)
    assert run_service("forecaster_7d", 7, settings) == 0
    record = _last_metrics(tmp_path)
    assert record["status"] == "ok" and record["as_of"] == "2024-12-06"
    assert record["data"]["data_source"] == "live"
    assert "refused by the source" in record["data"]["refresh"]["Copper"]


# 3. "Today" is the exchange's day, in the exchange's zone.


def test_summer_time_bar_at_23_utc_belongs_to_the_next_london_day(httpserver):
    # 23:30 UTC on 2025-06-10 is 00:30 on the 11th in London: that bar has just started.
    series = _at(httpserver, "2025-06-10 23:30", "CLP=X", yahoo_answer("usdclp_bst"))
    assert series.index[-1] == pd.Timestamp("2025-06-10")
    assert series.iloc[-1] == pytest.approx(942.3)
    assert list(series.index) == list(pd.bdate_range("2025-06-02", "2025-06-10"))
    history, today = load_raw(None).market["USDCLP"], pd.Timestamp("2025-06-10")
    accepted = checks.check(checks.FEEDS[0], series, history, today, LOG)
    assert accepted.index[-1] == pd.Timestamp("2025-06-10")  # not "dated in the future"


def _copper_in_the_new_york_evening() -> dict:
    """HG=F asked on Monday 2024-12-09 at 19:30 New York: the session for Tuesday is open."""
    answer = yahoo_answer("copper")
    result = answer["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    live = int(pd.Timestamp("2024-12-10 00:29:58", tz="UTC").timestamp())
    monday = int(pd.Timestamp("2024-12-09 05:00", tz="UTC").timestamp())  # 00:00 New York
    result["meta"]["regularMarketTime"] = live
    result["timestamp"] += [monday, live]
    for key, values in {"open": [4.1730, 4.2010], "close": [4.2005, 4.2215]}.items():
        quote[key] += values
    for key in ("high", "low", "volume"):
        quote[key] += quote[key][-1:] * 2
    result["indicators"]["adjclose"][0]["adjclose"] += [4.2005, 4.2215]
    return answer


def test_futures_evening_rows_wait_for_the_new_york_day_to_end(httpserver):
    # Monday's bar and a live row stamped Monday 19:29 New York: neither is stored yet (once
    # stored, a value is kept for good), and no day comes twice.
    series = _at(httpserver, "2024-12-10 00:30", "HG=F", _copper_in_the_new_york_evening())
    assert series.index.is_unique
    assert series.index[-1] == pd.Timestamp("2024-12-06")
    assert pd.Timestamp("2024-11-28") not in series.index  # Thanksgiving's null row
    # Later that night, once New York's Monday is over, Monday's bar (not the live row) counts.
    httpserver.clear()
    series = _at(httpserver, "2024-12-10 05:30", "HG=F", _copper_in_the_new_york_evening())
    assert series.index[-1] == pd.Timestamp("2024-12-09")
    assert series.iloc[-1] == pytest.approx(4.2005)


def test_bar_of_the_current_exchange_day_is_dropped(httpserver):
    # The Monday 06:00 Santiago run (09:00 UTC, 04:00 New York): Monday's bar is trading.
    answer = _copper_in_the_new_york_evening()
    answer["chart"]["result"][0]["meta"]["regularMarketTime"] = 1733734800  # 09:00 UTC
    series = _at(httpserver, "2024-12-09 09:00", "HG=F", answer)
    assert series.index[-1] == pd.Timestamp("2024-12-06")


# 4. Errors keep the source's words.


def test_unknown_symbol_keeps_yahoos_description(sources, tmp_path, capsys):
    serve(sources, {"/v8/finance/chart/HG=F": YAHOO_404})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    assert (
        "failed: Yahoo HG=F: Not Found: No data found, symbol may be delisted (HTTP 404)"
        in line_for(out, "Copper")
    )
    assert _requests_to(sources, "/v8/finance/chart/HG=F") == 1  # a 404 is not asked again


WORDS = {
    "fred html error page": (
        "/graph/fredgraph.csv",
        Response((FIXTURES / "fred_error.html").read_bytes(), status=404),
        "fed_rate",
        "failed: FRED DFF: HTTP 404, an HTML page instead of the CSV: "
        "'Error | FRED | St. Louis Fed: The series does not exist.'",
    ),
    "mindicador unknown code": (
        "/api/tpm/2024",
        Response(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Error</title>'
            "</head><body><pre>Cannot GET /api/tpm/2024</pre></body></html>",
            status=404,
        ),
        "chile_rate",
        "failed: mindicador tpm/2024: Error: Cannot GET /api/tpm/2024 (HTTP 404)",
    ),
    "mindicador empty year": (
        "/api/tpm/2024",
        Response('{"version":"1.7.0","autor":"mindicador.cl","codigo":"tpm","serie":[]}'),
        "chile_rate",
        "rejected: mindicador tpm/2024/",
    ),
}


@pytest.mark.parametrize("case", list(WORDS))
def test_error_answers_keep_their_words(sources, tmp_path, capsys, case):
    path, response, column, words = WORDS[case]
    serve(sources, {path: response})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    assert words in line_for(out, column)
    if case == "mindicador empty year":
        assert "empty serie (nothing published yet, or an unknown code)" in line_for(out, column)


# 5. The other real shapes: mindicador's winter hours and a new, empty year; FRED's old CSV.


def test_mindicador_winter_hours_and_an_empty_new_year(httpserver):
    serve(httpserver)
    base = httpserver.url_for("").rstrip("/")
    http = Http(timeout_s=2, budget_s=10)
    try:
        now = pd.Timestamp("2025-01-02", tz="UTC")
        series = mindicador.fetch(http, base, "dolar", date(2024, 9, 1), now)
    finally:
        http.close()
    assert series.index.is_monotonic_increasing  # the answer is newest first
    assert series[pd.Timestamp("2024-09-02")] == 916.86  # 04:00 UTC: winter midnight
    assert series[pd.Timestamp("2024-12-06")] == 971.03  # 03:00 UTC: summer midnight
    assert _requests_to(httpserver, "/api/dolar/2025") == 1  # asked, empty, no harm


def test_fred_legacy_csv_with_dots(sources, tmp_path, capsys):
    legacy = Response((FIXTURES / "fred_dff_legacy.csv").read_bytes(), content_type="text/csv")
    serve(sources, {"/graph/fredgraph.csv": legacy})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0 and "ok: 7 new value(s), newest 2024-12-06" in line_for(out, "fed_rate")


# A refresh can never fail a run: any exception is reported and the run goes on.


def test_an_exception_in_one_series_spoils_only_that_series(sources, tmp_path, capsys, monkeypatch):
    def broken(*args):
        return 1 / 0  # stands for a bug, or an answer nobody foresaw

    monkeypatch.setitem(FETCHERS, "fred", broken)
    serve(sources)
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    assert "error: unexpected ZeroDivisionError: division by zero (at" in line_for(out, "fed_rate")
    assert " ok: " in line_for(out, "USDCLP") and "data for runs: live" in out


def test_an_exception_while_storing_leaves_the_cache_and_the_run_goes_on(
    sources, tmp_path, capsys, monkeypatch
):
    serve(sources)
    cache_dir = tmp_path / "cache"
    seed_with_snapshot(cache_dir)
    before = {p.name: p.read_bytes() for p in cache_dir.iterdir()}

    def broken(stored, accepted):
        raise KeyError("Copper")

    monkeypatch.setattr(refreshing, "merge", broken)
    code, out, err = fetch(capsys, cache_dir)
    assert code == 0 and "data for runs: cache" in out
    assert "cache left as it was: unexpected KeyError: 'Copper'" in err
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir() if p.name in before} == before

    settings = _down_settings(sources.url_for("").rstrip("/"), tmp_path, stale_data_days=100000)
    assert run_service("forecaster_7d", 7, settings) == 0
    record = _last_metrics(tmp_path)
    assert record["data"]["data_source"] == "snapshot" and record["as_of"] == "2024-11-29"
    assert "unexpected KeyError" in record["data"]["refresh_error"]


def test_an_exception_outside_any_series_still_leaves_a_run(sources, tmp_path, monkeypatch):
    def broken(timeout_s, budget_s):
        raise RuntimeError("no client today")  # stands for a bug before any series is asked

    monkeypatch.setattr(refreshing, "Http", broken)
    serve(sources)
    settings = _down_settings(sources.url_for("").rstrip("/"), tmp_path, stale_data_days=100000)
    assert run_service("forecaster_7d", 7, settings) == 0
    record = _last_metrics(tmp_path)
    assert record["data"]["data_source"] == "snapshot"
    assert record["data"]["refresh"]["USDCLP"].startswith("error: unexpected RuntimeError")
    assert "no client today" in record["data"]["refresh_error"]
