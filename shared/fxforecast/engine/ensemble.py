"""One ensemble forecast: validation set -> every member run -> combination -> calibration.

Each step is its own unit (validation.py, runner.py, combiner.py, calibration.py); this module
only sequences them, with one BLAS/OpenMP thread so results are identical to the last digit
whatever the core count or the backtest's --jobs.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..horizons import HorizonParams, future_step_dates
from ..marketdata.clean import MarketData
from .calibration import CALIBRATIONS
from .combiner import COMBINERS, Combination
from .members.base import Member
from .runner import FitCache, MemberOutcome, run_member
from .validation import validation_set


@dataclass
class EnsembleForecast:
    as_of: pd.Timestamp
    step_dates: pd.DatetimeIndex
    quantiles: np.ndarray  # (steps, LEVELS), calibrated
    members: dict[str, MemberOutcome]
    combination: Combination
    calibration: object  # what CALIBRATIONS' fit returns: apply() and info()
    validation_origins: int

    @property
    def degraded(self) -> bool:
        return any(m.status == "failed" for m in self.members.values())


def forecast(
    data: MarketData,
    params: HorizonParams,
    members: list[tuple[Member, bool]],
    timeout_s: float,
    final_refit_weeks: int = 0,
    cache: FitCache | None = None,
    combiner: str = "greedy",
    calibration: str = "regime",
) -> EnsembleForecast:
    with threadpool_limits(limits=1):  # small matrices: nothing is lost, and reproducible
        validation = validation_set(data, params)
        step_dates = future_step_dates(data.as_of, params.days)
        cache = FitCache() if cache is None else cache
        outcomes: dict[str, MemberOutcome] = {}
        for member, enabled in members:
            if not enabled:
                outcomes[member.name] = MemberOutcome(
                    member.name, "disabled", "switched off in settings"
                )
                continue
            outcomes[member.name] = run_member(
                member,
                data.frame,
                validation,
                data.as_of,
                len(step_dates),
                timeout_s,
                params.refit_weeks,
                final_refit_weeks,
                cache,
            )
        working = {name: o for name, o in outcomes.items() if o.status == "ok"}
        if not working:
            reasons = "; ".join(f"{n}: {o.reason}" for n, o in outcomes.items())
            raise RuntimeError(f"every member failed ({reasons})")
        combination = COMBINERS[combiner]().fit(
            {name: o.validation for name, o in working.items()}, validation
        )
        for name, weight in combination.weights.items():
            outcomes[name].weight = weight
        combined = [
            combination.apply({name: o.validation[i] for name, o in working.items()}, last)
            for i, last in enumerate(validation.last_closes)
        ]
        calibrated = CALIBRATIONS[calibration]().fit(combined, validation, data.closes())
        last_close = float(data.closes().iloc[-1])
        final = combination.apply({n: o.forecast for n, o in working.items()}, last_close)
        return EnsembleForecast(
            data.as_of,
            step_dates,
            calibrated.apply(final),
            outcomes,
            combination,
            calibrated,
            len(validation.origins),
        )
