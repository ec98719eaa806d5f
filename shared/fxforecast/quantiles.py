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


def chance_above(quantiles: dict[str, float], rate: float) -> dict:
    """The probability that the rate ends above `rate`, read off one step's published quantiles
    (QUANTILE_COLUMNS): the levels are interpolated linearly in log-rate between them, which is
    monotone and exact at each published quantile. Beyond the outer quantiles the forecast says
    nothing more: there the answer is a bound ("at most" 0.025 above q0.975, "at least" 0.975
    below q0.025), never an invented tail."""
    values = np.log([quantiles[c] for c in QUANTILE_COLUMNS])
    position = np.log(rate)
    if position > values[-1]:
        return {"rate": rate, "p_above": round(1 - LEVELS[-1], 4), "bound": "at most"}
    if position < values[0]:
        return {"rate": rate, "p_above": round(1 - LEVELS[0], 4), "bound": "at least"}
    below = float(np.interp(position, values, LEVELS))
    return {"rate": rate, "p_above": round(1 - below, 4), "bound": None}


def chance_text(entry: dict) -> str:
    """One chance_above entry in words: '93.1%', or a bound such as 'at most 2.5%'."""
    bound = f"{entry['bound']} " if entry["bound"] else ""
    return f"{bound}{entry['p_above']:.1%}"
