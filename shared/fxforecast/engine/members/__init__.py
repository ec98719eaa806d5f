"""Ensemble members. Each turns history into quantile paths of USD/CLP in CLP."""

from ...horizons import HorizonParams
from ...settings import Settings
from .arima_garch import ArimaGarch
from .base import Member, max_steps
from .chronos import ChronosBolt
from .forest import RandomForest
from .random_walk import EmpiricalRandomWalk, RandomWalk
from .var import VectorAutoregression


def configured_members(settings: Settings, params: HorizonParams) -> list[tuple[Member, bool]]:
    """Every member, its hyper-parameters from the horizon's row of the table, with whether
    this service's settings enable it (the random walk always)."""
    arima = ArimaGarch(lookback=params.lookback, max_p=params.arima_max_p, max_q=params.arima_max_q)
    var = VectorAutoregression(lookback=params.lookback, max_lags=params.var_max_lags)
    forest = RandomForest(
        lookback=params.lookback, trees=params.rf_trees, steps=max_steps(params.days)
    )
    chronos = ChronosBolt(
        model=settings.chronos_model,
        min_available_mb=settings.chronos_min_available_mb,
        context_length=settings.chronos_context_length or params.chronos_context,
        backend=settings.chronos_backend,
        device=settings.chronos_device,
    )
    return [
        (RandomWalk(), True),
        (arima, settings.enable_arima),
        (var, settings.enable_var),
        (forest, settings.enable_rf),
        (EmpiricalRandomWalk(), settings.enable_rw_empirical),
        (chronos, settings.enable_chronos),
    ]
