"""Live data providers, one module per source, all of one shape.

Each module has `fetch(http, base_url, code, start, today) -> pd.Series`: the source's daily
values for series `code` from `start` on, as floats indexed by date (no time, no zone), or a
`SourceError` saying why the answer is unusable. Plausibility (jumps, future dates, levels)
is judged in `fxforecast.livedata`, the same way for every source.
"""

from . import fred, mindicador, yahoo
from .http import FetchFailed, Http, SourceError

FETCHERS = {"yahoo": yahoo.fetch, "mindicador": mindicador.fetch, "fred": fred.fetch}

__all__ = ["FETCHERS", "FetchFailed", "Http", "SourceError"]
