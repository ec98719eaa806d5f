"""Ensemble members. Each turns history into quantile paths of USD/CLP in CLP."""

from ..settings import Settings
from .arima_garch import ArimaGarch
from .base import Member
from .chronos import ChronosBolt
from .forest import RandomForest
from .random_walk import RandomWalk
from .var import VectorAutoregression


def configured_members(settings: Settings) -> list[tuple[Member, bool]]:
    """Every member with whether this service's settings enable it (the random walk always)."""
    members = [
        (RandomWalk(), True),
        (ArimaGarch(), settings.enable_arima),
        (VectorAutoregression(), settings.enable_var),
        (RandomForest(), settings.enable_rf),
        (
            ChronosBolt(
                settings.chronos_model,
                settings.chronos_min_available_mb,
                settings.chronos_context_length,
                settings.chronos_backend,
                settings.chronos_device,
            ),
            settings.enable_chronos,
        ),
    ]
    return members
