"""Live refresh, one way: the sources -> the checks -> the merge into the stored tables -> the
cache, whose tables the run then uses as they are (nothing is read back).

The forecast target is Yahoo's USD/CLP market close (CLP=X), the series the snapshot holds.
The official dólar observado (mindicador `dolar`) is fixed once a day from the previous day's
trades, so it differs from the market close by up to a few pesos: it is stored in
crosscheck_daily.csv and used only to reject a Yahoo answer at the wrong level, never spliced
into USDCLP. mindicador's `libra_cobre` checks Yahoo's copper (HG=F) the same way.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

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


def _ask(http: Http, base_url: str, feeds: list[Feed], starts: dict, today) -> list:
    """One source's feeds in turn, each answer a series or the SourceError it raised."""
    answers = []
    for feed in feeds:
        try:
            answers.append(FETCHERS[feed.source](http, base_url, feed.code, starts[feed], today))
        except SourceError as exc:
            answers.append(exc)
    return answers


def refresh(settings: Settings, folder, stored: Stored, log) -> tuple[Refresh, Stored]:
    """Ask every source for what is newer than `stored` (read from the cache `folder`, under
    its lock), check it, merge it in, write the cache; the report and what the cache now holds.

    A source that fails or answers badly is reported and skipped; never raises for that."""
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
                cross_check(column, accepted[column], reference)
            except SourceError as exc:
                del accepted[column]
                result = next(r for r in report.results if r.feed.column == column)
                result.status, result.detail = "rejected", str(exc)
                log.warning(f"{column} rejected; keeping stored {column}", reason=str(exc))
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
    if report.error:
        log.error("cache not updated", error=report.error)
    return stored
