"""`make bench-history`: `fxforecast status` and `fxforecast report` on a metrics file of 1,000
lines and on one of 100,000, each in a fresh process, side by side: wall and CPU seconds and
the process's peak memory (maximum RSS), and the page's size. Prints numbers; asserts nothing.

Both files hold the same kinds of runs: bench_report's five years of weekly runs of the four
services, taken in turn and spaced evenly over the same five years (1,000 lines: about weekly
per service; 100,000: every two hours or so). The forecast store and the fan charts are the
same for both."""

import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from fxforecast.marketdata.schema import default_data_dir

from benchmarks.bench_report import write_history

SIZES = (1_000, 100_000)
REPEATS = 3


def metrics_file(runs: list[dict], count: int, path: Path) -> None:
    """`count` lines: the runs in turn, evenly spaced over the span of their timestamps."""
    first, last = (datetime.fromisoformat(runs[i]["timestamp"]) for i in (0, -1))
    step = (last - first) / (count - 1)
    with open(path, "w") as handle:
        for i in range(count):
            record = {**runs[i % len(runs)], "timestamp": (first + i * step).isoformat()}
            handle.write(json.dumps(record) + "\n")


# Runs the command and reports its own figures. Through this small launcher, not from the
# benchmark itself: Linux counts the pages of the process a child was forked from in the
# child's peak RSS, and the benchmark holds the history's hundreds of MB.
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
print(json.dumps([code, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024]))
"""


def measure(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one run of `command`."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True
    )
    code, wall, cpu, peak = json.loads(done.stdout)
    if code not in (0, 1, 2):  # status exits 0-2 by the services' health
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return wall, cpu, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_history(folder)
        runs = []
        for line in (folder / "metrics.jsonl").read_text().splitlines():
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError:  # the history's two corrupt lines
                continue
        runs.sort(key=lambda r: r["timestamp"])
        fxforecast = [sys.executable, "-m", "fxforecast"]
        commands, pages = {}, {}
        for count in SIZES:
            metrics = folder / f"metrics-{count}.jsonl"
            metrics_file(runs, count, metrics)
            pages[count] = folder / f"report-{count}" / "index.html"
            commands[("status", count)] = [*fxforecast, "status", "--metrics", str(metrics)]
            commands[("report", count)] = [
                *fxforecast,
                "report",
                "--metrics",
                str(metrics),
                "--db",
                str(folder / "forecasts.sqlite"),
                "--output-dir",
                str(folder / "output"),
                "--data-dir",
                str(default_data_dir()),
                "--out",
                str(pages[count]),
            ]
        # Side by side: the commands take turns, so each sees the same machine load.
        samples = {key: [] for key in commands}
        for _ in range(REPEATS):
            for key, command in commands.items():
                samples[key].append(measure(command))
        sizes = {count: pages[count].stat().st_size / 2**20 for count in SIZES}
        megabytes = {
            count: (folder / f"metrics-{count}.jsonl").stat().st_size / 2**20 for count in SIZES
        }
    print(f"medians of {REPEATS} runs, each in a fresh process, the commands taking turns")
    print(", ".join(f"{count:,} lines = {megabytes[count]:.1f} MB" for count in SIZES))
    print(f"{'command':<10}{'lines':>9}{'wall s':>9}{'CPU s':>8}{'peak MB':>9}  vs 1,000 lines")
    for command in ("status", "report"):
        base = [statistics.median(s) for s in zip(*samples[(command, SIZES[0])], strict=True)]
        for count in SIZES:
            wall, cpu, peak = (
                statistics.median(s) for s in zip(*samples[(command, count)], strict=True)
            )
            ratios = (
                f"wall {wall / base[0]:.2f}x, CPU {cpu / base[1]:.2f}x, peak {peak / base[2]:.2f}x"
            )
            print(f"{command:<10}{count:>9,}{wall:>9.2f}{cpu:>8.2f}{peak:>9.0f}  {ratios}")
    print(", ".join(f"page from {count:,} lines: {sizes[count]:.2f} MB" for count in SIZES))


if __name__ == "__main__":
    main()
