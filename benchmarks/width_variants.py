"""`make width-variants`: every interval-width variant tried for the 15-90-day widths, each through
the product's own full backtest (2017-01-06 .. 2024-11-29). The member cache (CACHE_DIR) holds
every member path after the first run, so each further variant computes only its combination and
calibration. Prints, per variant and horizon, rel_MAE, rel_WQL (whole window and each half),
coverage 80/95, the range of the yearly 80% coverage and the Diebold-Mariano p-value of its
pinball loss against the previous default (`regime_conformal_daily`).

    python -m benchmarks.width_variants [--only NAME,...] [--yardstick DAYS,DECAY,WINDOW]

Prints numbers; asserts nothing. Variants that are not product settings are registered here, for
this process only (the backtest then runs in this process: --jobs 1).
"""

import argparse
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from fxforecast import horizons
from fxforecast.engine import calibration as cal
from fxforecast.engine.members.base import Fitted, Member, closes_until, normal_quantiles
from fxforecast.evaluation import backtest
from fxforecast.evaluation.scoring import loss_diebold_mariano, score
from fxforecast.marketdata.schema import load_raw
from fxforecast.quantiles import QUANTILE_COLUMNS, pinball
from fxforecast.settings import load_settings

BASELINE = "regime_conformal_daily"
START, END = "2017-01-06", "2024-11-29"
HALVES = ((2017, 2020), (2021, 2024))
Z80 = 1.2815515655446004  # the normal's 90% quantile: an 80% interval's half-width in sigmas


def _per_step(path: np.ndarray, factor: np.ndarray, corrections: dict) -> np.ndarray:
    return cal.calibrate(path, {k: factor[: len(path)] * v for k, v in corrections.items()})


@dataclass(frozen=True)
class _PerStep:
    """A calibration whose factor varies by step (`factor`), times the recent correction."""

    factor: np.ndarray
    corrections: dict

    def apply(self, path):
        return _per_step(path, self.factor, self.corrections)

    def info(self):
        return {"method": "variant"}


class VarianceRatio:
    """Absolute: every step s scaled by sqrt(variance ratio of min(s, k)-day moves) over the
    reference window (how much less the rate moves over s closes than daily volatility x sqrt(s)
    says), times the regime on the yardstick, times the recent-coverage correction."""

    def __init__(self, yardstick: cal.Yardstick):
        self.yardstick = yardstick

    def _factors(self, closes, dates, steps):
        daily = cal.Yardstick(1, self.yardstick.decay, self.yardstick.window)
        long_daily = _at(daily.volatility(closes)[1], dates)
        out = np.empty((len(dates), steps))
        for s in range(1, steps + 1):
            days = min(s, self.yardstick.days)
            step = replace(self.yardstick, days=days)
            out[:, s - 1] = _at(step.volatility(closes)[1], dates) / long_daily
        return out * self.yardstick.factors(closes, dates)[:, None]

    def fit(self, paths, validation, closes):
        steps = max(len(p) for p in paths) + 10
        factors = self._factors(closes, validation.origins, steps)
        widened = [_per_step(p, factors[i], {"80": 1.0, "95": 1.0}) for i, p in enumerate(paths)]
        now = self._factors(closes, [closes.index[-1]], steps)[0]
        return _PerStep(now, cal.recent_corrections(validation.tails(widened), validation))


def _own_sigma(path):
    return (np.log(path[:, 3]) - np.log(path[:, 1])) / (2 * Z80)


class FromYardstick:
    """The 80% interval's width set to a normal's on the yardstick (its fast volatility per
    close x sqrt(steps)), the ensemble's shape (95% against 80%) kept; `share` < 1 moves only that
    share of the way, in log-distance; then the recent-coverage correction."""

    def __init__(self, yardstick: cal.Yardstick, share: float = 1.0):
        self.yardstick, self.share = yardstick, share

    def _factor(self, path, fast):
        target = fast * np.sqrt(np.arange(1, len(path) + 1))
        return (target / _own_sigma(path)) ** self.share

    def fit(self, paths, validation, closes):
        fast = _at(self.yardstick.volatility(closes)[0], validation.origins)
        widened = [
            _per_step(p, self._factor(p, f), {"80": 1.0, "95": 1.0})
            for p, f in zip(paths, fast, strict=True)
        ]
        corrections = cal.recent_corrections(validation.tails(widened), validation)
        now = float(self.yardstick.volatility(closes)[0].iloc[-1])
        variant = self

        class Applied:
            def apply(self, path):
                return _per_step(path, variant._factor(path, now), corrections)

            def info(self):
                return {"method": "variant"}

        return Applied()


class _YardstickWalkFitted(Fitted):
    def __init__(self, yardstick: cal.Yardstick):
        self.yardstick = yardstick

    def _forecast(self, frame, origins, steps):
        out = []
        for origin, n in zip(origins, steps, strict=True):
            closes = closes_until(frame, origin)
            sigma = float(self.yardstick.volatility(closes)[0].iloc[-1])
            walk = sigma * np.sqrt(np.arange(1, n + 1))
            out.append(normal_quantiles(float(closes.iloc[-1]), np.zeros(n), walk))
        return out


@dataclass(frozen=True)
class YardstickWalk(Member):
    """A width member earned like the others: no change, normal widths from the weekly
    yardstick's fast volatility per close x sqrt(steps)."""

    name = "random_walk_yardstick"
    days: int = 5
    decay: float = 0.99

    def fit(self, frame):
        return _YardstickWalkFitted(cal.Yardstick(self.days, self.decay, 250))


def _with_width_member(settings, params):
    return [*CONFIGURED_MEMBERS(settings, params), (YardstickWalk(), True)]


CONFIGURED_MEMBERS = backtest.configured_members


def _at(series: pd.Series, dates) -> np.ndarray:
    return series.to_numpy()[series.index.searchsorted(dates, side="right") - 1]


def _yardstick(text: str) -> cal.Yardstick:
    days, decay, window = text.split(",")
    return cal.Yardstick(int(days), float(decay), int(window))


WEEKLY, MONTHLY = cal.Yardstick(*horizons.WEEKLY), cal.Yardstick(*horizons.MONTHLY)
# name -> (what it is, factory of the horizon's parameters, or None for a product setting)
VARIANTS = {
    BASELINE: ("the previous default: the regime on daily returns, corrected", None),
    "regime_conformal": ("the default: the regime on the horizon's yardstick, corrected", None),
    "regime": ("the daily regime alone, uncorrected", None),
    "weekly_everywhere": (
        "the regime on 5-day moves at every horizon, corrected",
        lambda params: cal.RegimeConformal(WEEKLY),
    ),
    "monthly_everywhere": (
        "the regime on 21-day moves at every horizon, corrected",
        lambda params: cal.RegimeConformal(MONTHLY),
    ),
    "yardstick_regime_alone": (
        "the regime on the horizon's yardstick, uncorrected",
        lambda params: cal.VolatilityRegime(cal.Yardstick.of(params)),
    ),
    "variance_ratio": (
        "absolute: sqrt of the 5-day variance ratio at every step x the weekly regime, corrected",
        lambda params: VarianceRatio(WEEKLY),
    ),
    "widths_from_yardstick": (
        "80% width from the weekly yardstick's fast volatility x sqrt(steps), shape kept, "
        "corrected",
        lambda params: FromYardstick(cal.Yardstick(5, 0.99, 250)),
    ),
    "half_from_yardstick": (
        "half way (in log-distance) to the widths_from_yardstick widths, corrected",
        lambda params: FromYardstick(cal.Yardstick(5, 0.99, 250), share=0.5),
    ),
    "width_member": (
        "a sixth member (no change, weekly-yardstick widths) earned like the others; the "
        "previous default's calibration",
        lambda params: cal.RegimeConformal(cal.DAILY),
    ),
}


def table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per variant and horizon, its ensemble rows against the baseline's."""
    baseline = frames[BASELINE]
    out = []
    for name, forecasts in frames.items():
        for horizon, rows in forecasts.groupby("horizon_days"):
            years = pd.to_datetime(rows["origin"]).dt.year
            ensemble = rows[rows["model"] == "ensemble"].set_index("origin").sort_index()
            base = baseline[
                (baseline["horizon_days"] == horizon) & (baseline["model"] == "ensemble")
            ]
            base = base.set_index("origin").sort_index().loc[ensemble.index]
            metrics = score(rows).set_index("model").loc["ensemble"]
            halves = []
            for first, last in HALVES:
                half = rows[(years >= first) & (years <= last)]
                found = score(half).set_index("model") if len(half) else None
                halves.append(np.nan if found is None else found.loc["ensemble", "rel_wql"])
            covered = ensemble["actual"].between(ensemble["q0.1"], ensemble["q0.9"])
            yearly = covered.groupby(pd.to_datetime(ensemble.index).year).mean()

            def loss(frame):
                quantiles = frame[QUANTILE_COLUMNS].to_numpy(float)
                return pinball(quantiles, frame["actual"].to_numpy(float)).sum(axis=1)

            lag = math.ceil(horizon / 7) - 1
            out.append(
                {
                    "variant": name,
                    "horizon": horizon,
                    "rel_mae": round(metrics["rel_mae"], 3),
                    "rel_wql": round(metrics["rel_wql"], 4),
                    "rel_wql_2017_20": round(halves[0], 4),
                    "rel_wql_2021_24": round(halves[1], 4),
                    "cov80": round(metrics["coverage80"], 3),
                    "cov95": round(metrics["coverage95"], 3),
                    "yearly80": f"{yearly.min():.2f}-{yearly.max():.2f}",
                    "dm_p": round(loss_diebold_mariano(loss(ensemble), loss(base), lag), 3),
                }
            )
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument(
        "--yardstick",
        action="append",
        default=[],
        metavar="DAYS,DECAY,WINDOW",
        help="also the regime, corrected, on this yardstick at every horizon (repeatable)",
    )
    parser.add_argument("--horizons", default="7,15,30,90")
    parser.add_argument("--start", default=START, help="first origin week (yyyy-mm-dd)")
    parser.add_argument("--end", default=END, help="last origin week (yyyy-mm-dd)")
    parser.add_argument("--out", type=Path, default=Path("output/width-variants"))
    args = parser.parse_args()
    variants = dict(VARIANTS)
    for text in args.yardstick:
        yardstick = _yardstick(text)
        variants[f"yardstick {text}"] = (
            f"the regime on {yardstick.label()}, EWMA {yardstick.decay}, "
            f"{yardstick.window} moves, corrected",
            lambda params, y=yardstick: cal.RegimeConformal(y),
        )
    names = args.only.split(",") if args.only else list(variants)
    if BASELINE not in names:
        names.insert(0, BASELINE)
    settings = load_settings(None)
    raw = load_raw(settings.data_dir)
    horizons = tuple(int(h) for h in args.horizons.split(","))
    spec = backtest.BacktestSpec(horizons, args.start, args.end, 1, 4)
    frames = {}
    for name in names:
        what, factory = variants[name]
        if factory is not None:
            cal.CALIBRATIONS[name] = factory
        backtest.configured_members = (
            _with_width_member if name == "width_member" else CONFIGURED_MEMBERS
        )
        print(f"{name}: {what}", flush=True)
        out = args.out / name.replace(" ", "_").replace(",", "-")
        backtest.run_backtest(
            raw, replace(settings, calibration=name), spec, out, jobs=1, progress=False
        )
        frames[name] = pd.read_csv(out / "forecasts.csv")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table(frames).to_string(index=False))


if __name__ == "__main__":
    main()
