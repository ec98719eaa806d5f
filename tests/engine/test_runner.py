"""Where members run (issue 14, case 8): in a service run a member that times out is killed and
stops using the CPU, so the members after it keep their time; a backtest keeps members in
threads so its fit cache fills. Issue 11: with a member that stays in the run's process
(Chronos), the others run in one group process beside it, with the same results."""

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest
from fxforecast.cli import main
from fxforecast.engine import ensemble, runner
from fxforecast.engine.members.base import Member
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.engine.runner import FitCache
from fxforecast.errors import FxError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean
from fxforecast.settings import KEYS


@dataclass(frozen=True)
class Spins(Member):
    """Busy forever, as an ARIMA order search on pathological data would be."""

    name = "spins"

    def fit(self, frame):
        while True:
            pass


@dataclass(frozen=True)
class WhereAmI(Member):
    """Fails with the id of the process it was fitted in."""

    name = "where_am_i"

    def fit(self, frame):
        raise RuntimeError(str(os.getpid()))


@pytest.fixture(scope="module")
def data(raw):
    return clean(raw, "2023-06-30")


def test_a_timed_out_member_stops_using_the_cpu(data):
    me = psutil.Process()
    threads_before = set(threading.enumerate())
    children_before = {child.pid for child in me.children(recursive=True)}
    members = [(Spins(), True), (RandomWalk(), True)]
    result = ensemble.forecast(data, horizon_params(7), members, timeout_s=1, stoppable=True)
    assert result.members["spins"].reason == "timed out after 1 s"
    assert result.members["random_walk"].status == "ok"  # the member after it did not suffer
    # Nothing of the abandoned member still runs: no thread left behind in this process (where
    # a thread-run member would keep spinning), no child process left alive.
    assert set(threading.enumerate()) <= threads_before
    left = [
        child
        for child in me.children(recursive=True)
        if child.pid not in children_before and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert not left


def test_the_switch_runs_members_in_a_child_process_or_in_threads_with_the_cache(data, monkeypatch):
    params = horizon_params(7)
    members = [(RandomWalk(), True), (WhereAmI(), True)]
    in_child = ensemble.forecast(data, params, members, 60, stoppable=True)
    cache = FitCache()
    in_threads = ensemble.forecast(data, params, members, 60, cache=cache)
    assert in_child.members["where_am_i"].reason.startswith("RuntimeError: ")
    assert in_child.members["where_am_i"].reason != f"RuntimeError: {os.getpid()}"
    assert in_threads.members["where_am_i"].reason == f"RuntimeError: {os.getpid()}"
    # What a backtest's next origins reuse: the same forecast again computes no path and no fit.
    fit = RandomWalk.fit
    monkeypatch.setattr(RandomWalk, "fit", lambda *_: pytest.fail("fitted again"))
    again = ensemble.forecast(data, params, members, 60, cache=cache)
    monkeypatch.setattr(RandomWalk, "fit", fit)
    np.testing.assert_array_equal(again.quantiles, in_threads.quantiles)
    np.testing.assert_array_equal(in_child.quantiles, in_threads.quantiles)


def test_every_member_failing_is_a_one_line_error(data):
    with pytest.raises(FxError, match=r"^every member failed \(spins: timed out after 1 s\); "):
        ensemble.forecast(data, horizon_params(7), [(Spins(), True)], 1, stoppable=True)


@dataclass(frozen=True)
class Naps(RandomWalk):
    """The random walk, whose first fit in a process naps a second and notes when, in a file
    named after `name` in `folder`."""

    name = "naps"
    folder: str = ""
    napped = []  # per process: a forked child starts with its parent's (empty) list

    def fit(self, frame):
        if not Naps.napped:
            started = time.time()
            time.sleep(1)
            Naps.napped.append((started, time.time()))
            Path(self.folder, self.name).write_text(json.dumps(Naps.napped[0]))
        return super().fit(frame)


@dataclass(frozen=True)
class NapsToo(Naps):
    name = "naps_too"


def test_fitting_members_run_side_by_side_one_per_core_to_the_same_result(
    data, tmp_path, monkeypatch
):
    """Chronos off (no resident member): two members nap at the same time on two cores; on one
    core they run one after another, and either way the forecast is the same to the last digit."""
    folder = str(tmp_path)
    members = [(RandomWalk(), True), (Naps(folder=folder), True), (NapsToo(folder=folder), True)]
    params = horizon_params(7)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    side_by_side = ensemble.forecast(data, params, members, 60, stoppable=True)
    (a_start, a_end), (b_start, b_end) = [
        json.loads((tmp_path / name).read_text()) for name in ("naps", "naps_too")
    ]
    assert a_start < b_end and b_start < a_end  # the naps overlapped
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    one_core = ensemble.forecast(data, params, members, 60, stoppable=True)
    (a_start, a_end), (b_start, b_end) = [
        json.loads((tmp_path / name).read_text()) for name in ("naps", "naps_too")
    ]
    assert a_end <= b_start  # one after another
    assert side_by_side.quantiles.tobytes() == one_core.quantiles.tobytes()
    assert [m.status for m in side_by_side.members.values()] == ["ok"] * 3


@dataclass(frozen=True)
class Resident(RandomWalk):
    """A random walk that stays in the run's process, as Chronos does; it notes the run's
    child processes alive while it fits."""

    name = "resident"
    own_process = False
    seen_children = []

    def fit(self, frame):
        Resident.seen_children.append([child.pid for child in psutil.Process().children()])
        return super().fit(frame)


@dataclass(frozen=True)
class Lineage(Member):
    """Fails with the ids of its process and of that process's parent."""

    name = "lineage"

    def fit(self, frame):
        raise RuntimeError(f"{os.getpid()} {os.getppid()}")


@dataclass(frozen=True)
class KillsItsGroup(Member):
    """Kills the process that started it (as the out-of-memory killer might), then ends or, with
    a pid_file, notes its process id there and goes on working; only where that process is a
    group process, never the test's own or its parent."""

    name = "kills_its_group"
    test_pid: int
    pid_file: str | None = None

    def fit(self, frame):
        if self.test_pid in (os.getpid(), os.getppid()):
            raise RuntimeError("not in a group process")
        os.kill(os.getppid(), signal.SIGKILL)
        if self.pid_file is None:
            os._exit(1)
        Path(self.pid_file).write_text(str(os.getpid()))
        time.sleep(60)


def ended(pid: int) -> bool:
    """Whether the process has stopped running (gone, or a zombie not yet reaped), within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def new_children(me, before):
    return [
        child
        for child in me.children(recursive=True)
        if child.pid not in before and child.status() != psutil.STATUS_ZOMBIE
    ]


def test_fitting_members_run_in_one_group_process_beside_a_resident_member(data):
    Resident.seen_children.clear()
    members = [(Lineage(), True), (RandomWalk(), True), (Resident(), True)]
    result = ensemble.forecast(data, horizon_params(7), members, 60, stoppable=True)
    assert list(result.members) == ["lineage", "random_walk", "resident"]
    assert result.members["random_walk"].status == result.members["resident"].status == "ok"
    # Lineage ran in a child of a child of this process: its own, in the group process.
    pid, parent = map(int, result.members["lineage"].reason.split()[1:])
    assert os.getpid() not in (pid, parent)
    # The group process was already alive while the resident member fitted here.
    assert parent in Resident.seen_children[0]


def test_a_member_timing_out_in_the_group_is_stopped_and_the_others_go_on(data):
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    members = [(Spins(), True), (RandomWalk(), True), (Resident(), True)]
    result = ensemble.forecast(data, horizon_params(7), members, timeout_s=1, stoppable=True)
    assert result.members["spins"].status == "failed"
    assert result.members["spins"].reason == "timed out after 1 s"
    assert result.members["random_walk"].status == result.members["resident"].status == "ok"
    assert not new_children(me, before)


def test_a_group_process_that_dies_fails_its_members_with_a_reason(data):
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    members = [(KillsItsGroup(os.getpid()), True), (RandomWalk(), True), (Resident(), True)]
    result = ensemble.forecast(data, horizon_params(7), members, 60, stoppable=True)
    reason = "the fitting members' process failed (its process ended with exit code -9)"
    for name in ("kills_its_group", "random_walk"):
        assert (result.members[name].status, result.members[name].reason) == ("failed", reason)
    assert result.members["resident"].status == "ok"
    assert result.members["resident"].weight == 1.0  # the run went on with what was left
    assert result.quantiles.shape == (5, 5)
    assert not new_children(me, before)


def test_a_member_whose_group_process_dies_dies_with_it(data, tmp_path, monkeypatch):
    """Killed at once with its group (PR_SET_PDEATHSIG: even a SIGKILL, which runs no cleanup,
    ends it), not left working with the group's pipe open until the budget (2 members x 1 s +
    the margin) runs out."""
    monkeypatch.setattr(runner, "_GROUP_MARGIN_S", 1.0)  # the budget's length is not the point
    pid_file = tmp_path / "member.pid"
    killer = KillsItsGroup(os.getpid(), str(pid_file))
    members = [(killer, True), (RandomWalk(), True), (Resident(), True)]
    result = ensemble.forecast(data, horizon_params(7), members, 1, stoppable=True)
    reason = "the fitting members' process failed (its process ended with exit code -9)"
    assert result.members["kills_its_group"].reason == result.members["random_walk"].reason
    assert result.members["random_walk"].reason == reason
    assert result.members["resident"].status == "ok"
    assert not pid_file.exists() or ended(int(pid_file.read_text()))


def test_a_service_run_gives_the_same_forecast_with_and_without_the_overlap(
    tmp_path, tiny_bolt, monkeypatch
):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)

    def run(folder):
        env_file = tmp_path / f"{folder}.env"
        env_file.write_text(
            f"OUTPUT_DIR={tmp_path / folder}\nLOG_DIR={tmp_path / folder}\n"
            f"METRICS_LOG_PATH={tmp_path / folder / 'metrics.jsonl'}\n"
            f"FORECAST_DB={tmp_path / folder / 'forecasts.sqlite'}\n"
            f"CACHE_DIR={tmp_path / folder / 'cache'}\n"
            f"ENABLE_CHRONOS=true\nCHRONOS_MODEL={tiny_bolt}\nCHRONOS_MIN_AVAILABLE_MB=1\n"
            "ENABLE_ARIMA=false\n"  # the slowest; VAR, the forest and the walk make a group
        )
        assert main(["run", "--horizon", "7", "--env-file", str(env_file)]) == 0
        record = json.loads((tmp_path / folder / "metrics.jsonl").read_text())
        forecast = (
            tmp_path / folder / "forecaster_7d" / "2024-11-29" / "forecast.json"
        ).read_text()
        return forecast, {n: {**m, "seconds": None} for n, m in record["members"].items()}

    overlapped = run("overlap")

    def one_after_another(members, *args):  # the loop before the overlap
        return {member.name: runner.run_member(member, *args) for member in members}

    monkeypatch.setattr(ensemble, "run_members", one_after_another)
    sequential = run("sequential")
    assert overlapped == sequential
    statuses = {name: m["status"] for name, m in overlapped[1].items()}
    assert statuses == {
        "random_walk": "ok",
        "arima_garch": "disabled",
        "var": "ok",
        "random_forest": "ok",
        "random_walk_empirical": "disabled",
        "chronos": "ok",
    }
