"""Market data: the one entry for a run is `load_for_run`, which picks the data and says why.

One way: (live sources -> checks -> merge ->) the cache -> the frame a run uses. Each file is
read once per run: the snapshot and the cache in `cache.read`, which a refresh then extends in
memory and writes back. schema.py reads files, clean.py cleans a frame for one as-of date (and
owns the plausibility rule), checks.py and refresh.py are the live refresh, providers/ the
sources, snapshot/ the embedded data.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..settings import Settings
from . import cache
from .schema import RawData, load_raw

if TYPE_CHECKING:  # refresh.py (and the sources' client) is imported only when refreshing
    from .refresh import Refresh


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
    why: str  # why that data: a line in the metrics record
    refresh: "Refresh | None"
    repair: str | None = None  # a cache that failed its checks: moved aside, good rows kept

    def as_record(self) -> dict:
        """The metrics line's part: which data and why, how new each series is, what the
        refresh did."""
        record = {
            "data_source": self.data_source,
            "data_reason": self.why,
            "newest": newest_dates(self.raw),
        }
        if self.refresh is not None:
            record["refresh"] = {r.feed.column: r.summary() for r in self.refresh.results}
            record["refresh_error"] = self.refresh.error
        if self.repair is not None:
            record["cache_repair"] = self.repair
        return record


def load_for_run(settings: Settings, log) -> Resolved:
    """The data for a run: an explicit DATA_DIR read exactly (errors and all) unless refreshing;
    else the cache (refreshed first if DATA_REFRESH), else the snapshot."""
    if settings.data_dir and not settings.data_refresh:
        raw = load_raw(settings.data_dir)
        return Resolved(raw, "cache", f"DATA_DIR={settings.data_dir} read as given", None)
    folder = cache.cache_dir(settings)
    report = None
    if settings.data_refresh:
        from .refresh import refresh  # the sources' client only when refreshing

        with cache.locked(folder):  # one refresh at a time reads, extends and writes the cache
            report, stored = refresh(settings, folder, cache.read(folder, log, True), log)
    else:
        stored = cache.read(folder, log)
    kind, why = stored.kind, stored.why
    if kind == "cache" and report is not None and report.live:
        kind, why = "live", "USDCLP refreshed from its source into the cache"
    fell_back = report is not None and kind != "live"
    (log.warning if fell_back else log.info)(
        "data chosen", data_source=kind, folder=stored.source, why=why
    )
    return Resolved(stored.raw(), kind, why, report, stored.repair)
