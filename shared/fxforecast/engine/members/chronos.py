"""Chronos-Bolt (Amazon's pretrained time-series transformer), used zero-shot in float32.

Nothing is fitted: at each origin the model reads the last `context_length` genuine closes on or
before it and predicts quantiles of the next steps. Two backends give the same quantiles:
- numpy (chronos_fast; the folder's checks in chronos_files): a local model folder that
  `fxforecast chronos-export` has checked runs in plain numpy on the CPU; torch and transformers
  are never imported.
- library (chronos_library): the chronos-forecasting pipeline, the reference, on CPU or CUDA
  (CHRONOS_DEVICE); torch and transformers are imported on its first load only.
CHRONOS_BACKEND=auto takes the numpy path when the export is there and matches the model, else
the library, recording why. The loaded model is kept (one per process) until `release`.

Two gaps between Bolt and the ensemble's contract are bridged deliberately:
- Bolt predicts only the 0.1..0.9 quantiles (wider levels would be clamped to 0.1/0.9). The 0.025
  and 0.975 levels extend each side's log-distance from the median at 0.1/0.9 by the ratio a
  normal implies, z(0.975)/z(0.9) = 1.53; the ensemble then calibrates the 95% interval on its
  own recent errors, separately from the 80% one.
- Bolt was trained for 64 steps; a 90-day horizon allows 65. Steps past the model's length keep
  its last median and widen its last quantiles' log-distance by the square root of time, rather
  than running the library's autoregressive extension (nine more model passes per series).
"""

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import norm

from ...memory import available_mb, rss_mb
from . import chronos_files
from .base import Fitted, Member, closes_until
from .chronos_fast import NumpyBolt
from .chronos_files import FastPathUnavailable
from .chronos_library import ChronosUnavailable, LibraryBolt, load_pipeline, model_source

BOLT_LEVELS = [0.1, 0.5, 0.9]  # asked of the model; the ensemble's 0.025/0.975 are derived
OUTER_RATIO = float(norm.ppf(0.975) / norm.ppf(0.9))
# Bolt's activations grow with the batch: up to 400 validation contexts go in chunks of this
# many, so the peak memory stays that of a 64-series batch.
MAX_BATCH = 64

_pipelines: dict = {}  # (model, backend, device) -> loaded model; at most one entry per process


class NotEnoughMemory(Exception):
    pass


def fast_model(source: str, device: str) -> NumpyBolt:
    if device == "cuda":
        raise FastPathUnavailable("CHRONOS_DEVICE=cuda: the numpy path runs on the CPU only")
    if not Path(source).is_dir():
        raise FastPathUnavailable(
            f"CHRONOS_MODEL={source} is a Hugging Face id; the numpy path needs a local folder "
            "exported with fxforecast chronos-export"
        )
    return chronos_files.load(Path(source))


def ensemble_levels(bolt: np.ndarray, steps: int) -> np.ndarray:
    """Bolt's (model steps, [q0.1, q0.5, q0.9]) in CLP -> (steps, LEVELS) in CLP."""
    log_q = np.log(np.sort(bolt, axis=1))  # an untrained model's quantiles need not be in order
    median, below, above = log_q[:, 1], log_q[:, 1] - log_q[:, 0], log_q[:, 2] - log_q[:, 1]
    known = len(log_q)
    if steps > known:  # past the model's trained length: flat median, sqrt-time widening
        widen = np.sqrt(np.arange(known + 1, steps + 1) / known)
        median = np.concatenate([median, np.full(steps - known, median[-1])])
        below = np.concatenate([below, below[-1] * widen])
        above = np.concatenate([above, above[-1] * widen])
    offsets = np.stack(
        [-OUTER_RATIO * below, -below, np.zeros_like(below), above, OUTER_RATIO * above], axis=1
    )
    return np.exp(median[:steps, None] + offsets[:steps])


class _ChronosFitted(Fitted):
    def __init__(self, member: "ChronosBolt", context_length: int):
        self.member = member
        self.context_length = context_length

    def _forecast(self, frame, origins, steps):
        contexts = [
            closes_until(frame, origin).iloc[-self.context_length :].to_numpy()
            for origin in origins
        ]
        bolt = self.member.predict(contexts, max(steps))
        return [ensemble_levels(quantiles, n) for quantiles, n in zip(bolt, steps, strict=True)]


FIGURES = (
    "backend_used",
    "device_used",
    "fast_path_reason",
    "context_length",
    "load_s",
    "predict_s",
    "rss_before_mb",
    "rss_after_mb",
    "rss_released_mb",
    "available_mb",
)


@dataclass
class ChronosBolt(Member):
    name = "chronos"
    zero_shot = True
    own_process = False  # its loaded model and figures must stay in the run's process
    # Not on disk: a context's quantiles can differ in the last digit with the batch it was
    # predicted in, and a warm run must equal a cold one byte for byte.
    storable = False
    model: str  # a Hugging Face id or a folder (CHRONOS_MODEL)
    min_available_mb: int  # skip below this much available memory
    context_length: int  # business days of history given to the model
    backend: str = "auto"  # CHRONOS_BACKEND: auto, numpy or library
    device: str = "auto"  # CHRONOS_DEVICE: auto, cpu or cuda (the library's)
    skipped: bool = field(default=False, init=False)
    figures: dict = field(default_factory=lambda: dict.fromkeys(FIGURES), init=False)

    def fit(self, frame):
        return _ChronosFitted(self, self.context_length)

    def pipeline(self):
        """The process's loaded model, loaded on first use after a memory check."""
        key = (self.model, self.backend, self.device)
        if key in _pipelines:
            return _pipelines[key]
        _pipelines.clear()  # another model's pipeline, if any, goes before this one loads
        available = self.figures["available_mb"] = available_mb()
        if available < self.min_available_mb:
            self.skipped = True
            raise NotEnoughMemory(
                f"{available:.0f} MB available, below CHRONOS_MIN_AVAILABLE_MB="
                f"{self.min_available_mb}; Chronos skipped"
            )
        self.figures["rss_before_mb"] = rss_mb()
        started = time.perf_counter()
        loaded = self._load()
        self.figures["load_s"] = round(time.perf_counter() - started, 3)
        self.figures["backend_used"], self.figures["device_used"] = loaded.backend, loaded.device
        _pipelines[key] = loaded
        return loaded

    def _load(self) -> NumpyBolt | LibraryBolt:
        """The backend the settings ask for; auto records why the numpy path was not taken."""
        source = model_source(self.model)
        backend, device = self.backend, self.device
        if backend != "library":
            try:
                return fast_model(source, device)
            except FastPathUnavailable as exc:
                if backend == "numpy":
                    raise ChronosUnavailable(f"CHRONOS_BACKEND=numpy: {exc}") from exc
                self.figures["fast_path_reason"] = str(exc)
        return load_pipeline(self.model, device)

    def predict(self, contexts: list[np.ndarray], steps: int) -> np.ndarray:
        """Every context, in batches of MAX_BATCH: (series, min(steps, model length), 3) in CLP."""
        model = self.pipeline()
        contexts = [c[-model.context_length :] for c in contexts]  # what Bolt reads
        self.figures["context_length"] = len(contexts[-1])  # the last: the as-of's, in a run
        started = time.perf_counter()
        steps = min(steps, model.prediction_length)
        quantiles = np.concatenate(
            [
                model.predict_quantiles(contexts[i : i + MAX_BATCH], steps, BOLT_LEVELS)
                for i in range(0, len(contexts), MAX_BATCH)
            ]
        )
        self.figures["predict_s"] = round(
            (self.figures["predict_s"] or 0) + time.perf_counter() - started, 3
        )
        self.figures["rss_after_mb"] = rss_mb()
        return quantiles

    def release(self) -> None:
        """Free the pipeline: its memory goes back before the outputs are drawn."""
        if _pipelines:
            _pipelines.clear()
            gc.collect()
            self.figures["rss_released_mb"] = rss_mb()

    def info(self, outcome) -> dict:
        """The metrics line's chronos block: this run's figures and the ensemble's verdict."""
        return {
            "enabled": outcome.status != "disabled",
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            **self.figures,
            "status": "skipped" if self.skipped else outcome.status,
            "reason": outcome.reason,
        }
