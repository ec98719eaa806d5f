"""Live market data: refresh the cache from the providers, then choose the data a run uses.

Order for a run: live refresh (DATA_REFRESH=true) -> the cache -> the embedded snapshot.

The forecast target is Yahoo's USD/CLP market close (CLP=X), the series the snapshot holds.
The official dólar observado (mindicador `dolar`) is fixed once a day from the previous day's
trades, so it differs from the market close by up to a few pesos: it is stored in
crosscheck_daily.csv and used only to reject a Yahoo answer at the wrong level, never spliced
into USDCLP. mindicador's `libra_cobre` checks Yahoo's copper (HG=F) the same way.
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from . import cache
from .data import BAD_TICK_LOG_JUMP, MARKET_COLUMNS, RawData, load_raw
from .errors import ConfigError, DataError
from .ops.runlog import configure_logging
from .providers import FETCHERS, FetchFailed, Http, SourceError
from .settings import Settings

ORDER_OF_MAGNITUDE = float(np.log(10))
# COMEX copper (Yahoo) traded up to ~30% above LME copper (mindicador) in 2025; a wrong unit
# (cents, tonnes) is 100x or more.
COPPER_VENUE_GAP = float(np.log(2))
RATE_STEP_PP = 2.0  # no policy rate here has moved 2 points in one step since 2010
OVERLAP_DAYS = 14  # ask again for stored days too: the checks compare the answer with them


@dataclass(frozen=True)
class Feed:
    column: str  # where it is stored: market_daily, rates_daily or crosscheck_daily
    source: str  # a key of providers.FETCHERS
    code: str  # the source's name for the series
    max_step: float  # largest believable move: log ratio for prices, points for rates

    @property
    def is_rate(self) -> bool:
        return self.column in ("fed_rate", "chile_rate")


FEEDS = (
    Feed("USDCLP", "yahoo", "CLP=X", BAD_TICK_LOG_JUMP),
    Feed("Copper", "yahoo", "HG=F", BAD_TICK_LOG_JUMP),
    Feed("Oil", "yahoo", "CL=F", ORDER_OF_MAGNITUDE),
    Feed("DXY", "yahoo", "DX-Y.NYB", BAD_TICK_LOG_JUMP),
    Feed("SP500", "yahoo", "^GSPC", ORDER_OF_MAGNITUDE),
    Feed("VIX", "yahoo", "^VIX", ORDER_OF_MAGNITUDE),  # VIX can double in a day
    Feed("fed_rate", "fred", "DFF", RATE_STEP_PP),
    Feed("chile_rate", "mindicador", "tpm", RATE_STEP_PP),
    Feed("dolar_observado", "mindicador", "dolar", BAD_TICK_LOG_JUMP),
    Feed("libra_cobre", "mindicador", "libra_cobre", BAD_TICK_LOG_JUMP),
)
# market column -> (the official series it must match in level, the largest log gap allowed)
CROSS_CHECKS = {
    "USDCLP": ("dolar_observado", BAD_TICK_LOG_JUMP),
    "Copper": ("libra_cobre", COPPER_VENUE_GAP),
}


@dataclass
class FeedResult:
    feed: Feed
    status: str = "ok"  # ok, rejected (unusable answer) or failed (no answer)
    detail: str = ""  # why it was rejected or failed
    new_values: int = 0
    newest: str | None = None  # the newest date stored for the series after the refresh

    def summary(self) -> str:
        if self.status != "ok":
            return f"{self.status}: {self.detail}"
        return f"ok: {self.new_values} new value(s), newest {self.newest}"


@dataclass
class Refresh:
    results: list[FeedResult] = field(default_factory=list)
    error: str | None = None  # why the cache could not be written
    cache_writable: bool = True

    @property
    def live(self) -> bool:
        """The forecast target came fresh from its source and is in the cache."""
        target = next(r for r in self.results if r.feed.column == "USDCLP")
        return self.error is None and target.status == "ok"


def _implausible(new: pd.Series, history: pd.Series, feed: Feed) -> pd.Series:
    """Mask of new values too far from the median of the five values accepted before each."""
    accepted = list(history[history.index < new.index[0]].dropna().iloc[-5:])
    flags = []
    for value in new:
        reference = float(np.median(accepted[-5:])) if accepted else value
        if feed.is_rate:
            step = abs(value - reference)
        else:
            step = abs(np.log(value / reference)) if value > 0 and reference > 0 else np.inf
        flags.append(step > feed.max_step)
        if step <= feed.max_step:
            accepted.append(value)
    return pd.Series(flags, index=new.index)


def check(feed: Feed, new: pd.Series, history: pd.Series, today: pd.Timestamp, log) -> pd.Series:
    """The values of an answer fit to store; SourceError when the whole answer is unusable."""
    new = new.dropna()
    if new.empty:
        raise SourceError("empty answer: no values in the period asked for")
    if new.index.max() > today:
        raise SourceError(
            f"dates in the future: {new.index.max().date()} is after today ({today.date()})"
        )
    bad = _implausible(new, history, feed)
    if bad.iloc[-1] or 2 * bad.sum() > len(bad):
        first = bad.idxmax()
        stored = history.dropna().iloc[-5:].median()
        raise SourceError(
            f"implausible level: {new[first]:.6g} on {first.date()} against "
            f"{stored:.6g} stored (a jump, wrong unit or wrong currency)"
        )
    if bad.any():
        log.warning(
            "dropped implausible values",
            column=feed.column,
            dates=[str(d.date()) for d in bad.index[bad]],
        )
    return new[~bad]


def _cross_check(column: str, new: pd.Series, official: pd.Series) -> None:
    name, limit = CROSS_CHECKS[column]
    both = pd.concat([new, official], axis=1, join="inner").dropna()
    if both.empty:
        return  # nothing to compare with: the jump check against stored values stands alone
    gap = np.log(both.iloc[:, 0] / both.iloc[:, 1])
    if abs(float(gap.median())) > limit:
        raise SourceError(
            f"wrong level: {both.iloc[-1, 0]:.6g} against the official {name} "
            f"{both.iloc[-1, 1]:.6g} on {both.index[-1].date()}"
        )


def _fill(frame: pd.DataFrame, new: dict[str, pd.Series]) -> pd.DataFrame:
    """Add new values where the frame has none: stored values always win."""
    index = frame.index
    for series in new.values():
        index = index.union(series.index)
    out = frame.reindex(index)
    for column, series in new.items():
        out[column] = out[column].fillna(series.reindex(index))
    return out


def merge(stored: cache.Stored, accepted: dict[str, pd.Series]) -> cache.Stored:
    """The stored tables with the accepted values added, in the snapshot's shapes."""
    market_new = {c: s[s.index.day_of_week < 5] for c, s in accepted.items() if c in MARKET_COLUMNS}
    market = _fill(stored.market, market_new)
    # A run's as-of date is the newest row: no row past the newest USD/CLP close.
    market = market.loc[: market["USDCLP"].last_valid_index()]

    rate_columns = ["fed_rate", "chile_rate"]
    observed = _fill(
        stored.rates[rate_columns], {c: accepted[c] for c in rate_columns if c in accepted}
    )
    # Calendar-daily and forward-filled, up to the day both rates are known.
    end = max(stored.rates.index[-1], min(observed[c].last_valid_index() for c in rate_columns))
    days = pd.date_range(observed.index[0], end, freq="D", name="date")
    rates = observed.reindex(days).ffill()
    rates["rate_differential"] = (
        stored.rates["rate_differential"]
        .reindex(days)
        .fillna(rates["chile_rate"] - rates["fed_rate"])
    )

    crosscheck = _fill(
        stored.crosscheck, {c: s for c, s in accepted.items() if c in stored.crosscheck.columns}
    )
    return cache.Stored(market, rates, crosscheck)


def _count(stored: cache.Stored) -> dict[str, int]:
    return {f.column: int(stored.column(f.column).notna().sum()) for f in FEEDS}


def _ask(http: Http, base_url: str, feeds: list[Feed], starts: dict, today) -> list:
    """One source's feeds in turn, each answer a series or the SourceError it raised."""
    answers = []
    for feed in feeds:
        try:
            answers.append(FETCHERS[feed.source](http, base_url, feed.code, starts[feed], today))
        except SourceError as exc:
            answers.append(exc)
    return answers


def refresh(settings: Settings, log) -> Refresh:
    """Ask every source for what is newer than the cache, check it, merge it in, store it.

    A source that fails or answers badly is reported and skipped; never raises for that."""
    folder = cache.cache_dir(settings)
    stored = cache.read(folder, log)
    today = pd.Timestamp(datetime.now(UTC).date())
    urls = {
        "yahoo": settings.yahoo_url,
        "mindicador": settings.mindicador_url,
        "fred": settings.fred_url,
    }
    starts = {}
    for feed in FEEDS:
        # A series not stored yet (the cross-check ones, at first) starts where the market ends.
        newest = stored.column(feed.column).last_valid_index()
        newest = newest if newest is not None else stored.market.index[-1]
        starts[feed] = (newest - pd.Timedelta(days=OVERLAP_DAYS)).date()
    http = Http(settings.data_timeout_s, settings.data_refresh_budget_s)
    by_source = {source: [f for f in FEEDS if f.source == source] for source in urls}
    answers = {}
    # The sources in parallel, so a host that hangs delays only its own feeds.
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        jobs = {
            source: pool.submit(
                _ask, http, url.rstrip("/"), by_source[source], starts, today.date()
            )
            for source, url in urls.items()
        }
        for source, job in jobs.items():
            answers.update(zip(by_source[source], job.result(), strict=True))

    report, accepted = Refresh(), {}
    for feed in FEEDS:
        result = FeedResult(feed)
        report.results.append(result)
        history = stored.column(feed.column)
        try:
            if isinstance(answers[feed], SourceError):
                raise answers[feed]
            accepted[feed.column] = check(feed, answers[feed], history, today, log)
        except SourceError as exc:
            result.status = "failed" if isinstance(exc, FetchFailed) else "rejected"
            result.detail = str(exc)
            newest = history.last_valid_index()
            log.warning(
                f"{feed.source} {feed.code} {result.status}; keeping stored {feed.column}",
                reason=str(exc),
                stored_newest=str(newest.date()) if newest is not None else None,
            )
    for column, (official, _) in CROSS_CHECKS.items():
        if column in accepted:
            reference = stored.column(official).combine_first(
                accepted.get(official, pd.Series(dtype=float))
            )
            try:
                _cross_check(column, accepted[column], reference)
            except SourceError as exc:
                del accepted[column]
                result = next(r for r in report.results if r.feed.column == column)
                result.status, result.detail = "rejected", str(exc)
                log.warning(f"{column} rejected; keeping stored {column}", reason=str(exc))
    _store(folder, accepted, report, log)
    return report


def _store(folder, accepted: dict[str, pd.Series], report: Refresh, log) -> None:
    try:
        with cache.locked(folder):
            stored = cache.read(folder, log)  # again: another service may have written since
            merged = merge(stored, accepted)
            before, after = _count(stored), _count(merged)
            for result in report.results:
                column = result.feed.column
                result.new_values = after[column] - before[column]
                newest = merged.column(column).last_valid_index()
                result.newest = str(newest.date()) if newest is not None else None
            if after != before:
                cache.write(folder, merged)
                added = {c: after[c] - before[c] for c in after if after[c] > before[c]}
                log.info("cache updated", folder=str(folder), new_values=added)
    except DataError as exc:
        report.error = f"merged data failed the loader's checks, cache left as it was: {exc}"
    except OSError as exc:
        report.cache_writable = False
        report.error = (
            f"cannot write the cache in {folder} ({exc.strerror}); make it writable "
            "or point DATA_DIR at a writable folder"
        )
    if report.error:
        log.error("cache not updated", error=report.error)


def newest_dates(raw: RawData) -> dict[str, str | None]:
    """The newest date with a value, per series of the data a run uses."""
    out = {}
    for frame in (raw.market, raw.rates):
        for column in frame.columns:
            newest = frame[column].last_valid_index()
            out[column] = str(newest.date()) if newest is not None else None
    return out


@dataclass(frozen=True)
class Resolved:
    raw: RawData
    data_source: str  # live, cache or snapshot
    refresh: Refresh | None

    def as_record(self) -> dict:
        """The metrics line's part: which data, how new each series is, what the refresh did."""
        record = {"data_source": self.data_source, "newest": newest_dates(self.raw)}
        if self.refresh is not None:
            record["refresh"] = {r.feed.column: r.summary() for r in self.refresh.results}
        return record


def resolve(settings: Settings, log) -> Resolved:
    """The data for a run: refreshed if DATA_REFRESH, else the cache, else the snapshot.

    Without refresh an explicit DATA_DIR is read exactly, errors and all."""
    report = refresh(settings, log) if settings.data_refresh else None
    return _choose(settings, report, log)


def _choose(settings: Settings, report: Refresh | None, log) -> Resolved:
    if settings.data_dir and report is None:
        return Resolved(load_raw(settings.data_dir), "cache", None)
    raw, kind = cache.choose(cache.cache_dir(settings), log)
    if kind == "cache" and report is not None and report.live:
        kind = "live"
    fell_back = report is not None and kind != "live"
    (log.warning if fell_back else log.info)("data chosen", data_source=kind, folder=raw.source)
    return Resolved(raw, kind, report)


def fetch_data(settings: Settings) -> int:
    """`fxforecast fetch-data`: refresh the cache, say per source what came, which data runs use.

    Exit 0 also after falling back to stored data; ConfigError when the cache cannot be written;
    DataError (from loading) only when no usable data remains."""
    log = configure_logging("fetch-data", settings.log_dir)
    report = refresh(settings, log)
    for result in report.results:
        feed = result.feed
        print(f"{feed.column:<16}{feed.source + ' ' + feed.code:<24}{result.summary()}")
    chosen = _choose(settings, report, log)
    newest = newest_dates(chosen.raw)
    print(
        f"data for runs: {chosen.data_source} ({chosen.raw.source}), USDCLP to "
        f"{newest['USDCLP']}, rates to {newest['fed_rate']}"
    )
    if not report.cache_writable:
        raise ConfigError(report.error)
    if report.error:
        print(f"warning: {report.error}", file=sys.stderr)
    return 0
