"""`make bench-refresh`: how long a run takes when every live source is down.

Prints numbers; asserts nothing. Each source URL points at 127.0.0.1: a port that accepts
connections and never answers (hang) or one nobody listens on (refused). Default timeouts.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .bench import run_once


def _timed(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **env}, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    with socket.socket() as hanging, socket.socket() as probe, tempfile.TemporaryDirectory() as tmp:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        down = {"hang": hanging.getsockname()[1], "refused": probe.getsockname()[1]}
        print(f"{'every source':<14}{'fetch-data s':>14}{'forecaster_7d run s':>22}")
        for kind, port in down.items():
            url = f"http://127.0.0.1:{port}"
            env = {
                "YAHOO_URL": url,
                "MINDICADOR_URL": url,
                "FRED_URL": url,
                "LOG_DIR": str(Path(tmp) / "logs"),
                "DATA_DIR": str(Path(tmp) / kind),
            }
            fetch_s = _timed([str(Path(sys.executable).with_name("fxforecast")), "fetch-data"], env)
            run = run_once("forecaster_7d", Path(tmp), {**env, "DATA_REFRESH": "true"})
            print(
                f"{kind:<14}{fetch_s:>14.1f}{run['wall_s']:>22.1f}  "
                f"data_source={run['data']['data_source']}"
            )


if __name__ == "__main__":
    main()
