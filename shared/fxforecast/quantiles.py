"""The quantile levels every forecast carries, their column names in files, and their loss."""

import numpy as np

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
QUANTILE_COLUMNS = [f"q{level}" for level in LEVELS]
MEDIAN = LEVELS.index(0.5)


def pinball(quantiles: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """The pinball loss of each row (one actual) and each of LEVELS (one quantile column)."""
    diff = actual[:, None] - quantiles
    levels = np.asarray(LEVELS)[None, :]
    return np.maximum(levels * diff, (levels - 1) * diff)
