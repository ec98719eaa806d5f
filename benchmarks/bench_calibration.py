"""The calibration fit alone, the previous default (daily yardstick) against the horizon
yardstick, side by side in one process on the real validation origins as of 2024-11-29 (paths
of a fixed shape: the fit's cost does not depend on their values). Prints numbers, asserts
nothing.

    python -m benchmarks.bench_calibration
"""

import time

import numpy as np
from fxforecast.engine.calibration import CALIBRATIONS
from fxforecast.engine.validation import validation_set
from fxforecast.horizons import HORIZONS
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import load_raw

SHAPE = np.array([-1.96, -1.28, 0.0, 1.28, 1.96]) * 0.005  # log-distances of the 5 quantiles


def main() -> None:
    data = clean(load_raw(), "2024-11-29")
    closes = data.closes()
    for days in (7, 90):
        params = HORIZONS[days]
        validation = validation_set(data, params)
        paths = [
            last * np.exp(np.sqrt(np.arange(1, steps + 1))[:, None] * SHAPE)
            for last, steps in zip(validation.last_closes, validation.steps, strict=True)
        ]
        times: dict[str, list[float]] = {}
        for name in ("regime_conformal_daily", "regime_conformal") * 5:  # alternating rounds
            start = time.perf_counter()
            for _ in range(10):
                CALIBRATIONS[name](params).fit(paths, validation, closes)
            times.setdefault(name, []).append((time.perf_counter() - start) / 10)
        daily = np.median(times["regime_conformal_daily"])
        horizon = np.median(times["regime_conformal"])
        print(
            f"{days}d ({len(paths)} validation paths): regime_conformal_daily {daily * 1e3:.1f} ms,"
            f" regime_conformal {horizon * 1e3:.1f} ms per fit ({horizon / daily:.2f}x)"
        )


if __name__ == "__main__":
    main()
