"""Running members: each fits, forecasts the validation origins and the as-of date with a
timeout; fits and paths are kept in a FitCache (in memory, over the member cache on disk);
any failure becomes a reason.

Where a member runs is the caller's one switch, `stoppable`. A service run sets it: a member that
fits models then runs in a forked child process that is killed at the timeout, so an abandoned
member stops using the CPU and the members after it get the machine to themselves (a thread
cannot be stopped: an abandoned ARIMA search kept a core busy and the next members timed out
too). The child writes what it computed to the member cache on disk itself (its own
connection, opened after the fork) and sends its paths and cache counts back through the pipe;
its in-memory fits die with it, which a single run does not miss. A backtest leaves it off:
members run in daemon threads of its process, so the FitCache keeps their fits in memory for the
next origins. A member whose state must stay in the run's process (Chronos: its loaded model and
figures) always runs in a thread.

A service run uses the machine's second core too. With both kinds (Chronos on), the members that
fit models run one after another in one forked "group" process, each still in its own child
killed at its timeout, while the resident members run in the run's process at the same time.
With only members that fit models (Chronos off, the default), their children run side by side,
one per core, the next starting as one ends (run_members). Each computes alone on one thread, so
where it runs changes no digit.
"""

import ctypes
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Literal

import numpy as np
import pandas as pd

from ..horizons import refit_anchor
from .member_cache import Counts, MemberCache, RowDigests, Session, entry_key, member_identity
from .members.base import Fitted, InvalidForecast, Member
from .validation import Validation

MemberStatus = Literal["ok", "failed", "disabled"]
_FORK = multiprocessing.get_context("fork")
# The group process's time beyond its members' timeouts: forks and results sent back.
_GROUP_MARGIN_S = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class MemberOutcome:
    name: str
    status: MemberStatus
    reason: str | None = None
    weight: float = 0.0
    seconds: float = 0.0
    forecast: np.ndarray | None = None  # (steps, LEVELS) at the as-of date
    validation: list[np.ndarray] = field(default_factory=list)
    cached: Counts = field(default_factory=Counts)  # what the member cache held for it
    # One digest of the member cache's keys of its validation paths (None: not storable):
    # what a combination of them depends on, besides the combiner and the actuals.
    paths_key: str | None = None
    scored_on: Validation | None = field(default=None, repr=False)

    @cached_property
    def score(self) -> float | None:
        """Mean pinball loss over the validation origins, computed when first asked (a service
        run's metrics line asks; a backtest never does: 400 losses per member and origin)."""
        return None if self.scored_on is None else self.scored_on.score(self.validation)

    def summary(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "score": None if self.score is None else round(self.score, 4),
            "weight": round(self.weight, 4),
            "seconds": round(self.seconds, 3),
        }


class FitCache:
    """Fits and forecast paths for one run or one backtest block, in memory, over the member
    cache on disk when there is one (engine.member_cache): a backtest's consecutive origins
    share most of them, and so do consecutive weeks' runs. Entries are found by the member
    cache's keys, so a path is reused only where the rows it read are the same."""

    def __init__(self, store: MemberCache | None = None):
        self.store = store
        self.fits: dict[str, Fitted] = {}  # by the member cache's key
        self.paths: dict[str, np.ndarray] = {}
        self.path_keys: dict[tuple, str] = {}  # the member cache's key of each path, once
        self.losses: dict = {}  # each validation set's known_losses (Validation)
        self._digests: RowDigests | None = None

    def digests(self, frame: pd.DataFrame) -> RowDigests:
        """The frame's row digests, computed once per frame (a backtest origin's, a run's); the
        previous frame's kept where its rows lead this one."""
        if self._digests is None or self._digests.frame is not frame:
            self._digests = RowDigests(frame, self._digests)
        return self._digests


class _MemberEntries:
    """One member's paths and fits during one run: the FitCache's memory first, then the disk
    (unless the member is not storable), else computed by the caller and kept in both. Paths go
    by position in the caller's list of (anchor, origin, steps): a backtest origin asks for
    about 400 per member, and hashing their dates again at each step cost more than the rest."""

    def __init__(self, cache: FitCache, member: Member, frame: pd.DataFrame):
        self.cache = cache
        self.member = member
        self.frame = frame
        self.identity = member_identity(member)
        self.session = Session(cache.store if member.storable else None)
        self.keys: list[str] = []  # the last paths() call's, for the outcome's paths_key

    def _key(self, kind, anchor, origin, steps, digest) -> str:
        return entry_key(self.identity, kind, anchor, origin, steps, digest)

    def _path_keys(self, items: list[tuple]) -> list[str]:
        """Each (anchor, origin, steps)'s key, the data part from the rows up to the origin."""
        digests = self.cache.digests(self.frame).of([origin for _, origin, _ in items])
        known, identity, zero_shot = self.cache.path_keys, self.identity, self.member.zero_shot
        keys = []
        for (anchor, origin, steps), digest in zip(items, digests, strict=True):
            # A zero-shot member learns nothing from its fit: its path depends on the origin only.
            anchor = None if zero_shot else anchor
            # Dates as nanoseconds: hashing a Timestamp costs ten times an int's.
            anchor_ns = None if anchor is None else anchor.value
            parts = (identity, anchor_ns, origin.value, steps, digest)
            key = known.get(parts)
            if key is None:  # a backtest's next origin asks again for nearly every one
                key = known[parts] = self._key("path", anchor, origin, steps, digest)
            keys.append(key)
        return keys

    def paths(self, wanted: list[tuple]) -> list[np.ndarray | None]:
        """The (anchor, origin, steps) paths kept so far, in memory or on disk (None: not
        kept), in the order asked."""
        self.keys = keys = self._path_keys(wanted)
        memory = self.cache.paths
        absent = {key: "path" for key in keys if key not in memory}
        memory.update(self.session.get(absent))
        return [memory.get(key) for key in keys]

    def keep(self, items: list[tuple], computed: list[np.ndarray]) -> None:
        """Newly computed paths, into memory and (one transaction) onto the disk."""
        keyed = dict(zip(self._path_keys(items), computed, strict=True))
        self.cache.paths.update(keyed)
        self.session.put(self.member.name, dict.fromkeys(keyed, "path"), keyed)

    def fitted(self, anchor: pd.Timestamp, store: bool) -> Fitted:
        """The fit at `anchor` (on rows up to it); a new one goes to disk when `store`."""
        (digest,) = self.cache.digests(self.frame).of([anchor])
        key = self._key("fit", anchor, None, None, digest)
        memory = self.cache.fits
        if key not in memory:
            memory.update(self.session.get({key: "fit"}))
        if key not in memory:
            memory[key] = self.member.fit(self.frame.loc[:anchor])
            if store:
                self.session.put(self.member.name, {key: "fit"}, {key: memory[key]})
        return memory[key]


def _member_forecasts(
    member, frame, validation, as_of, n_steps, refit_weeks, final_refit_weeks, cache
):
    """Validation forecasts, the final forecast, and what the member cache held. Paths kept
    before are reused; the others are computed grouped by refit anchor."""
    if member.zero_shot:  # its one fit serves every origin, so all of them go in one call
        anchors, final_anchor = [as_of] * len(validation.origins), as_of
    else:
        anchors = validation.refit_anchors(refit_weeks)
        final_anchor = refit_anchor(as_of, final_refit_weeks)
    wanted = list(zip(anchors, validation.origins, validation.steps, strict=True))
    wanted.append((final_anchor, as_of, n_steps))
    # Next week's run will ask for the newest validation anchor's fit again (unless the grid
    # moves); older anchors' paths are all kept, so their fits are not needed again.
    newest = wanted[-2][0]
    entries = _MemberEntries(cache, member, frame)
    try:
        paths = entries.paths(wanted)
        by_anchor: dict[pd.Timestamp, list[int]] = {}
        for at, path in enumerate(paths[:-1]):
            if path is None:
                by_anchor.setdefault(wanted[at][0], []).append(at)
        calls = list(by_anchor.items())
        if paths[-1] is None:  # in a call of its own, as a zero-shot member's batch matters
            calls.append((final_anchor, [len(wanted) - 1]))
        for anchor, todo in calls:
            items = [wanted[at] for at in todo]
            computed = entries.fitted(anchor, store=anchor == newest).forecast(
                frame, [origin for _, origin, _ in items], [steps for _, _, steps in items]
            )
            for at, path in zip(todo, computed, strict=True):
                paths[at] = path
            entries.keep(items, computed)
    finally:
        entries.session.close()
    paths_key = (
        hashlib.sha256("".join(entries.keys[:-1]).encode()).hexdigest() if member.storable else None
    )
    return paths[:-1], paths[-1], entries.session.counts, paths_key


def run_member(
    member: Member,
    frame: pd.DataFrame,
    validation: Validation,
    as_of: pd.Timestamp,
    n_steps: int,
    timeout_s: float,
    refit_weeks: int,
    final_refit_weeks: int,
    cache: FitCache,
    stoppable: bool = False,
) -> MemberOutcome:
    """Fit, validate and forecast one member, in a child process when `stoppable` (and the
    member allows it), else in a worker thread; failures become reasons."""

    def work():
        return _member_forecasts(
            member, frame, validation, as_of, n_steps, refit_weeks, final_refit_weeks, cache
        )

    started = time.perf_counter()
    run = _in_process if stoppable and member.own_process else _in_thread
    state, value = run(work, timeout_s)
    return _outcome(member, validation, timeout_s, state, value, time.perf_counter() - started)


def _outcome(member, validation, timeout_s, state, value, seconds) -> MemberOutcome:
    if state == "timed out":
        return MemberOutcome(
            member.name, "failed", f"timed out after {timeout_s:g} s", seconds=seconds
        )
    if state == "failed":
        return MemberOutcome(member.name, "failed", value, seconds=seconds)
    validation_paths, final, cached, paths_key = value
    return MemberOutcome(
        member.name,
        "ok",
        seconds=seconds,
        forecast=final,
        validation=validation_paths,
        cached=cached,
        scored_on=validation,
        paths_key=paths_key,
    )


def run_members(
    members: list[Member],
    frame: pd.DataFrame,
    validation: Validation,
    as_of: pd.Timestamp,
    n_steps: int,
    timeout_s: float,
    refit_weeks: int,
    final_refit_weeks: int,
    cache: FitCache,
    stoppable: bool = False,
) -> dict[str, MemberOutcome]:
    """Every member's outcome, by name in the members' order. One after another, except in a
    service run (`stoppable`): members that fit in child processes run side by side, one per
    core; where some stay in this process, the others run in one group process beside them."""

    def run(member):
        return run_member(
            member,
            frame,
            validation,
            as_of,
            n_steps,
            timeout_s,
            refit_weeks,
            final_refit_weeks,
            cache,
            stoppable,
        )

    grouped = [member for member in members if stoppable and member.own_process]
    resident = [member for member in members if not (stoppable and member.own_process)]
    lanes = len(os.sched_getaffinity(0))
    if len(grouped) > 1 and not resident and lanes > 1:
        work = {
            member.name: partial(
                _member_forecasts,
                member,
                frame,
                validation,
                as_of,
                n_steps,
                refit_weeks,
                final_refit_weeks,
                cache,
            )
            for member in members
        }
        ran = _side_by_side(work, timeout_s, lanes)
        return {
            member.name: _outcome(member, validation, timeout_s, *ran[member.name])
            for member in members
        }
    if not grouped or not resident:
        return {member.name: run(member) for member in members}
    budget = timeout_s * len(grouped) + _GROUP_MARGIN_S
    started = time.perf_counter()

    def in_group():
        os.setpgid(0, 0)  # its own process group, which its members' processes join
        return [run(member) for member in grouped]

    # Forked before any resident member starts: a fork while a Chronos thread holds a BLAS lock
    # would leave that lock held forever in the group, whose members could then deadlock.
    group = _Child(in_group, daemon=False)
    try:
        ran = {member.name: run(member) for member in resident}
        state, value = group.result(budget - (time.perf_counter() - started))
    finally:
        # Its members' processes too: a group that was killed (e.g. out of memory) no longer
        # stops them, and one still working holds the pipe open until the budget runs out.
        with suppress(ProcessLookupError):
            os.killpg(group.pid, signal.SIGKILL)
        group.stop()
    if state != "ok":
        reason = f"timed out after {budget:g} s" if state == "timed out" else f"failed ({value})"
        seconds = time.perf_counter() - started
        value = [
            MemberOutcome(
                member.name, "failed", f"the fitting members' process {reason}", seconds=seconds
            )
            for member in grouped
        ]
    ran.update(zip([member.name for member in grouped], value, strict=True))
    return {member.name: ran[member.name] for member in members}


def _side_by_side(work: dict, timeout_s: float, lanes: int) -> dict[str, tuple]:
    """Each named work in its own child process, as many at once as there are `lanes` (cores),
    in order as lanes free up; each killed at its timeout. (state, value, seconds) by name."""
    waiting = list(work)
    running: dict[str, tuple[_Child, float]] = {}
    done = {}
    try:
        while waiting or running:
            while waiting and len(running) < lanes:
                name = waiting.pop(0)
                running[name] = (_Child(work[name], daemon=True), time.perf_counter())
            first_deadline = min(started + timeout_s for _, started in running.values())
            multiprocessing.connection.wait(
                [child.receiver for child, _ in running.values()],
                max(first_deadline - time.perf_counter(), 0),
            )
            for name, (child, started) in list(running.items()):
                elapsed = time.perf_counter() - started
                if child.receiver.poll() or elapsed >= timeout_s:
                    done[name] = (*child.result(0), elapsed)
                    child.stop()
                    del running[name]
    finally:
        for child, _ in running.values():
            child.stop()
    return done


def _in_thread(work, timeout_s):
    """("ok", value), ("failed", reason) or ("timed out", None) from a daemon thread: a member
    that hangs is abandoned, and cannot keep the process alive."""
    box = {}

    def run():
        try:
            box["outcome"] = ("ok", work())
        except Exception as exc:  # one member's failure must never stop the run
            box["outcome"] = ("failed", _reason(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return box.get("outcome", ("timed out", None))


def _in_process(work, timeout_s):
    """The same from a forked child process, killed at the timeout."""
    child = _Child(work, daemon=True)
    try:
        return child.result(timeout_s)
    finally:
        child.stop()


class _Child:
    """`work` in a forked child process; its outcome comes back pickled through a pipe. Only a
    non-daemonic child may start children of its own (the group's members)."""

    def __init__(self, work, daemon: bool):
        self.receiver, send = _FORK.Pipe(duplex=False)
        parent = os.getpid()
        # Signals wait until the fork is done: Python runs its at-fork callbacks (logging's lock
        # release) inside the fork, and an exception a stop signal's handler raises there is
        # swallowed, so the run would go on as if the signal never came.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())

        def child():
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            die_with(parent)
            try:
                outcome = ("ok", work())
            except BaseException as exc:  # reported, never raised in the child
                outcome = ("failed", _reason(exc))
            try:
                send.send(outcome)
            except Exception as exc:  # a result that cannot be pickled
                send.send(("failed", f"result not sent back: {_reason(exc)}"))

        self._process = _FORK.Process(target=child, daemon=daemon)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.pid = self._process.pid
        send.close()

    def result(self, timeout_s: float):
        """("ok", value), ("failed", reason) or ("timed out", None) within `timeout_s`."""
        if not self.receiver.poll(max(timeout_s, 0)):
            return "timed out", None
        try:
            return self.receiver.recv()
        except EOFError:  # killed (e.g. out of memory) before it answered
            self._process.join()
            return "failed", f"its process ended with exit code {self._process.exitcode}"

    def stop(self) -> None:
        """Kill the child if it still runs, and reap it."""
        self.receiver.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def die_with(parent: int) -> None:
    """The forked process gets SIGKILL when the one that forked it ends, even by SIGKILL (which
    runs no `finally`): no member process (or backtest worker) outlives its run."""
    with suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def _reason(exc: BaseException) -> str:
    """One line: the exception's type and first line (a broken contract needs no type)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, InvalidForecast):
        return first
    return f"{type(exc).__name__}: {first}".rstrip(": ")
