"""`fxforecast fetch-data`: refresh the market-data cache now, and say what came and which data
the runs will use."""

import sys
from dataclasses import replace

from ..errors import ConfigError
from ..marketdata import load_for_run, newest_dates
from ..settings import Settings
from .runlog import configure_logging


def fetch_data(settings: Settings) -> int:
    """Exit 0 also after falling back to stored data; ConfigError when the cache cannot be
    written; DataError (from loading) only when no usable data remains."""
    log = configure_logging("fetch-data", settings.log_dir)
    chosen = load_for_run(replace(settings, data_refresh=True), log)
    report = chosen.refresh
    for result in report.results:
        feed = result.feed
        print(f"{feed.column:<16}{feed.source + ' ' + feed.code:<24}{result.summary()}")
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
