"""Live refresh, one way: the sources -> the checks -> the merge into the stored tables -> the
cache, whose tables the run then uses as they are (nothing is read back).

The forecast target is Yahoo's USD/CLP market close (CLP=X), the series the snapshot holds.
The official dólar observado (mindicador `dolar`) is fixed once a day from the previous day's
trades, so it differs from the market close by up to a few pesos: it is stored in
crosscheck_daily.csv and used only to reject a Yahoo answer at the wrong level, never spliced
into USDCLP. mindicador's `libra_cobre` checks Yahoo's copper (HG=F) the same way.
"""

import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import pandas as pd

from ..errors import DataError
from ..settings import Settings
from .cache import Stored, write
from .checks import CROSS_CHECKS, FEEDS, Feed, check, cross_check
from .providers import FETCHERS, FetchFailed, Http, SourceError
from .schema import MARKET_COLUMNS

OVERLAP_DAYS = 14  # ask again for stored days too: the checks compare the answer with them


@dataclass
class FeedResult:
    feed: Feed
    status: str = "ok"  # ok, rejected (unusable answer), failed (no answer) or error (a bug)
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


def _fill(frame: pd.DataFrame, new: dict[str, pd.Series]) -> pd.DataFrame:
    """Add new values where the frame has none: stored values always win."""
    index = frame.index
    for series in new.values():
        index = index.union(series.index)
    out = frame.reindex(index)
    for column, series in new.items():
        out[column] = out[column].fillna(series.reindex(index))
    return out


def merge(stored: Stored, accepted: dict[str, pd.Series]) -> Stored:
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
    return replace(stored, market=market, rates=rates, crosscheck=crosscheck)


def _count(stored: Stored) -> dict[str, int]:
    return {f.column: int(stored.column(f.column).notna().sum()) for f in FEEDS}


def unexpected(exc: Exception) -> str:
    """One line for an exception nobody planned for: its type, words and where it was raised."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return " ".join(f"unexpected {type(exc).__name__}: {exc}{where}".split())


def _ask(http: Http, base_url: str, feeds: list[Feed], starts: dict, now) -> list:
    """One source's feeds in turn, each answer a series or the exception it raised."""
    answers = []
    for feed in feeds:
        try:
            answers.append(FETCHERS[feed.source](http, base_url, feed.code, starts[feed], now))
        except Exception as exc:  # whatever one series raises, the others are still asked
            answers.append(exc)
    return answers


def _record_failure(result: FeedResult, exc: Exception, history: pd.Series, log) -> None:
    if isinstance(exc, SourceError):
        result.status = "failed" if isinstance(exc, FetchFailed) else "rejected"
        result.detail = str(exc)
    else:
        result.status, result.detail = "error", unexpected(exc)
    feed, newest = result.feed, history.last_valid_index()
    log.warning(
        f"{feed.source} {feed.code} {result.status}; keeping stored {feed.column}",
        reason=result.detail,
        stored_newest=str(newest.date()) if newest is not None else None,
    )


def refresh(
    settings: Settings, folder, stored: Stored, log, now: pd.Timestamp | None = None
) -> tuple[Refresh, Stored]:
    """Ask every source for what is newer than `stored` (read from the cache `folder`, under
    its lock), check it, merge it in, write the cache; the report and what the cache now holds.

    Never raises: a source that fails or answers badly, and any exception inside the refresh,
    is reported (per series where it concerns one) and the run goes on with stored data."""
    if now is None:
        now = pd.Timestamp.now(tz="UTC")
    try:
        return _refresh(settings, folder, stored, log, now)
    except Exception as exc:  # a bug here must not cost the run: it falls back like an outage
        reason = unexpected(exc)
        log.error("refresh failed; runs use stored data", error=reason)
        failed = [FeedResult(f, "error", reason) for f in FEEDS]
        return Refresh(failed, error=f"refresh failed: {reason}"), stored


def _refresh(settings: Settings, folder, stored: Stored, log, now) -> tuple[Refresh, Stored]:
    today = now.tz_convert("UTC").normalize().tz_localize(None)
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
    try:
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            jobs = {
                source: pool.submit(_ask, http, url.rstrip("/"), by_source[source], starts, now)
                for source, url in urls.items()
            }
            try:
                for source, job in jobs.items():
                    answers.update(zip(by_source[source], job.result(), strict=True))
            except BaseException:  # a stop signal: wait for no more than the requests in flight
                http.stop()
                raise
    finally:
        http.close()

    report, accepted = Refresh(), {}
    for feed in FEEDS:
        result = FeedResult(feed)
        report.results.append(result)
        history = stored.column(feed.column)
        try:
            if isinstance(answers[feed], Exception):
                raise answers[feed]
            accepted[feed.column] = check(feed, answers[feed], history, today, log)
        except Exception as exc:  # an unforeseen answer spoils its own series only
            _record_failure(result, exc, history, log)
    for column, (official, _) in CROSS_CHECKS.items():
        if column in accepted:
            try:
                reference = stored.column(official).combine_first(
                    accepted.get(official, pd.Series(dtype=float))
                )
                cross_check(column, accepted[column], reference)
            except Exception as exc:
                del accepted[column]
                result = next(r for r in report.results if r.feed.column == column)
                _record_failure(result, exc, stored.column(column), log)
    return report, _store(folder, stored, accepted, report, log)


def _store(folder, stored: Stored, accepted: dict[str, pd.Series], report: Refresh, log) -> Stored:
    """Merge and write; what the cache holds afterwards (`stored` when nothing was written)."""
    try:
        merged = merge(stored, accepted)
        before, after = _count(stored), _count(merged)
        for result in report.results:
            column = result.feed.column
            result.new_values = after[column] - before[column]
            newest = merged.column(column).last_valid_index()
            result.newest = str(newest.date()) if newest is not None else None
        if after != before:
            stored = write(folder, merged)
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
    except Exception as exc:  # a bug in merging must not cost the run: the cache stays as it was
        report.error = f"cache left as it was: {unexpected(exc)}"
    if report.error:
        log.error("cache not updated", error=report.error)
    return stored
