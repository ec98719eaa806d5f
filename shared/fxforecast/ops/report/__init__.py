"""`fxforecast report`: one self-contained HTML page of every service's history, for operators.

It reads what the services write: the metrics log, the forecast store (joined with the actual
closes, as `status --accuracy` does) and each latest fan chart in OUTPUT_DIR. Charts are inline
SVG data, the fan charts the services' own PNGs: the page opens from disk, with no network.

history.py computes what is drawn from the metrics records, charts.py draws it, sections.py
lays out each service's section, page.py assembles, writes and refreshes the page.
"""

from pathlib import Path


def charts_folder(cache_dir: Path | None) -> Path | None:
    """Where the page's charts are kept (charts.Charts): beside the member cache, in CACHE_DIR,
    and off with it. Here, so that `fxforecast cache` finds them without importing matplotlib."""
    return cache_dir and cache_dir / "charts"
