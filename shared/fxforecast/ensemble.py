"""Rolling-origin validation, weights, quantile combination and interval calibration.

For a run as of date `o` and horizon H, the validation origins are weekly dates whose whole
H-day path is realised by `o`. Each member forecasts them with models refitted on a fixed
grid (HorizonParams.refit_weeks), each fit using only rows dated on or before its anchor, and
is scored in CLP by its mean pinball loss. Weights follow score ** -WEIGHT_POWER, shrunk toward
equal weights. The weighted quantile average keeps a drift only on significant evidence and is
then calibrated on the same origins.
"""

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .data import MarketData
from .errors import DataError
from .horizons import HorizonParams, future_step_dates, history_step_dates, refit_anchor
from .members.base import LEVELS, MEDIAN, Member
from .scoring import pinball

WEIGHT_SHRINK = 0.25  # share of the weight spread evenly over all working members
WEIGHT_POWER = 10  # weights follow validation loss ** -10: members 7% apart differ ~2x
MIN_FIT_OBS = 250  # a validation origin needs this many closes before its refit anchor
MIN_VALIDATION_ORIGINS = 8
# Interval pairs calibrated separately: (lower level index, upper level index, coverage).
INTERVALS = ((1, 3, 0.80), (0, 4, 0.95))
CALIBRATION_LIMITS = (0.5, 3.0)
# Candidate shares of the members' combined drift kept in the median. FX is close to a random
# walk: the share is earned on the validation origins, and 0 (no change) wins ties.
DRIFT_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
# A drift is kept only if it beat no change by this many standard errors (5%, one-sided).
DRIFT_EVIDENCE_Z = 1.645
# Prior strength, in independent paths, that holds calibration factors toward 1.
CALIBRATION_PRIOR_PATHS = 10


@dataclass
class MemberOutcome:
    name: str
    status: str  # ok, failed, disabled
    reason: str | None = None
    score: float | None = None
    weight: float = 0.0
    seconds: float = 0.0
    forecast: np.ndarray | None = None  # (steps, LEVELS) at the as-of date
    validation: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "score": None if self.score is None else round(self.score, 4),
            "weight": round(self.weight, 4),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class EnsembleForecast:
    as_of: pd.Timestamp
    step_dates: pd.DatetimeIndex
    quantiles: np.ndarray  # (steps, LEVELS), calibrated
    members: dict[str, MemberOutcome]
    calibration: dict[str, float]
    drift_share: float
    validation_origins: int

    @property
    def degraded(self) -> bool:
        return any(m.status == "failed" for m in self.members.values())


@dataclass(frozen=True)
class Validation:
    origins: list[pd.Timestamp]
    steps: list[int]
    actuals: list[np.ndarray]
    last_closes: list[float]


def validation_set(data: MarketData, params: HorizonParams) -> Validation:
    """Weekly origins, newest first in time order reversed, whose H-day path ends by the as-of."""
    frame = data.frame
    index = frame.index
    filled = data.filled_close()
    closes = data.closes()
    latest = data.as_of - pd.Timedelta(days=params.days)
    origins, steps, actuals, last_closes = [], [], [], []
    for k in range(params.validation_origins):
        candidates = index[index <= latest - pd.Timedelta(weeks=k)]
        if len(candidates) == 0:
            break
        origin = candidates[-1]
        anchor = refit_anchor(origin, params.refit_weeks)
        if closes.loc[:anchor].size < MIN_FIT_OBS:
            break
        dates = history_step_dates(index, origin, params.days)
        origins.append(origin)
        steps.append(len(dates))
        actuals.append(filled.loc[dates].to_numpy())
        last_closes.append(float(filled.loc[origin]))
    return Validation(origins[::-1], steps[::-1], actuals[::-1], last_closes[::-1])


def pinball_loss(quantiles: np.ndarray, actual: np.ndarray) -> float:
    """Mean pinball loss over steps and LEVELS, in CLP."""
    return float(np.mean(pinball(quantiles, actual)))


def _member_forecasts(member, frame, params, validation, as_of, n_steps, final_refit_weeks, cache):
    """Validation forecasts, grouped by refit anchor, then the final forecast.

    `cache` keeps fits and validation paths by date, so a backtest, whose consecutive origins
    share most of their validation origins, computes each of them once.
    """

    def fitted_at(anchor):
        key = ("fit", member.name, params.days, anchor)
        if key not in cache:
            cache[key] = member.fit(frame.loc[:anchor], params)
        return cache[key]

    def anchor_of(origin, weeks):
        # A zero-shot member's one fit serves every origin, so all of them go in one call.
        return as_of if member.zero_shot else refit_anchor(origin, weeks)

    def path_key(i):
        return ("path", member.name, params.days, validation.origins[i])

    by_anchor: dict[pd.Timestamp, list[int]] = {}
    for i, origin in enumerate(validation.origins):
        if path_key(i) not in cache:
            by_anchor.setdefault(anchor_of(origin, params.refit_weeks), []).append(i)
    for anchor, todo in by_anchor.items():
        paths = fitted_at(anchor).forecast(
            frame, [validation.origins[i] for i in todo], [validation.steps[i] for i in todo]
        )
        for i, path in zip(todo, paths, strict=True):
            cache[path_key(i)] = path
    validation_paths = [cache[path_key(i)] for i in range(len(validation.origins))]
    final = fitted_at(anchor_of(as_of, final_refit_weeks)).forecast(frame, [as_of], [n_steps])
    return validation_paths, final[0]


def _check(paths: list[np.ndarray], steps: list[int]) -> list[np.ndarray]:
    checked = []
    for path, n in zip(paths, steps, strict=True):
        path = np.asarray(path, dtype=float)
        if path.shape != (n, len(LEVELS)):
            raise ValueError(f"forecast has shape {path.shape}, expected {(n, len(LEVELS))}")
        if not np.all(np.isfinite(path)) or np.any(path <= 0):
            raise ValueError("forecast has non-finite or non-positive values")
        checked.append(np.sort(path, axis=1))
    return checked


def run_member(
    member, frame, params, validation, as_of, n_steps, timeout_s, final_refit_weeks=0, cache=None
) -> MemberOutcome:
    """Fit, validate and forecast one member in a worker thread; failures become reasons."""
    cache = {} if cache is None else cache
    box: dict = {}

    def work():
        try:
            box["result"] = _member_forecasts(
                member, frame, params, validation, as_of, n_steps, final_refit_weeks, cache
            )
        except Exception as exc:  # one member's failure must never stop the run
            box["error"] = exc

    started = time.perf_counter()
    # A daemon thread: a member that hangs is abandoned, and cannot keep the process alive.
    thread = threading.Thread(target=work, name=f"member-{member.name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        return MemberOutcome(
            member.name, "failed", f"timed out after {timeout_s:g} s", seconds=seconds
        )
    if "error" in box:
        exc = box["error"]
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(
            ": "
        )
        return MemberOutcome(member.name, "failed", reason, seconds=seconds)
    validation_paths, final = box["result"]
    try:
        validation_paths = _check(validation_paths, validation.steps)
        final = _check([final], [n_steps])[0]
    except ValueError as exc:
        return MemberOutcome(member.name, "failed", str(exc), seconds=seconds)
    score = float(
        np.mean(
            [pinball_loss(p, a) for p, a in zip(validation_paths, validation.actuals, strict=True)]
        )
    )
    return MemberOutcome(
        member.name, "ok", score=score, seconds=seconds, forecast=final, validation=validation_paths
    )


def earn_weights(scores: dict[str, float]) -> dict[str, float]:
    """Inverse validation loss to a power, shrunk toward equal weights; sums to 1."""
    inverse = {name: 1.0 / max(score, 1e-9) ** WEIGHT_POWER for name, score in scores.items()}
    total = sum(inverse.values())
    even = 1.0 / len(scores)
    return {
        name: (1 - WEIGHT_SHRINK) * value / total + WEIGHT_SHRINK * even
        for name, value in inverse.items()
    }


def combine(paths: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Quantile averaging: the weighted mean of each level, re-sorted to stay monotone."""
    combined = sum(weights[name] * path for name, path in paths.items())
    return np.sort(combined, axis=1)


def keep_drift(path: np.ndarray, last: float, share: float) -> np.ndarray:
    """Shift the whole distribution in log space so the median keeps `share` of its drift
    away from the last close; the shape of the quantiles is unchanged."""
    shift = (1 - share) * (np.log(path[:, MEDIAN]) - np.log(last))
    return path * np.exp(-shift)[:, None]


def independent_paths(n_paths: int, days: int) -> float:
    """Weekly origins of H-day paths overlap: about n * 7 / H of them are independent."""
    return max(2.0, n_paths * 7 / max(days, 7))


def choose_drift_share(paths, actuals, last_closes, days: int) -> float:
    """The share of drift kept in the median: the one with the lowest absolute error over the
    second half of the validation paths, among those that beat no change (share 0)
    significantly (one-sided 5%, overlap-adjusted standard error); otherwise no change."""

    def errors(share):
        return np.array(
            [
                np.mean(
                    np.abs(keep_drift(p, last, share)[len(a) // 2 :, MEDIAN] - a[len(a) // 2 :])
                )
                for p, a, last in zip(paths, actuals, last_closes, strict=True)
            ]
        )

    no_change = errors(0.0)
    n_eff = independent_paths(len(paths), days)
    best_share, best_gain = 0.0, 0.0
    for share in DRIFT_SHARES[1:]:
        diff = errors(share) - no_change
        gain = -diff.mean()
        if gain > DRIFT_EVIDENCE_Z * diff.std(ddof=1) / np.sqrt(n_eff) and gain > best_gain:
            best_share, best_gain = share, gain
    return best_share


def calibration_factors(
    paths: list[np.ndarray], actuals: list[np.ndarray], days: int
) -> dict[str, float]:
    """Per interval, the factor on log-distance from the median that makes past errors in the
    second half of each path (where the target lies) fall inside as often as nominal.

    The factor is shrunk toward 1 (in log terms) by how few independent paths it rests on, so
    one shock in a short window does not swing the width for years."""
    weight = independent_paths(len(paths), days)
    weight /= weight + CALIBRATION_PRIOR_PATHS
    factors = {}
    for lower, upper, coverage in INTERVALS:
        ratios = []
        for path, actual in zip(paths, actuals, strict=True):
            tail = slice(len(actual) // 2, None)
            log_median = np.log(path[tail, MEDIAN])
            error = np.log(actual[tail]) - log_median
            half_width = np.where(
                error >= 0,
                np.log(path[tail, upper]) - log_median,
                log_median - np.log(path[tail, lower]),
            )
            ratios.append(np.abs(error) / np.maximum(half_width, 1e-12))
        # Split-conformal level: (1 + 1/n) x nominal, n the number of validation paths.
        level = min(1.0, coverage * (1 + 1 / len(paths)))
        raw = float(np.quantile(np.concatenate(ratios), level))
        factor = np.exp(weight * np.log(max(raw, 1e-6)))
        factors[f"{int(coverage * 100)}"] = float(np.clip(factor, *CALIBRATION_LIMITS))
    return factors


def calibrate(path: np.ndarray, factors: dict[str, float]) -> np.ndarray:
    """Stretch each interval's log-distance from the median by its factor."""
    log_path = np.log(path)
    out = log_path.copy()
    for lower, upper, coverage in INTERVALS:
        factor = factors[f"{int(coverage * 100)}"]
        for level in (lower, upper):
            out[:, level] = log_path[:, MEDIAN] + factor * (
                log_path[:, level] - log_path[:, MEDIAN]
            )
    return np.sort(np.exp(out), axis=1)


def forecast(
    data: MarketData,
    params: HorizonParams,
    members: list[tuple[Member, bool]],
    timeout_s: float,
    final_refit_weeks: int = 0,
    cache=None,
) -> EnsembleForecast:
    # One BLAS/OpenMP thread: the matrices are small, so nothing is lost, and results are
    # identical to the last digit whatever the core count or the backtest's --jobs.
    with threadpool_limits(limits=1):
        return _forecast(data, params, members, timeout_s, final_refit_weeks, cache)


def _forecast(data, params, members, timeout_s, final_refit_weeks, cache) -> EnsembleForecast:
    frame = data.frame
    as_of = data.as_of
    step_dates = future_step_dates(as_of, params.days)
    validation = validation_set(data, params)
    if len(validation.origins) < MIN_VALIDATION_ORIGINS:
        needed = (
            MIN_FIT_OBS + (params.days + 7 * (MIN_VALIDATION_ORIGINS + params.refit_weeks)) * 5 // 7
        )
        raise DataError(
            f"history too short for the {params.days}-day horizon: {data.closes().size} closes "
            f"up to {as_of.date()}, need about {needed}; use data that starts earlier or a later "
            "--as-of"
        )
    cache = {} if cache is None else cache
    outcomes: dict[str, MemberOutcome] = {}
    for member, enabled in members:
        if not enabled:
            outcomes[member.name] = MemberOutcome(
                member.name, "disabled", "switched off in settings"
            )
            continue
        outcomes[member.name] = run_member(
            member,
            frame,
            params,
            validation,
            as_of,
            len(step_dates),
            timeout_s,
            final_refit_weeks,
            cache,
        )
    working = {name: o for name, o in outcomes.items() if o.status == "ok"}
    if not working:
        reasons = "; ".join(f"{n}: {o.reason}" for n, o in outcomes.items())
        raise RuntimeError(f"every member failed ({reasons})")
    weights = earn_weights({name: o.score for name, o in working.items()})
    for name, weight in weights.items():
        outcomes[name].weight = weight
    validation_combined = [
        combine({name: o.validation[i] for name, o in working.items()}, weights)
        for i in range(len(validation.origins))
    ]
    share = choose_drift_share(
        validation_combined, validation.actuals, validation.last_closes, params.days
    )
    validation_combined = [
        keep_drift(path, last, share)
        for path, last in zip(validation_combined, validation.last_closes, strict=True)
    ]
    factors = calibration_factors(validation_combined, validation.actuals, params.days)
    combined = combine({n: o.forecast for n, o in working.items()}, weights)
    final = calibrate(keep_drift(combined, float(data.closes().iloc[-1]), share), factors)
    return EnsembleForecast(
        as_of, step_dates, final, outcomes, factors, share, len(validation.origins)
    )
