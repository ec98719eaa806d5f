"""`make bench`: wall time and peak RSS of each service run, each in a fresh process, and the
import floor (a fresh interpreter importing what a run imports, doing nothing else), so the
figures can be stated as ratios that carry over between machines.

Prints numbers; asserts nothing. Runs on the embedded data into a temporary folder.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: benchmarks/ is at its top
SERVICES = ("forecaster_7d", "forecaster_15d", "forecaster_30d", "forecaster_90d")


def run_once(service: str, workdir: Path, extra_env: dict | None = None) -> dict:
    """One service run in a fresh interpreter; returns its metrics line plus the wall time."""
    metrics = workdir / "metrics.jsonl"
    env = {
        **os.environ,
        "OUTPUT_DIR": str(workdir / "output"),
        "LOG_DIR": str(workdir / "logs"),
        "METRICS_LOG_PATH": str(metrics),
        **(extra_env or {}),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "services" / service / "run.py")],
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


def main(repeats: int = 3) -> None:
    floor = sorted(import_floor() for _ in range(repeats))[repeats // 2]
    print(f"import floor: {floor:.2f} s (median of {repeats})")
    print(
        f"{'service':<16}{f'wall s (median of {repeats})':>24}{'x floor':>9}{'in-run s':>10}"
        f"{'peak RSS MB':>13}  status"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for service in SERVICES:
            runs = [run_once(service, Path(tmp)) for _ in range(repeats)]
            runs.sort(key=lambda r: r["wall_s"])
            mid = runs[len(runs) // 2]
            print(
                f"{service:<16}{mid['wall_s']:>24.2f}{mid['wall_s'] / floor:>9.1f}"
                f"{mid['runtime_s']:>10.2f}{max(r['peak_rss_mb'] for r in runs):>13.0f}"
                f"  {mid['status']}"
            )
    print(
        f"({os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}; Chronos off; "
        "embedded data)"
    )


if __name__ == "__main__":
    main()
