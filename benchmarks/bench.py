"""`make bench`: wall time and peak RSS of each service run, each in a fresh process, and the
import floor (a fresh interpreter importing what a run imports, doing nothing else), so the
figures can be stated as ratios that carry over between machines.

Each service runs cold (an empty member cache) and warm (the cache as the previous week's run
left it: filled once by a run as of a week earlier, copied afresh for each warm run), as of the
embedded data's last date. `make bench ARGS="--before /path/to/other/checkout"` also times cold
runs of that checkout's code (its shared/ first on the path), interleaved with these, so the two
are compared in one sitting.

Prints numbers; asserts nothing. Runs on the embedded data into a temporary folder.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]  # the repository: benchmarks/ is at its top
SERVICES = ("forecaster_7d", "forecaster_15d", "forecaster_30d", "forecaster_90d")


def run_once(service: str, workdir: Path, extra_env: dict | None = None, args: tuple = ()) -> dict:
    """One service run in a fresh interpreter; returns its metrics line plus the wall time.
    The member cache is off unless `extra_env` sets CACHE_DIR."""
    metrics = workdir / "metrics.jsonl"
    env = {
        **os.environ,
        "OUTPUT_DIR": str(workdir / "output"),
        "LOG_DIR": str(workdir / "logs"),
        "METRICS_LOG_PATH": str(metrics),
        "CACHE_DIR": "",
        **(extra_env or {}),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "services" / service / "run.py"), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{service} failed: {done.stderr.strip().splitlines()[-1]}")
    record = json.loads(metrics.read_text().splitlines()[-1])
    record["wall_s"] = wall
    return record


def import_floor() -> float:
    """Wall time of a fresh interpreter that only imports the service's modules."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import fxforecast.ops.service"], check=True)
    return time.perf_counter() - started


def median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def peak(runs: list[dict]) -> float:
    return max(r["peak_rss_mb"] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose cold runs to time")
    parser.add_argument("--services", default=",".join(SERVICES))
    options = parser.parse_args()
    repeats = options.repeats
    from fxforecast.marketdata.schema import load_raw

    index = load_raw().market.index
    newest, week_before = index[-1], index[index <= index[-1] - pd.Timedelta(days=7)][-1]
    as_of = ("--as-of", str(newest.date()))
    before_env = {}
    if options.before:
        before_env["PYTHONPATH"] = str(options.before.resolve() / "shared")

    floor = sorted(import_floor() for _ in range(repeats))[repeats // 2]
    print(f"import floor: {floor:.2f} s (median of {repeats})")
    header = ["cold s", "x floor", "warm s", "x floor", "warm hits/misses", "peak MB cold/warm"]
    if options.before:
        header += ["before s", "x floor", "cold/before", "peak MB before"]
    print(f"{'service':<16}" + "".join(f"{h:>19}" for h in header))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for service in options.services.split(","):
            filled = tmp / service / "filled"
            last_week = ("--as-of", str(week_before.date()))
            run_once(service, tmp, {"CACHE_DIR": str(filled)}, last_week)
            cold, warm, before = [], [], []
            for i in range(repeats):  # interleaved, so a change in the machine's load hits all
                if options.before:
                    before.append(run_once(service, tmp, before_env, as_of))
                cold_dir = tmp / service / f"cold{i}"
                cold.append(run_once(service, tmp, {"CACHE_DIR": str(cold_dir)}, as_of))
                warm_dir = tmp / service / f"warm{i}"
                shutil.copytree(filled, warm_dir)
                warm.append(run_once(service, tmp, {"CACHE_DIR": str(warm_dir)}, as_of))
            c, w = median(cold), median(warm)
            cells = [
                f"{c['wall_s']:.2f}",
                f"{c['wall_s'] / floor:.2f}",
                f"{w['wall_s']:.2f}",
                f"{w['wall_s'] / floor:.2f}",
                f"{w['cache']['hits']}/{w['cache']['misses']}",
                f"{peak(cold):.0f}/{peak(warm):.0f}",
            ]
            if options.before:
                b = median(before)
                cells += [
                    f"{b['wall_s']:.2f}",
                    f"{b['wall_s'] / floor:.2f}",
                    f"{c['wall_s'] / b['wall_s']:.3f}",
                    f"{peak(before):.0f}",
                ]
            print(f"{service:<16}" + "".join(f"{cell:>19}" for cell in cells))
    print(
        f"(median of {repeats} runs each; {os.cpu_count()} CPUs visible, load average "
        f"{os.getloadavg()[0]:.1f}; Chronos off; embedded data as of {newest.date()}, the warm "
        f"cache filled as of {week_before.date()})"
    )


if __name__ == "__main__":
    main()
