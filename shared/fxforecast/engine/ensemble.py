"""One ensemble forecast: validation set -> every member run -> combination -> calibration ->
the gate (gate.py); the random walk's forecast replaces one that fails it.

Each step is its own unit (validation.py, runner.py, combiner.py, calibration.py); this module
only sequences them, with one BLAS/OpenMP thread so results are identical to the last digit
whatever the core count or the backtest's --jobs.
"""

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from ..errors import DataError, FxError
from ..horizons import HorizonParams, future_step_dates
from ..marketdata.clean import MarketData
from . import gate
from .calibration import CALIBRATIONS
from .combiner import COMBINERS, Combination
from .member_cache import Counts, Session, combination_key
from .members.base import Member
from .runner import FitCache, MemberOutcome, run_members
from .validation import Validation, validation_set


@dataclass
class EnsembleForecast:
    as_of: pd.Timestamp
    step_dates: pd.DatetimeIndex
    quantiles: np.ndarray  # (steps, LEVELS), calibrated
    members: dict[str, MemberOutcome]
    combination: Combination
    calibration: object  # what CALIBRATIONS' fit returns: apply() and info()
    validation_origins: int
    fallback: str | None = None  # why the random walk's forecast replaced the ensemble's

    def cached(self) -> Counts:
        """What the member cache held for this forecast's members."""
        return sum((m.cached for m in self.members.values()), Counts())

    @property
    def degraded(self) -> bool:
        return self.fallback is not None or any(m.status == "failed" for m in self.members.values())


class Uncalibrated:
    """The random walk's own widths, published as they are (the fallback)."""

    def apply(self, path: np.ndarray) -> np.ndarray:
        return path

    def info(self) -> dict:
        return {"method": "none"}


# The native thread pools (BLAS, OpenMP) found once per set of imported modules: finding them
# costs about 2 ms, at every backtest origin otherwise, and only an import loads a new one.
_thread_pools: tuple[int, ThreadpoolController] | None = None


def _one_thread():
    """threadpool_limits(limits=1) on the pools loaded now."""
    global _thread_pools
    if _thread_pools is None or _thread_pools[0] != len(sys.modules):
        _thread_pools = (len(sys.modules), ThreadpoolController())
    return _thread_pools[1].limit(limits=1)


def forecast(
    data: MarketData,
    params: HorizonParams,
    members: list[tuple[Member, bool]],
    timeout_s: float,
    final_refit_weeks: int = 0,
    cache: FitCache | None = None,
    combiner: str = "greedy",
    calibration: str = "regime_conformal",
    stoppable: bool = False,
) -> EnsembleForecast:
    """`stoppable`: members that fit models run in child processes killed at their timeout,
    beside Chronos if it is on (a service run); off, one after another in threads whose fits
    stay in `cache` (a backtest; engine.runner). `cache` also holds the member cache on disk,
    if any: paths found there are not computed again."""
    with _one_thread():  # small matrices: nothing is lost, and reproducible
        cache = FitCache() if cache is None else cache
        validation = validation_set(data, params, cache.losses)
        step_dates = future_step_dates(data.as_of, params.days)
        ran = run_members(
            [member for member, enabled in members if enabled],
            data.frame,
            validation,
            data.as_of,
            len(step_dates),
            timeout_s,
            params.refit_weeks,
            final_refit_weeks,
            cache,
            stoppable,
        )
        outcomes = {
            member.name: ran[member.name]
            if enabled
            else MemberOutcome(member.name, "disabled", "switched off in settings")
            for member, enabled in members
        }
        working = {name: o for name, o in outcomes.items() if o.status == "ok"}
        if not working:
            reasons = "; ".join(f"{n}: {o.reason}" for n, o in outcomes.items())
            raise FxError(f"every member failed ({reasons}); check the data and MEMBER_TIMEOUT_S")
        combination = _combination(combiner, working, validation, data, cache)
        for name, weight in combination.weights.items():
            outcomes[name].weight = weight
        # Every validation path combined at once, row by row (each row with its origin's last
        # close), then cut back into paths: one call instead of one per origin.
        rows = combination.apply(
            {name: np.concatenate(o.validation) for name, o in working.items()},
            np.repeat(validation.last_closes, validation.steps),
        )
        combined = np.split(rows, np.cumsum(validation.steps)[:-1])
        calibrated = CALIBRATIONS[calibration](params).fit(combined, validation, data.closes())
        last_close = float(data.closes().iloc[-1])
        final = combination.apply({n: o.forecast for n, o in working.items()}, last_close)
        result = EnsembleForecast(
            data.as_of,
            step_dates,
            calibrated.apply(final),
            outcomes,
            combination,
            calibrated,
            len(validation.origins),
        )
        found = gate.check(result.quantiles, step_dates, data.as_of, params.days)
        return _random_walk_fallback(result, params.days, "; ".join(found)) if found else result


def _combination(
    combiner: str,
    working: dict[str, MemberOutcome],
    validation: Validation,
    data: MarketData,
    cache: FitCache,
) -> Combination:
    """The combiner fitted on the working members' validation paths; kept in the member cache
    when every one of them is (its key: combination_key), so that it is fitted once."""

    def fit() -> Combination:
        return COMBINERS[combiner]().fit({n: o.validation for n, o in working.items()}, validation)

    paths_keys = {name: o.paths_key for name, o in working.items()}
    if cache.store is None or None in paths_keys.values():
        return fit()
    (rows,) = cache.digests(data.frame).of([data.as_of])
    key = combination_key(combiner, paths_keys, rows)
    session = Session(cache.store)
    try:
        found = session.get({key: "combination"}).get(key)
        if not isinstance(found, Combination):
            found = fit()
            session.put("ensemble", {key: "combination"}, {key: found})
    finally:
        session.close()
    return found


def _random_walk_fallback(result: EnsembleForecast, days: int, problem: str) -> EnsembleForecast:
    """The ensemble's forecast failed the gate: publish the random walk's, marked degraded,
    or fail when that fails the gate too."""
    walk = result.members.get("random_walk")
    found = (
        gate.check(walk.forecast, result.step_dates, result.as_of, days)
        if walk is not None and walk.status == "ok"
        else ["it did not run"]
    )
    if found:
        raise DataError(
            f"no usable forecast: the ensemble's failed the last check ({problem}) and so did "
            f"the random walk's ({'; '.join(found)}); check the data for defects"
        )
    for outcome in result.members.values():
        outcome.weight = 1.0 if outcome is walk else 0.0
    result.quantiles = walk.forecast
    result.combination = Combination({walk.name: 1.0}, 0.0)
    result.calibration = Uncalibrated()
    result.fallback = f"ensemble forecast unusable ({problem}): the random walk's published"
    return result
