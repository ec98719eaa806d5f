"""Rolling-origin backtest (EVALUATION.md): every Friday close in a window, each origin run
through the same code as a service run as of that date, scored against the random walk.

Origins are processed in blocks of consecutive weeks, in local processes or on a Dask cluster;
each finished block comes back here and is saved under OUT/.parts, so an interrupted backtest
resumes where it stopped. Within a block, fits on the refit grid and validation forecasts are
computed once and reused by the origins sharing them.
"""

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
from joblib import delayed
from tqdm import tqdm

from ..engine import ensemble
from ..engine.member_cache import Counts, member_cache
from ..engine.members import configured_members
from ..engine.runner import FitCache
from ..errors import ConfigError
from ..fsio import write_all
from ..horizons import history_step_dates, horizon_params
from ..marketdata.clean import bad_ticks, clean
from ..marketdata.schema import RawData
from ..quantiles import QUANTILE_COLUMNS
from ..settings import Settings
from .cluster import block_runner
from .report import coverage_chart, metrics_markdown, relative_error_chart
from .scoring import score

# A block recomputes the validation paths its first origin needs (up to 400 weeks of them), so
# blocks are long: two years of consecutive origins share one cache.
BLOCK_WEEKS = 104
CONTRACT_COLUMNS = ["model", "origin", "horizon_days", "target_date", "steps", *QUANTILE_COLUMNS]


@dataclass(frozen=True)
class BacktestSpec:
    horizons: tuple[int, ...]
    start: str
    end: str
    every: int
    refit_weeks: int  # final-forecast refit cadence; 0 refits at every origin like a service


def weekly_origins(index: pd.DatetimeIndex, start, end) -> list[pd.Timestamp]:
    """The last row of each Friday-ending week inside [start, end]."""
    inside = index[(index >= pd.Timestamp(start)) & (index <= pd.Timestamp(end))]
    weeks = pd.Series(inside, index=inside).groupby(inside.to_period("W-FRI")).max()
    return list(weeks)


def _origin_rows(raw, settings, params, origin, final_refit_weeks, cache, members, cached, ticks):
    data = clean(raw, origin, ticks)
    result = ensemble.forecast(
        data,
        params,
        members,
        settings.member_timeout_s,
        final_refit_weeks,
        cache,
        settings.combiner,
        settings.calibration,
    )
    cached.append(result.cached())
    dates = history_step_dates(raw.market.index, origin, params.days)
    steps = len(dates)
    paths = {"ensemble": result.quantiles}
    paths.update({name: m.forecast for name, m in result.members.items() if m.status == "ok"})
    base = {
        "origin": origin.date().isoformat(),
        "horizon_days": params.days,
        "target_date": dates[-1].date().isoformat(),
        "steps": steps,
        "last_close": float(data.closes().iloc[-1]),
    }
    rows = []
    for model, path in paths.items():
        target = path[min(steps, len(path)) - 1]
        rows.append({"model": model, **base, **dict(zip(QUANTILE_COLUMNS, target, strict=True))})
    return rows


def run_block(
    raw: RawData, settings: Settings, days: int, origins, final_refit_weeks: int
) -> tuple[pd.DataFrame, Counts]:
    """Forecasts of consecutive origins for one horizon, sharing one fit/validation cache (over
    the member cache on disk, if any), and what that held."""
    params = horizon_params(days)
    members = configured_members(settings, params)
    cache = FitCache(member_cache(settings))
    ticks = bad_ticks(raw.market)  # once: each origin's are these, cut at the origin
    rows, cached = [], []
    for origin in origins:
        rows.extend(
            _origin_rows(
                raw, settings, params, origin, final_refit_weeks, cache, members, cached, ticks
            )
        )
    return pd.DataFrame(rows), sum(cached, Counts())


def fingerprint(raw: RawData, settings: Settings, spec: BacktestSpec) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(raw.market).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(raw.rates).to_numpy().tobytes())
    # Every member's name, switch and hyper-parameters at every horizon: what a forecast uses.
    members = [
        (member.name, enabled, member.hyperparameters())
        for days in spec.horizons
        for member, enabled in configured_members(settings, horizon_params(days))
    ]
    horizons = [asdict(horizon_params(days)) for days in spec.horizons]
    method = [settings.combiner, settings.calibration]
    digest.update(json.dumps([members, horizons, method, asdict(spec)], default=str).encode())
    return digest.hexdigest()[:16]


def plan(raw: RawData, spec: BacktestSpec) -> list[tuple[int, list[pd.Timestamp]]]:
    """Blocks of (horizon, origins); origins whose target lies beyond the data are left out."""
    index = raw.market.index
    blocks = []
    for days in spec.horizons:
        origins = [
            o
            for o in weekly_origins(index, spec.start, spec.end)[:: spec.every]
            if o + pd.Timedelta(days=days) <= index[-1]
        ]
        for i in range(0, len(origins), BLOCK_WEEKS):
            blocks.append((days, origins[i : i + BLOCK_WEEKS]))
    return blocks


def _part_path(parts: Path, days: int, origins) -> Path:
    return parts / f"h{days}_{origins[0]:%Y%m%d}_{origins[-1]:%Y%m%d}.csv"


def run_backtest(
    raw: RawData,
    settings: Settings,
    spec: BacktestSpec,
    out: Path,
    jobs: int = 1,
    progress: bool = True,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """`scheduler`: a Dask scheduler's address to run the blocks on instead of `jobs` processes.
    Local processes share the member cache (CACHE_DIR); Dask workers, maybe on other machines,
    compute without it."""
    blocks = plan(raw, spec)
    if not blocks:
        raise ConfigError(
            f"no weekly origin between {spec.start} and {spec.end} has its target "
            "inside the data; widen --start/--end"
        )
    store = None if scheduler else member_cache(settings)
    # Absolute, so that every process finds the same folder; None on Dask.
    settings = replace(settings, cache_dir=None if store is None else store.folder.resolve())
    cached = Counts()
    with block_runner(jobs, scheduler, settings.enable_chronos, raw) as parallel:
        parts = out / ".parts"
        expected = fingerprint(raw, settings, spec)
        stamp = parts / "fingerprint"
        if parts.exists() and (not stamp.exists() or stamp.read_text() != expected):
            shutil.rmtree(parts)  # made with other data or settings: not reusable
        parts.mkdir(parents=True, exist_ok=True)
        stamp.write_text(expected)

        todo = [(d, o) for d, o in blocks if not _part_path(parts, d, o).exists()]
        total = sum(len(o) for _, o in blocks)
        bar = tqdm(
            total=total,
            initial=total - sum(len(o) for _, o in todo),
            unit="origin",
            desc="backtest",
            disable=not progress,
        )
        tasks = (delayed(run_block_task)(raw, settings, d, o, spec.refit_weeks) for d, o in todo)
        for days, origins, frame, counts in parallel(tasks):
            save_part(parts, days, origins, frame)
            cached += counts
            bar.update(len(origins))
        bar.close()
    if store is not None:
        store.record_run(f"backtest {spec.start} to {spec.end}", cached)
        if progress:
            print(f"member cache {store.folder}: {cached.hits} hits, {cached.misses} misses")

    forecasts = pd.concat([pd.read_csv(_part_path(parts, d, o)) for d, o in blocks])
    actual = clean(raw).filled_close()
    forecasts["actual"] = actual.reindex(pd.to_datetime(forecasts["target_date"])).to_numpy()
    forecasts = forecasts[[*CONTRACT_COLUMNS, "last_close", "actual"]]
    forecasts = forecasts.sort_values(["horizon_days", "origin", "model"]).reset_index(drop=True)
    metrics = score(forecasts)
    write_all(
        out,
        {
            "forecasts.csv": forecasts.to_csv(index=False, float_format="%.4f").encode(),
            "metrics.json": (metrics.to_json(orient="records", indent=2) + "\n").encode(),
            "metrics.md": metrics_markdown(metrics, spec).encode(),
            "coverage.png": coverage_chart(metrics),
            "relative_error.png": relative_error_chart(metrics),
        },
    )
    shutil.rmtree(parts)
    return metrics


def run_block_task(raw, settings, days, origins, refit_weeks):
    """One block wherever it runs; the frame comes back to the client, which saves it."""
    return days, origins, *run_block(raw, settings, days, origins, refit_weeks)


def save_part(parts: Path, days: int, origins, frame: pd.DataFrame) -> None:
    target = _part_path(parts, days, origins)
    temporary = target.with_suffix(".tmp")
    frame.to_csv(temporary, index=False)
    temporary.replace(target)  # a block is saved whole or not at all
