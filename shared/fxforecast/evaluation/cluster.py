"""Where the backtest's blocks run: in this process, in forked copies of it, or on a Dask
cluster through joblib's Dask backend.

The client loads the data and sends it to every worker once; each block's result comes back
to the client, which writes the part (so resuming needs no folder shared with the workers).
Before anything runs, every worker must compute with the same code and numeric libraries as
the client, or the results would not be the same as a local run.
"""

import asyncio
import hashlib
import logging
import multiprocessing
import os
import platform
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from joblib import Parallel, parallel_config

from .. import __version__
from ..engine.member_cache import NUMERIC_LIBRARIES
from ..engine.runner import die_with
from ..errors import ConfigError, FxError

# Libraries whose versions can change a digit of forecasts.csv (NUMERIC_LIBRARIES); Chronos' only
# when it is on.
CHRONOS_LIBRARIES = ("torch", "transformers", "chronos-forecasting")
WORKER_WAIT_S = 60
INSTALL_HINT = "run `make install` from the same checkout on the client and every worker"


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def build(chronos: bool) -> dict[str, str]:
    """What decides this process's numbers: fxforecast's version and code, Python, libraries."""
    package = Path(__file__).resolve().parents[1]
    code = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        code.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    found = {
        "fxforecast": f"{__version__} (code {code.hexdigest()[:12]})",
        "python": platform.python_version(),
    }
    for name in NUMERIC_LIBRARIES + (CHRONOS_LIBRARIES if chronos else ()):
        found[name] = _installed(name)
    return found


def check_workers(client, chronos: bool) -> None:
    """A one-line error naming the first worker that would compute differently."""
    expected = build(chronos)
    found = client.run(build, chronos, on_error="return")
    for worker, theirs in sorted(found.items()):
        if isinstance(theirs, BaseException):
            raise ConfigError(
                f"Dask worker {worker} cannot run fxforecast "
                f"({type(theirs).__name__}: {theirs}); {INSTALL_HINT}"
            )
        for name, mine in expected.items():
            if theirs.get(name) != mine:
                raise ConfigError(
                    f"Dask worker {worker} runs {name} {theirs.get(name)} but this client "
                    f"runs {mine}; {INSTALL_HINT}"
                )


@contextmanager
def block_runner(jobs: int, scheduler: str | None, chronos: bool, data):
    """A callable that runs joblib `delayed` tasks over `jobs` local processes, or over the Dask
    cluster at `scheduler`; either way results come back to the caller in completion order.
    `data`: the argument every task shares."""
    if scheduler is None:
        yield partial(run_local, jobs)
        return
    with dask_parallel(scheduler, chronos, data) as parallel:
        yield parallel


def run_local(jobs: int, tasks):
    """Each task's result, in this process (one job) or in `jobs` forked copies of it, which
    start with every module this one imported (a spawned worker spent about 3 s importing them
    again, a tenth of a backtest run again from the member cache). A worker dies with this
    process; after a failure the tasks not started are cancelled."""
    if jobs == 1:
        for function, args, kwargs in tasks:
            yield function(*args, **kwargs)
        return
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("fork"),
        initializer=die_with,
        initargs=(os.getpid(),),
    )
    try:
        futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(cancel_futures=True)


def _reach(address: str) -> None:
    """Connect once and shake hands, so a wrong address is one clear line (a Client that
    fails in its constructor would also hang at exit, closing itself)."""
    from distributed.comm import connect

    async def handshake():
        await (await connect(address)).close()

    try:
        asyncio.run(handshake())
    except Exception as exc:  # refused, timed out, malformed, or not a Dask scheduler
        raise ConfigError(
            f"cannot reach a Dask scheduler at {address} ({type(exc).__name__}: {exc}); "
            "start one with `dask scheduler` or correct --scheduler / DASK_SCHEDULER"
        ) from None


@contextmanager
def dask_parallel(address: str, chronos: bool, data):
    """joblib's Parallel on the Dask cluster at `address`, once every worker passed the check."""
    from distributed import CancelledError, Client, KilledWorker

    _reach(address)
    # Its reconnection tracebacks would bury the one-line error raised below when the
    # scheduler goes away.
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    client = Client(address, set_as_default=False)
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise ConfigError(
                f"no Dask worker joined the scheduler at {address} within {WORKER_WAIT_S} s; "
                f"start workers with `dask worker {address}`"
            ) from None
        check_workers(client, chronos)
        try:
            # Sent to every worker up front: a dying worker cannot take the only copy with it.
            with parallel_config(backend="dask", client=client, scatter=[data]):
                yield Parallel(n_jobs=-1, return_as="generator_unordered")
        except KilledWorker as exc:
            raise FxError(
                f"Dask gave up on a block after its workers died repeatedly ({exc}); "
                "check the workers' memory and logs, then rerun to resume from the saved blocks"
            ) from None
        except CancelledError:
            raise FxError(
                f"lost the Dask scheduler at {address} during the backtest; "
                "rerun to resume from the saved blocks"
            ) from None
