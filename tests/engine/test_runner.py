"""Where members run (issue 14, case 8): in a service run a member that times out is killed and
stops using the CPU, so the members after it keep their time; a backtest keeps members in
threads so its fit cache fills."""

import os
import threading
from dataclasses import dataclass

import numpy as np
import psutil
import pytest
from fxforecast.engine import ensemble
from fxforecast.engine.members.base import Member
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.engine.runner import FitCache
from fxforecast.engine.validation import validation_set
from fxforecast.errors import FxError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean


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


def test_the_switch_runs_members_in_a_child_process_or_in_threads_with_the_cache(data):
    params = horizon_params(7)
    members = [(RandomWalk(), True), (WhereAmI(), True)]
    in_child = ensemble.forecast(data, params, members, 60, stoppable=True)
    cache = FitCache()
    in_threads = ensemble.forecast(data, params, members, 60, cache=cache)
    assert in_child.members["where_am_i"].reason.startswith("RuntimeError: ")
    assert in_child.members["where_am_i"].reason != f"RuntimeError: {os.getpid()}"
    assert in_threads.members["where_am_i"].reason == f"RuntimeError: {os.getpid()}"
    origin = validation_set(data, params).origins[-1]
    assert cache.has_path(RandomWalk(), 7, origin)  # what a backtest's next origins reuse
    np.testing.assert_array_equal(in_child.quantiles, in_threads.quantiles)


def test_every_member_failing_is_a_one_line_error(data):
    with pytest.raises(FxError, match=r"^every member failed \(spins: timed out after 1 s\); "):
        ensemble.forecast(data, horizon_params(7), [(Spins(), True)], 1, stoppable=True)
