"""The report's charts: matplotlib to SVG, embedded as data URIs so each chart's ids stay its
own; kept by a digest of what they draw, so a page refreshed after one service's run redraws
that service's charts only."""

import base64
import hashlib
import html
import io
import pickle
import time
from contextlib import suppress
from importlib.metadata import version
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...engine.member_cache import code_digest
from ...fsio import write_all
from .history import ROLLING_FORECASTS, RUN_STATUSES, as_dict, number, run_times

STATUS_COLOURS = {
    "ok": "#2ca02c",
    "degraded": "#ff7f0e",
    "failed": "#d62728",
    "skipped": "#bcbd22",
    "disabled": "#c7c7c7",
}


class Html(str):
    """Markup already escaped: table cells take it as it is."""


# A kept chart no page has used for this long is removed; a younger one may be another page's,
# being built at the same time.
UNUSED_KEPT_S = 3600


class Charts:
    """Draws charts, each kept in `folder` (none: not kept) under a digest of the drawing code,
    matplotlib's version and the chart's inputs; a kept chart is used instead of drawing it."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.used: set[str] = set()
        # Read once per page: the package metadata is read from disk at each call.
        self.drawing = "" if folder is None else f"{code_digest(__name__)} {version('matplotlib')}"

    def __call__(self, draw, *inputs) -> Html:
        if self.folder is None:
            return draw(*inputs)
        key = hashlib.sha256(
            f"{self.drawing} {draw.__name__}".encode() + pickle.dumps(inputs, protocol=5)
        ).hexdigest()
        name = f"{key}.html"
        self.used.add(name)
        try:
            kept = (self.folder / name).read_text()
            if kept.startswith("<figure>") and kept.endswith("</figure>"):  # else draw it again
                return Html(kept)
        except (OSError, UnicodeDecodeError):
            pass
        chart = draw(*inputs)
        with suppress(OSError):  # a chart not kept is drawn again next time: never a failure
            write_all(self.folder, {name: chart.encode()})
        return chart

    def remove_unused(self) -> None:
        """Remove the kept charts that this page did not use (older versions of them)."""
        if self.folder is None:
            return
        oldest = time.time() - UNUSED_KEPT_S
        with suppress(OSError):
            for path in self.folder.glob("*.html"):
                if path.name not in self.used and path.stat().st_mtime < oldest:
                    path.unlink(missing_ok=True)


def _axes(rows: int, height: float):
    fig, axes = plt.subplots(rows, 1, figsize=(8, height), sharex=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for ax in axes:
        ax.grid(alpha=0.3)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig, axes


def _span(axes, times) -> None:
    """Pad the date axis: a single run or month would otherwise span years."""
    pad = max(pd.Timedelta(days=10), (times.max() - times.min()) * 0.02)
    axes[0].set_xlim(times.min() - pad, times.max() + pad)


def _svg(fig, alt: str) -> Html:
    buffer = io.BytesIO()
    # Text as text: smaller, and selectable. A fixed salt and no date: the same chart is the
    # same bytes, whether drawn now or kept from an earlier page.
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fxforecast"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return Html(
        f'<figure><img class="chart" alt="{html.escape(alt)}" '
        f'src="data:image/svg+xml;base64,{data}"></figure>'
    )


def _legend(fig, axes) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside upper center", ncols=min(len(labels), 5), frameon=False
    )


def weights_chart(weights: pd.DataFrame, colours: dict) -> Html:
    weights = weights.fillna(0.0)
    # Each run's weights hold until the next run: steps, with the last one a week wide.
    end = weights.index[-1] + pd.Timedelta(days=7)
    x = [*weights.index, end]
    stacked = np.vstack([weights.to_numpy(), weights.to_numpy()[-1:]]).T
    fig, axes = _axes(1, 3.4)
    axes[0].stackplot(
        x,
        stacked,
        labels=list(weights.columns),
        colors=[colours[m] for m in weights.columns],
        step="post",
        alpha=0.9,
    )
    axes[0].set_ylim(0, 1)
    _span(axes, pd.DatetimeIndex(x))
    axes[0].set_ylabel("weight in the ensemble")
    axes[0].set_xlabel("run date (UTC)")
    _legend(fig, axes)
    return _svg(fig, "member weights per run, stacked")


def scores_chart(scores: pd.DataFrame, colours: dict) -> Html:
    fig, axes = _axes(1, 3.4)
    for name in scores.columns:
        column = scores[name].dropna()
        axes[0].plot(
            column.index, column, color=colours[name], marker="o", ms=2.5, lw=1, label=name
        )
    _span(axes, scores.index)
    axes[0].set_ylabel("validation pinball loss (CLP per USD)")
    axes[0].set_xlabel("run date (UTC)")
    _legend(fig, axes)
    return _svg(fig, "validation score of each member per run")


def chronos_chart(runs: list[dict], colours: dict) -> Html:
    times = run_times(runs)
    blocks = [as_dict(r.get("chronos")) for r in runs]
    member = [as_dict(as_dict(r.get("members")).get("chronos")) for r in runs]
    # A failed run records no Chronos status: it gets no marker.
    statuses = [b.get("status") or m.get("status") for b, m in zip(blocks, member, strict=True)]
    weight = np.array([number(m.get("weight")) for m in member])
    fig, axes = _axes(3, 6.6)
    axes[0].plot(times, weight, color=colours["chronos"], lw=1, label="weight")
    for status in dict.fromkeys(s for s in statuses if s):
        chosen = np.array([s == status for s in statuses])
        axes[0].scatter(
            times[chosen],
            np.nan_to_num(weight[chosen]),
            color=STATUS_COLOURS.get(status, "#000000"),
            s=14,
            zorder=3,
            label=f"status {status}",
        )
    axes[0].set_ylabel("Chronos weight")
    axes[0].set_ylim(bottom=0)
    for ax, keys, unit in (
        (axes[1], ("load_s", "predict_s"), "seconds"),
        (axes[2], ("rss_before_mb", "rss_after_mb", "rss_released_mb"), "RSS (MB)"),
    ):
        for key in keys:
            values = pd.Series([number(b.get(key)) for b in blocks], index=times).dropna()
            ax.plot(values.index, values, marker="o", ms=2.5, lw=1, label=key.rsplit("_", 1)[0])
        ax.set_ylabel(unit)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
    axes[2].set_xlabel("run date (UTC)")
    _span(axes, times)
    _legend(fig, axes)
    return _svg(fig, "Chronos status, weight, load and predict seconds, RSS per run")


def resources_chart(runs: list[dict]) -> Html:
    times = run_times(runs)
    fig, axes = _axes(2, 4.6)
    for ax, key, label in (
        (axes[0], "runtime_s", "run time (s)"),
        (axes[1], "peak_rss_mb", "peak RSS (MB)"),
    ):
        values = pd.Series([number(r.get(key)) for r in runs], index=times).dropna()
        ax.plot(values.index, values, color="#1f77b4", marker="o", ms=2.5, lw=1)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    axes[1].set_xlabel("run date (UTC)")
    _span(axes, times)
    return _svg(fig, "run time and peak memory per run")


def monthly_chart(monthly: pd.DataFrame) -> Html:
    x = monthly.index.to_timestamp() + pd.Timedelta(days=14)  # mid-month
    fig, axes = _axes(1, 3.4)
    bottom = np.zeros(len(monthly))
    for status in RUN_STATUSES:
        axes[0].bar(
            x, monthly[status], width=24, bottom=bottom, color=STATUS_COLOURS[status], label=status
        )
        bottom += monthly[status].to_numpy()
    axes[0].set_ylabel("runs per month")
    axes[0].set_xlabel("month (UTC)")
    _span(axes, x)
    rate = axes[0].twinx()
    rate.plot(x, monthly["success_rate"] * 100, color="black", marker="o", ms=3, lw=1)
    rate.set_ylim(0, 105)
    rate.set_ylabel("success rate (%, line)")
    _legend(fig, axes)
    return _svg(fig, "runs per month by status, and the success rate")


def accuracy_chart(rolling: pd.DataFrame) -> Html:
    fig, axes = _axes(2, 4.8)
    for level, colour in ((80, "#1f77b4"), (95, "#9ecae1")):
        axes[0].plot(
            rolling.index,
            rolling[f"coverage_{level}"] * 100,
            color=colour,
            marker="o",
            ms=2.5,
            lw=1.2,
            label=f"{level}% interval",
        )
        axes[0].axhline(level, color=colour, ls="--", lw=1)
    axes[0].set_ylim(0, 105)
    axes[0].set_ylabel(f"coverage (%), last {ROLLING_FORECASTS}")
    axes[1].plot(rolling.index, rolling["abs_error"], color="#1f77b4", marker="o", ms=2.5, lw=1.2)
    axes[1].plot(rolling.index, rolling["no_change_abs_error"], color="#555555", ls="--", lw=1.2)
    axes[1].legend(["ensemble median", "no change"], fontsize=8, loc="upper left")
    axes[1].set_ylabel("mean abs. error (CLP per USD)")
    axes[1].set_xlabel("target date")
    _span(axes, rolling.index)
    _legend(fig, axes)
    return _svg(fig, "rolling interval coverage and absolute error against no change")
