"""The backtest on a real Dask cluster: a LocalCluster of two worker processes on 127.0.0.1.

ARIMA-GARCH is switched off here only to keep these runs short (it is two thirds of a block's
time); every other member runs, and the block code is the same function wherever it runs.
MEMBER_TIMEOUT_S is wall-clock: on a starved machine a member could time out in one run and
not in the other, so it is set out of reach here.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from fxforecast import cli
from fxforecast.errors import ConfigError
from fxforecast.evaluation.backtest import BacktestSpec, fingerprint, plan, run_backtest, save_part
from fxforecast.settings import Settings

# Dask workers compute without the member cache; the local runs compared with them do too.
SETTINGS = Settings(enable_arima=False, member_timeout_s=3600.0, cache_dir=None)
ENV_FILE = "ENABLE_ARIMA=false\nMEMBER_TIMEOUT_S=3600\n"
# Two horizons, two origins each: two blocks, one per worker.
SPEC = BacktestSpec(horizons=(7, 15), start="2019-10-04", end="2019-10-11", every=1, refit_weeks=4)
OUTPUTS = ("forecasts.csv", "metrics.json")


@pytest.fixture(scope="module")
def cluster():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as local,
        Client(local) as client,
    ):
        yield local.scheduler_address, client


@pytest.fixture(scope="module")
def reference(raw, tmp_path_factory):
    """The same backtest with `--jobs 1`, in this process."""
    out = tmp_path_factory.mktemp("jobs1")
    run_backtest(raw, SETTINGS, SPEC, out, jobs=1, progress=False)
    return out


def assert_same_outputs(folder: Path, reference: Path) -> None:
    for name in OUTPUTS:
        ours, theirs = (folder / name).read_bytes(), (reference / name).read_bytes()
        if ours != theirs:
            lines = zip(ours.splitlines(), theirs.splitlines(), strict=False)
            first = next(((a, b) for a, b in lines if a != b), "lengths differ")
            raise AssertionError(f"{name} differs from --jobs 1's: {first}")


def test_the_cli_on_a_cluster_gives_byte_identical_results(
    cluster, reference, tmp_path, capsys, monkeypatch
):
    address, _ = cluster
    monkeypatch.setenv("DASK_SCHEDULER", address)
    env_file = tmp_path / "backtest.env"
    env_file.write_text(ENV_FILE)
    out = tmp_path / "out"
    code = cli.main(
        [
            "backtest",
            "--horizons",
            "7,15",
            "--start",
            SPEC.start,
            "--end",
            SPEC.end,
            "--env-file",
            str(env_file),
            "--out",
            str(out),
        ]
    )
    shown = capsys.readouterr()
    assert code == 0, shown.err
    assert_same_outputs(out, reference)
    assert "backtest: 100%" in shown.err and "4/4" in shown.err  # the progress bar
    assert "ensemble" in shown.out and f"results: {out}/metrics.md" in shown.out
    assert not (out / ".parts").exists()


def test_a_worker_killed_mid_block_is_retried_and_nothing_is_lost(
    cluster, raw, reference, tmp_path
):
    address, client = cluster
    killed = {}

    def kill_a_busy_worker():
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            if busy:
                time.sleep(0.5)  # well inside the block, which takes seconds
                killed["tasks"] = client.processing()[busy[0]]
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed["pid"] = pids[busy[0]]
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    run_backtest(raw, SETTINGS, SPEC, tmp_path, progress=False, scheduler=address)
    killer.join()

    assert killed["tasks"], "the worker was killed while running a block"
    assert killed["pid"] not in client.run(os.getpid).values()
    assert_same_outputs(tmp_path, reference)


def test_blocks_saved_by_an_interrupted_cluster_run_are_reused(cluster, raw, reference, tmp_path):
    """Parts are written by the client, so a rerun finds them without a shared folder."""
    address, _ = cluster
    blocks = plan(raw, SPEC)
    parts = tmp_path / ".parts"
    parts.mkdir()
    (parts / "fingerprint").write_text(fingerprint(raw, SETTINGS, SPEC))
    days, origins = blocks[0]
    saved = pd.read_csv(reference / "forecasts.csv").drop(columns="actual")
    saved = saved[saved["horizon_days"] == days]
    saved.loc[saved["model"] == "ensemble", "q0.5"] = 12345.0  # marks the reused block
    save_part(parts, days, origins, saved)

    run_backtest(raw, SETTINGS, SPEC, tmp_path, progress=False, scheduler=address)

    result = pd.read_csv(tmp_path / "forecasts.csv")
    original = pd.read_csv(reference / "forecasts.csv")
    ensemble = result["model"] == "ensemble"
    assert (result.loc[ensemble & (result["horizon_days"] == days), "q0.5"] == 12345.0).all()
    other = result["horizon_days"] != days
    assert result[other].equals(original[other])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "fxforecast", "backtest", "--horizons", "7"]
        + ["--start", SPEC.start, "--end", SPEC.end, "--out", str(out), "--scheduler", address],
        env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach a Dask scheduler at {address} (OSError: ")
    assert line.endswith("start one with `dask scheduler` or correct --scheduler / DASK_SCHEDULER")
    assert not out.exists()


def test_a_worker_running_other_fxforecast_code_is_refused(raw, tmp_path):
    """A worker whose import of fxforecast is another copy (version bumped) fails the check."""
    other = tmp_path / "other"
    package = Path(cli.__file__).parent
    shutil.copytree(package, other / "fxforecast", ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "fxforecast" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "0.0.0-'))
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0") as local:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", local.scheduler_address]
            + ["--nthreads", "1", "--no-nanny"],
            env={**os.environ, "PYTHONPATH": str(other)},
            stderr=subprocess.DEVNULL,
        )
        try:
            with pytest.raises(ConfigError) as refused:
                run_backtest(
                    raw,
                    SETTINGS,
                    SPEC,
                    tmp_path / "out",
                    progress=False,
                    scheduler=local.scheduler_address,
                )
        finally:
            worker.terminate()
            worker.wait()
    message = str(refused.value)
    assert "runs fxforecast 0.0.0-" in message and "but this client runs " in message
    assert message.endswith(
        "run `make install` from the same checkout on the client and every worker"
    )
    assert not (tmp_path / "out").exists()
