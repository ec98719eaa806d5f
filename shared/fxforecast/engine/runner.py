"""Running members: each fits, forecasts the validation origins and the as-of date in a worker
thread with a timeout; fits and paths are kept in a FitCache; any failure becomes a reason."""

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..horizons import refit_anchor
from .members.base import Fitted, InvalidForecast, Member
from .validation import Validation

MemberStatus = Literal["ok", "failed", "disabled"]


@dataclass
class MemberOutcome:
    name: str
    status: MemberStatus
    reason: str | None = None
    score: float | None = None
    weight: float = 0.0
    seconds: float = 0.0
    forecast: np.ndarray | None = None  # (steps, LEVELS) at the as-of date
    validation: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "score": None if self.score is None else round(self.score, 4),
            "weight": round(self.weight, 4),
            "seconds": round(self.seconds, 3),
        }


class FitCache:
    """Fits by (member, horizon, refit anchor) and validation paths by (member, horizon,
    origin): a backtest's consecutive origins share most of them, so each is computed once."""

    def __init__(self):
        self._fits: dict[tuple, Fitted] = {}
        self._paths: dict[tuple, np.ndarray] = {}

    def fitted(self, member: Member, days: int, anchor: pd.Timestamp, frame) -> Fitted:
        key = (member.name, days, anchor)
        if key not in self._fits:
            self._fits[key] = member.fit(frame.loc[:anchor])
        return self._fits[key]

    def has_path(self, member: Member, days: int, origin: pd.Timestamp) -> bool:
        return (member.name, days, origin) in self._paths

    def path(self, member: Member, days: int, origin: pd.Timestamp) -> np.ndarray:
        return self._paths[(member.name, days, origin)]

    def keep_path(self, member: Member, days: int, origin: pd.Timestamp, path) -> None:
        self._paths[(member.name, days, origin)] = path


def _member_forecasts(
    member, frame, validation, as_of, n_steps, refit_weeks, final_refit_weeks, cache
):
    """Validation forecasts, grouped by refit anchor, then the final forecast."""
    days = validation.days

    def anchor_of(origin, weeks):
        # A zero-shot member's one fit serves every origin, so all of them go in one call.
        return as_of if member.zero_shot else refit_anchor(origin, weeks)

    by_anchor: dict[pd.Timestamp, list[int]] = {}
    for i, origin in enumerate(validation.origins):
        if not cache.has_path(member, days, origin):
            by_anchor.setdefault(anchor_of(origin, refit_weeks), []).append(i)
    for anchor, todo in by_anchor.items():
        paths = cache.fitted(member, days, anchor, frame).forecast(
            frame, [validation.origins[i] for i in todo], [validation.steps[i] for i in todo]
        )
        for i, path in zip(todo, paths, strict=True):
            cache.keep_path(member, days, validation.origins[i], path)
    validation_paths = [cache.path(member, days, origin) for origin in validation.origins]
    final_fit = cache.fitted(member, days, anchor_of(as_of, final_refit_weeks), frame)
    return validation_paths, final_fit.forecast(frame, [as_of], [n_steps])[0]


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
) -> MemberOutcome:
    """Fit, validate and forecast one member in a worker thread; failures become reasons."""
    box: dict = {}

    def work():
        try:
            box["result"] = _member_forecasts(
                member, frame, validation, as_of, n_steps, refit_weeks, final_refit_weeks, cache
            )
        except Exception as exc:  # one member's failure must never stop the run
            box["error"] = exc

    started = time.perf_counter()
    # A daemon thread: a member that hangs is abandoned, and cannot keep the process alive.
    thread = threading.Thread(target=work, name=f"member-{member.name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        return MemberOutcome(
            member.name, "failed", f"timed out after {timeout_s:g} s", seconds=seconds
        )
    if "error" in box:
        return MemberOutcome(member.name, "failed", _reason(box["error"]), seconds=seconds)
    validation_paths, final = box["result"]
    return MemberOutcome(
        member.name,
        "ok",
        score=validation.score(validation_paths),
        seconds=seconds,
        forecast=final,
        validation=validation_paths,
    )


def _reason(exc: Exception) -> str:
    """One line: the exception's type and first line (a broken contract needs no type)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, InvalidForecast):
        return first
    return f"{type(exc).__name__}: {first}".rstrip(": ")
