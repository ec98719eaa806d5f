"""Live data providers, one module per source, all of one shape.

Each module has `fetch(http, base_url, code, start, now) -> pd.Series`: the source's daily
values for series `code` from `start` on, as floats indexed by date (no time, no zone), one
per finished day (`now` is the refresh's UTC time), or a `SourceError` saying why the answer
is unusable, in the source's own words where it gave any. Plausibility (jumps, future dates, levels)
is judged in `fxforecast.marketdata.checks`, the same way for every source.
"""

from . import fred, mindicador, yahoo
from .http import FetchFailed, Http, SourceError

FETCHERS = {"yahoo": yahoo.fetch, "mindicador": mindicador.fetch, "fred": fred.fetch}

__all__ = ["FETCHERS", "FetchFailed", "Http", "SourceError"]
