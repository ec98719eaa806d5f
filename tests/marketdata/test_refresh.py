"""Live data refresh against a real HTTP server on 127.0.0.1 serving recorded answers.

No test reaches the internet: every source URL points at 127.0.0.1.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import structlog
from fxforecast.cli import main
from fxforecast.marketdata import checks, load_for_run
from fxforecast.marketdata.cache import cache_dir, read
from fxforecast.marketdata.providers import SourceError
from fxforecast.marketdata.refresh import refresh
from fxforecast.marketdata.schema import MARKET_FILE, RATES_FILE, default_data_dir, load_raw
from fxforecast.ops.service import run_service
from fxforecast.settings import Settings
from werkzeug import Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "live"
YAHOO = {
    "CLP=X": "usdclp",
    "HG=F": "copper",
    "CL=F": "oil",
    "DX-Y.NYB": "dxy",
    "^GSPC": "sp500",
    "^VIX": "vix",
}
MINDICADOR = ("dolar", "tpm", "libra_cobre")
NEW_DAYS = pd.to_datetime(["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"])
LOG = structlog.get_logger("test")


def yahoo_answer(name="usdclp") -> dict:
    return json.loads((FIXTURES / f"yahoo_{name}.json").read_text())


def _mindicador(code):
    def answer(request):
        year = request.path.rsplit("/", 1)[1]
        path = FIXTURES / f"mindicador_{code}_{year}.json"
        body = (
            path.read_text()
            if path.exists()
            else json.dumps(
                {"version": "1.7.0", "autor": "mindicador.cl", "codigo": code, "serie": []}
            )
        )
        return Response(body, content_type="application/json; charset=utf-8")

    return answer


def serve(httpserver, overrides=None):
    """The recorded answers; `overrides` maps a path to a replacement answer (a Response)."""
    for path, response in (overrides or {}).items():
        httpserver.expect_request(path).respond_with_response(response)
    for symbol, name in YAHOO.items():
        httpserver.expect_request(f"/v8/finance/chart/{symbol}").respond_with_data(
            (FIXTURES / f"yahoo_{name}.json").read_bytes(), content_type="application/json"
        )
    for code in MINDICADOR:
        httpserver.expect_request(re.compile(rf"^/api/{code}/\d{{4}}$")).respond_with_handler(
            _mindicador(code)
        )
    httpserver.expect_request("/graph/fredgraph.csv").respond_with_data(
        (FIXTURES / "fred_dff.csv").read_bytes(), content_type="text/csv"
    )


@pytest.fixture
def sources(monkeypatch, tmp_path, httpserver):
    """Every source URL at the local server; logs in tmp_path."""
    base = httpserver.url_for("").rstrip("/")
    for key in ("YAHOO_URL", "MINDICADOR_URL", "FRED_URL"):
        monkeypatch.setenv(key, base)
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    return httpserver


def fetch(capsys, cache: Path, *extra) -> tuple[int, str, str]:
    code = main(["fetch-data", "--data-dir", str(cache), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def line_for(out: str, column: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{column} "))


def seed_with_snapshot(cache: Path) -> None:
    cache.mkdir()
    for name in (MARKET_FILE, RATES_FILE):
        shutil.copy(default_data_dir() / name, cache / name)


def test_normal_refresh_adds_new_rows_and_keeps_stored_ones(sources, tmp_path, capsys):
    serve(sources)
    cache = tmp_path / "cache"
    code, out, _ = fetch(capsys, cache)
    assert code == 0
    assert "ok: 5 new value(s), newest 2024-12-06" in line_for(out, "USDCLP")
    assert "data for runs: live" in out

    raw, snapshot = load_raw(cache), load_raw(None)
    pd.testing.assert_frame_equal(raw.market.loc[:"2024-11-29"], snapshot.market)
    closes = yahoo_answer()["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    assert raw.market.loc[NEW_DAYS, "USDCLP"].tolist() == closes[-5:]
    assert raw.market.index[-1] == pd.Timestamp("2024-12-06")
    # S&P 500 bars are stamped 14:30 UTC, copper 05:00 UTC: both land on their trading day.
    assert raw.market.at[pd.Timestamp("2024-12-02"), "SP500"] == pytest.approx(6047.15)
    assert raw.market.at[pd.Timestamp("2024-12-02"), "Copper"] == pytest.approx(4.1215)
    rates = raw.rates.loc["2024-11-30":]
    assert rates.index[-1] == pd.Timestamp("2024-12-06") and len(rates) == 7  # calendar days
    assert (rates["fed_rate"] == 4.58).all() and (rates["chile_rate"] == 5.25).all()
    assert rates["rate_differential"].round(2).eq(0.67).all()
    crosscheck = pd.read_csv(cache / "crosscheck_daily.csv", index_col="date")
    assert crosscheck.at["2024-12-06", "dolar_observado"] == 971.03  # recorded, not spliced


def test_second_refresh_with_nothing_new_changes_nothing(sources, tmp_path, capsys):
    serve(sources)
    cache = tmp_path / "cache"
    fetch(capsys, cache)
    before = (cache / MARKET_FILE).read_bytes()
    code, out, _ = fetch(capsys, cache)
    assert code == 0
    assert "ok: 0 new value(s), newest 2024-12-06" in line_for(out, "USDCLP")
    assert (cache / MARKET_FILE).read_bytes() == before


def _usdclp(change) -> Response:
    answer = yahoo_answer()
    change(answer["chart"]["result"][0])
    return Response(json.dumps(answer), content_type="application/json")


def _scaled(result, factor):
    quote = result["indicators"]["quote"][0]
    quote["close"] = [v * factor for v in quote["close"]]


BAD_ANSWERS = {
    "malformed": (
        "/v8/finance/chart/CLP=X",
        Response("<html>Will be right back</html>"),
        "USDCLP",
        "malformed chart response",
    ),
    "truncated body": (
        "/v8/finance/chart/CLP=X",
        Response(json.dumps(yahoo_answer())[:900]),
        "USDCLP",
        "malformed",
    ),
    "truncated arrays": (
        "/v8/finance/chart/CLP=X",
        _usdclp(lambda r: r["indicators"]["quote"][0]["close"].pop()),
        "USDCLP",
        "truncated response",
    ),
    "empty": (
        "/v8/finance/chart/CLP=X",
        _usdclp(lambda r: (r.pop("timestamp"), r["indicators"]["quote"][0].update(close=[]))),
        "USDCLP",
        "empty answer",
    ),
    "100x jump": (
        "/v8/finance/chart/CLP=X",
        _usdclp(lambda r: _scaled(r, 0.01)),
        "USDCLP",
        "implausible level: 9.6",
    ),
    "future dates": (
        "/graph/fredgraph.csv",
        Response((FIXTURES / "fred_dff.csv").read_text() + "2100-01-01,4.58\n"),
        "fed_rate",
        "dates in the future: 2100-01-01",
    ),
    "wrong currency": (
        "/v8/finance/chart/CLP=X",
        _usdclp(lambda r: r["meta"].update(currency="USD")),
        "USDCLP",
        "quoted in USD, expected CLP",
    ),
    "yahoo error": (
        "/v8/finance/chart/HG=F",
        Response(
            json.dumps(
                {
                    "chart": {
                        "result": None,
                        "error": {
                            "code": "Not Found",
                            "description": "No data found, symbol may be delisted",
                        },
                    }
                }
            )
        ),
        "Copper",
        "symbol may be delisted",
    ),
    "rate as a fraction": (
        "/graph/fredgraph.csv",
        Response((FIXTURES / "fred_dff.csv").read_text().replace(",4.58", ",0.0458")),
        "fed_rate",
        "implausible level",
    ),
    "html instead of csv": (
        "/graph/fredgraph.csv",
        Response("<html><body>Error</body></html>"),
        "fed_rate",
        "an HTML page instead of the CSV: 'Error'",
    ),
    "mindicador malformed": (
        "/api/tpm/2024",
        Response('{"serie": [{"fecha": "2024-12-06"}]}'),
        "chile_rate",
        "malformed",
    ),
    "mindicador not an object": ("/api/tpm/2024", Response("[]"), "chile_rate", "malformed"),
    "yahoo not an object": ("/v8/finance/chart/CLP=X", Response("[]"), "USDCLP", "malformed"),
}


@pytest.mark.parametrize("case", list(BAD_ANSWERS))
def test_bad_answer_is_rejected_and_stored_data_kept(sources, tmp_path, capsys, case):
    path, response, column, reason = BAD_ANSWERS[case]
    serve(sources, {path: response})
    cache = tmp_path / "cache"
    seed_with_snapshot(cache)
    stored = load_raw(cache)

    code, out, _ = fetch(capsys, cache)

    assert code == 0
    assert "rejected: " in line_for(out, column) and reason in line_for(out, column)
    assert reason in (tmp_path / "logs" / "fetch-data.log").read_text()
    raw = load_raw(cache)
    frame = raw.market if column in raw.market.columns else raw.rates
    kept = stored.market if column in raw.market.columns else stored.rates
    pd.testing.assert_series_equal(frame[column].loc[:"2024-11-29"], kept[column])
    assert frame[column].last_valid_index() == kept[column].last_valid_index()
    others = [line for line in out.splitlines()[:10] if not line.startswith(f"{column} ")]
    assert all(" ok: " in line for line in others)  # one bad source spoils nothing else


def test_cross_check_rejects_a_close_at_another_currency_level():
    observado = pd.Series([977.44, 979.96], index=NEW_DAYS[:2])
    with pytest.raises(SourceError, match="official dolar_observado"):
        checks.cross_check("USDCLP", observado * 4.2, observado)  # pesos -> COP-like level
    checks.cross_check("USDCLP", observado * 1.01, observado)  # a normal gap passes


def test_isolated_bad_tick_is_dropped_not_the_whole_answer(sources, tmp_path, capsys):
    def one_bad_tick(result):
        result["indicators"]["quote"][0]["close"][-3] = 9.77  # 2024-12-04

    serve(sources, {"/v8/finance/chart/CLP=X": _usdclp(one_bad_tick)})
    cache = tmp_path / "cache"
    code, out, _ = fetch(capsys, cache)
    assert code == 0 and "ok: 4 new value(s)" in line_for(out, "USDCLP")
    market = load_raw(cache).market
    assert pd.isna(market.at[pd.Timestamp("2024-12-04"), "USDCLP"])
    assert market.at[pd.Timestamp("2024-12-06"), "USDCLP"] == pytest.approx(973.65)


def test_server_errors_are_retried_then_the_source_is_skipped(sources, tmp_path, capsys):
    serve(sources, {re.compile(r"^/v8/"): Response("busy", status=503)})
    code, out, _ = fetch(capsys, tmp_path / "cache")
    assert code == 0
    assert "failed: " in line_for(out, "USDCLP") and "HTTP 503 after 3 attempt(s)" in out
    assert "yahoo failed earlier in this refresh" in line_for(out, "VIX")
    yahoo_requests = [r for r, _ in sources.log if r.path.startswith("/v8/")]
    assert len(yahoo_requests) == 3  # three attempts, then the other symbols are skipped
    assert "ok: " in line_for(out, "fed_rate")
    assert "data for runs: cache" in out  # the rates came in; USD/CLP is the snapshot's


@pytest.fixture
def hanging_url():
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(32)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def refusing_url():
    """A port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _down_settings(url, tmp_path, **more) -> Settings:
    return Settings(
        data_refresh=True,
        yahoo_url=url,
        mindicador_url=url,
        fred_url=url,
        data_timeout_s=0.3,
        enable_arima=False,
        enable_var=False,
        enable_rf=False,
        output_dir=tmp_path / "output",
        log_dir=tmp_path / "logs",
        metrics_log_path=tmp_path / "logs" / "metrics.jsonl",
        **more,
    )


def _last_metrics(tmp_path) -> dict:
    return json.loads((tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()[-1])


def test_every_source_down_still_forecasts_from_snapshot_then_cache(
    sources, tmp_path, capsys, hanging_url, refusing_url
):
    # No cache yet, every host hangs: the run forecasts from the embedded snapshot.
    assert run_service("forecaster_7d", 7, _down_settings(hanging_url, tmp_path)) == 0
    record = _last_metrics(tmp_path)
    # Published, marked degraded: the data is older than STALE_DATA_DAYS, and the warning says
    # where to look.
    assert record["status"] == "degraded" and record["as_of"] == "2024-11-29"
    assert record["warnings"][0].startswith("stale data: the newest USD/CLP close (2024-11-29)")
    assert "the refresh brought nothing newer: check the sources" in record["warnings"][0]
    assert record["data"]["data_source"] == "snapshot"
    assert record["data"]["newest"]["USDCLP"] == "2024-11-29"
    assert all(s.startswith("failed: ") for s in record["data"]["refresh"].values())

    # A refresh fills data/ (the default cache); then every host refuses: the cache is used.
    serve(sources)
    assert fetch(capsys, Path("data"))[0] == 0
    assert run_service("forecaster_7d", 7, _down_settings(refusing_url, tmp_path)) == 0
    record = _last_metrics(tmp_path)
    assert record["status"] == "degraded" and record["as_of"] == "2024-12-06"
    assert record["data"]["data_source"] == "cache"
    assert record["data"]["newest"]["USDCLP"] == "2024-12-06"
    assert "no answer" in record["data"]["refresh"]["USDCLP"]


def test_live_refresh_in_a_service_run_records_live(sources, tmp_path):
    serve(sources)
    base = sources.url_for("").rstrip("/")
    settings = _down_settings(base, tmp_path)
    assert run_service("forecaster_7d", 7, settings) == 0
    record = _last_metrics(tmp_path)
    assert record["data"]["data_source"] == "live" and record["as_of"] == "2024-12-06"
    assert record["data"]["newest"]["fed_rate"] == "2024-12-06"
    assert (tmp_path / "data" / MARKET_FILE).is_file()  # the default cache folder


def test_time_budget_stops_asking(tmp_path, hanging_url):
    settings = _down_settings(hanging_url, tmp_path, data_refresh_budget_s=0.5)
    folder = cache_dir(settings)
    report, _ = refresh(settings, folder, read(folder, LOG, crosscheck=True), LOG)
    details = [r.detail for r in report.results]
    assert any("time budget is used up" in d for d in details)
    assert all(r.status == "failed" for r in report.results)


def test_unreadable_cache_is_moved_aside_and_rebuilt(sources, tmp_path, capsys):
    serve(sources)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / MARKET_FILE).write_text("Date,USDCLP\n2024-12-0")  # a write cut short
    (cache / RATES_FILE).write_text("")
    code, out, _ = fetch(capsys, cache)
    assert code == 0 and "data for runs: live" in out
    assert "cache failed its checks" in (tmp_path / "logs" / "fetch-data.log").read_text()
    [aside] = cache.glob("broken-*")
    assert (aside / MARKET_FILE).read_text() == "Date,USDCLP\n2024-12-0"
    assert load_raw(cache).market.index[0] == pd.Timestamp("2010-11-26")  # snapshot + new rows


def test_unwritable_cache_is_a_one_line_error(sources, tmp_path, capsys):
    serve(sources)
    (tmp_path / "a-file").write_text("not a folder")
    code, out, err = fetch(capsys, tmp_path / "a-file" / "cache")
    assert code == 2
    assert err.splitlines()[-1].startswith("error: cannot write the cache in ")
    assert "data for runs: snapshot" in out


def test_stored_values_win_over_a_revised_answer(sources, tmp_path, capsys):
    def revised(result):
        result["indicators"]["quote"][0]["close"][-6] = 980.0  # 2024-11-29, stored 977.44

    serve(sources, {"/v8/finance/chart/CLP=X": _usdclp(revised)})
    cache = tmp_path / "cache"
    assert fetch(capsys, cache)[0] == 0
    market = load_raw(cache).market
    assert market.at[pd.Timestamp("2024-11-29"), "USDCLP"] == pytest.approx(977.44)
    assert market.index[-1] == pd.Timestamp("2024-12-06")


def _count_reads(monkeypatch) -> list[Path]:
    """Every CSV file read from now on, by resolved path: read whole as bytes, or parsed by
    pandas from its path (not the sources' answers)."""
    reads, read_csv, read_bytes = [], pd.read_csv, Path.read_bytes

    def counting(source, *args, **kwargs):
        if isinstance(source, str | os.PathLike):
            reads.append(Path(source).resolve())
        return read_csv(source, *args, **kwargs)

    def counting_bytes(path):
        if path.suffix == ".csv":
            reads.append(path.resolve())
        return read_bytes(path)

    monkeypatch.setattr(pd, "read_csv", counting)
    monkeypatch.setattr(Path, "read_bytes", counting_bytes)
    return reads


def test_fetch_data_and_a_refreshing_run_read_each_file_once(
    sources, tmp_path, capsys, monkeypatch
):
    serve(sources)
    assert fetch(capsys, Path("data"))[0] == 0  # the default cache now holds all three files
    snapshot = [(default_data_dir() / name).resolve() for name in (MARKET_FILE, RATES_FILE)]
    cached = [
        (tmp_path / "data" / name).resolve()
        for name in (MARKET_FILE, RATES_FILE, "crosscheck_daily.csv")
    ]

    reads = _count_reads(monkeypatch)
    assert fetch(capsys, Path("data"))[0] == 0
    assert sorted(reads) == sorted(snapshot + cached)

    reads.clear()
    base = sources.url_for("").rstrip("/")
    assert run_service("forecaster_7d", 7, _down_settings(base, tmp_path)) == 0
    assert sorted(reads) == sorted(snapshot + cached)
    assert _last_metrics(tmp_path)["data"]["data_source"] == "live"


def test_a_refreshing_run_uses_exactly_what_the_cache_now_holds(sources, tmp_path):
    serve(sources)
    base = sources.url_for("").rstrip("/")
    settings = _down_settings(base, tmp_path, data_dir=tmp_path / "cache")
    resolved = load_for_run(settings, LOG)
    assert resolved.data_source == "live" and resolved.raw.market.index[-1] == NEW_DAYS[-1]
    stored = load_raw(tmp_path / "cache")  # what the next run without refresh reads
    pd.testing.assert_frame_equal(resolved.raw.market, stored.market, check_exact=True)
    pd.testing.assert_frame_equal(resolved.raw.rates, stored.rates, check_exact=True)


@pytest.mark.parametrize(
    "settings, source, why",
    [
        (dict(), "snapshot", "no cache in data"),
        (dict(data_dir="given"), "cache", "DATA_DIR=given read as given"),
    ],
)
def test_the_choice_of_data_says_why(tmp_path, monkeypatch, settings, source, why):
    monkeypatch.chdir(tmp_path)
    if "data_dir" in settings:
        shutil.copytree(default_data_dir(), tmp_path / "given")
    resolved = load_for_run(Settings(**settings), LOG)
    assert resolved.as_record()["data_source"] == source
    assert resolved.as_record()["data_reason"] == why


def test_fetch_data_does_not_import_matplotlib(tmp_path, refusing_url):
    """fetch-data runs on hosts that only refresh data: no charting library is loaded."""
    code = (
        "import sys; from fxforecast.cli import main; code = main(sys.argv[1:]); "
        "print('matplotlib' in sys.modules); sys.exit(code)"
    )
    env = {
        **os.environ,
        "YAHOO_URL": refusing_url,
        "MINDICADOR_URL": refusing_url,
        "FRED_URL": refusing_url,
        "LOG_DIR": str(tmp_path / "logs"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, "fetch-data", "--data-dir", str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"


# Rows no source sends again: the cache is their only copy.
OWN_ROWS = [f"2024-12-{day},{976 + day / 10},4.1,68.5,106.0,6050.0,13.9" for day in range(9, 14)]


def _with_own_rows(cache: Path) -> None:
    text = (cache / MARKET_FILE).read_text()
    (cache / MARKET_FILE).write_text(text + "".join(f"{row}\n" for row in OWN_ROWS))


def _duplicate_a_row(lines):
    at = next(i for i, line in enumerate(lines) if line.startswith("2020-01-02"))
    return [*lines[: at + 1], lines[at], *lines[at + 1 :]]


def _blank_cell(lines):
    at = next(i for i, line in enumerate(lines) if line.startswith("2019-03-01"))
    cells = lines[at].split(",")
    cells[2] = "abc"
    return [*lines[:at], ",".join(cells), *lines[at + 1 :]]


@pytest.mark.parametrize(
    "corrupt, problem",
    [
        (_duplicate_a_row, "Date 2020-01-02 appears 2 times"),
        (lambda lines: [*lines, "2024-12-16,9"], "a cut or torn line"),
        (lambda lines: [*lines, "2042-12-16" + lines[-1][10:]], "is after today"),
        (_blank_cell, "Copper value 'abc' is not a number"),
    ],
    ids=["a-duplicated-row", "a-torn-last-line", "a-future-date", "a-word-for-a-number"],
)
def test_a_cache_that_fails_its_checks_is_moved_aside_and_keeps_its_rows(
    sources, tmp_path, capsys, corrupt, problem
):
    """Today one duplicated row makes the refresh rebuild the cache from the snapshot: rows that
    only the cache held are lost, exit 0, nothing said."""
    serve(sources)
    assert fetch(capsys, Path("data"))[0] == 0
    cache = tmp_path / "data"
    _with_own_rows(cache)
    held = load_raw(cache).market
    lines = (cache / MARKET_FILE).read_text().splitlines()
    broken = "\n".join(corrupt(lines)) + "\n"
    (cache / MARKET_FILE).write_text(broken)
    settings = _down_settings(sources.url_for("").rstrip("/"), tmp_path, stale_data_days=100000)
    assert run_service("forecaster_7d", 7, settings) == 0
    record = _last_metrics(tmp_path)
    assert record["status"] == "ok" and record["as_of"] == "2024-12-13"
    repaired = load_raw(cache).market  # every row kept, in a cache that passes its checks again
    pd.testing.assert_frame_equal(repaired, held, check_freq=False)
    [aside] = cache.glob("broken-*")
    assert (aside / MARKET_FILE).read_text() == broken  # the file as it was, kept
    repair = record["data"]["cache_repair"]
    assert repair.startswith(f"cache failed its checks (data/{MARKET_FILE} ")
    assert problem in repair and f"moved aside to data/{aside.name}, its good rows kept" in repair
    assert repair in record["warnings"] and repair in capsys.readouterr().err


def test_a_cache_file_shorter_than_the_cache_wrote_is_refused(sources, tmp_path, capsys):
    """Cut (or put back from an older copy) after the cache wrote it: today the run forecasts
    from it, as of an older date, status ok."""
    serve(sources)
    assert fetch(capsys, Path("data"))[0] == 0
    market = tmp_path / "data" / MARKET_FILE
    rows = market.read_text().count("\n") - 1
    size = market.stat().st_size
    market.write_text("".join(market.read_text().splitlines(keepends=True)[:-3]))
    code = main(["run", "--horizon", "7", "--output-dir", str(tmp_path / "output")])
    assert code == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: data/{MARKET_FILE} has {rows - 3} rows ({market.stat().st_size} bytes), fewer "
        f"than the {rows} rows ({size} bytes) the cache last wrote: it was cut or replaced by an "
        "older copy; restore it, or delete data/.cache-written.json to take it as it is"
    )
    assert not (tmp_path / "output" / "forecaster_7d").exists()
