"""`make bench-backtest`: one short backtest with `--jobs 1`, then on a local Dask cluster of 1
and of 2 worker processes (one thread each); prints each wall time, the speed-up of 2 workers
over 1, and whether each run's forecasts.csv and metrics.json are byte-identical to `--jobs 1`.

Prints numbers; asserts nothing. Embedded data, Chronos off. A worker's first block includes
its imports, as on a real cluster.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from distributed import LocalCluster
from fxforecast.evaluation.backtest import BacktestSpec, run_backtest
from fxforecast.marketdata.schema import load_raw
from fxforecast.settings import Settings

OUTPUTS = ("forecasts.csv", "metrics.json")


def timed(raw, spec: BacktestSpec, out: Path, **where) -> float:
    started = time.perf_counter()
    # Without the member cache: Dask workers compute without it, so --jobs 1 must too.
    run_backtest(raw, Settings(cache_dir=None), spec, out, progress=False, **where)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", default="7,15,30,90")
    # Four weekly origins at four horizons: four blocks of unequal cost (90 days is the largest).
    parser.add_argument("--start", default="2019-06-07")
    parser.add_argument("--end", default="2019-06-28")
    args = parser.parse_args()
    horizons = tuple(int(h) for h in args.horizons.split(","))
    spec = BacktestSpec(horizons, args.start, args.end, every=1, refit_weeks=4)
    raw = load_raw()
    print(f"backtest {spec.start} .. {spec.end}, horizons {args.horizons}, Chronos off")
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "jobs1"
        runs = {"--jobs 1 (no Dask)": (timed(raw, spec, reference, jobs=1), reference)}
        for workers in (1, 2):
            with LocalCluster(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
            ) as cluster:
                out = Path(tmp) / f"dask{workers}"
                wall = timed(raw, spec, out, scheduler=cluster.scheduler_address)
                runs[f"Dask, {workers} worker{'s' if workers > 1 else ''}"] = (wall, out)
        print(f"{'where':<22}{'wall s':>8}  byte-identical to --jobs 1")
        for name, (wall, out) in runs.items():
            same = all((out / n).read_bytes() == (reference / n).read_bytes() for n in OUTPUTS)
            print(f"{name:<22}{wall:>8.1f}  {'yes' if same else 'NO'}")
    one, two = runs["Dask, 1 worker"][0], runs["Dask, 2 workers"][0]
    print(f"speed-up, 2 workers over 1: {one / two:.2f}x")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"({os.cpu_count()} CPUs visible; load average {load})")


if __name__ == "__main__":
    main()
