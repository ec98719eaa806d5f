"""Chronos-Bolt (Amazon's pretrained time-series transformer), used zero-shot on CPU in float32.

Nothing is fitted: at each origin the model reads the last `context_length` genuine closes on or
before it and predicts quantiles of the next steps. torch and transformers are imported on the
first load only, so a service with ENABLE_CHRONOS=false never pays for them; the pipeline is then
kept (one per process) for every later call until `release`.

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

from ...errors import FxError
from ...memory import available_mb, rss_mb
from .base import Fitted, Member, closes_until

BOLT_LEVELS = [0.1, 0.5, 0.9]  # asked of the model; the ensemble's 0.025/0.975 are derived
OUTER_RATIO = float(norm.ppf(0.975) / norm.ppf(0.9))
MODEL_FILES = ("config.json", "model.safetensors")

_pipelines: dict = {}  # model -> loaded pipeline; at most one entry (one pipeline per process)


class NotEnoughMemory(Exception):
    pass


class ChronosUnavailable(FxError):
    pass


def model_source(model: str) -> str:
    """A local folder holding the model files, or else a Hugging Face id."""
    folder = Path(model).expanduser()
    if not (folder.is_dir() or model.startswith(("/", ".", "~"))):
        return model
    if not folder.is_dir():
        raise ChronosUnavailable(
            f"CHRONOS_MODEL folder {folder} does not exist; run make "
            "chronos-download or give a Hugging Face id"
        )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ChronosUnavailable(
            f"CHRONOS_MODEL folder {folder} has no {' or '.join(missing)}; point it at a folder "
            "holding config.json and model.safetensors (make chronos-download)"
        )
    return str(folder)


def load_pipeline(model: str):
    """The library's own loader, on CPU in float32 (bfloat16 is emulated, slowly, on most CPUs)."""
    source = model_source(model)
    import torch
    from chronos import BaseChronosPipeline, ChronosBoltPipeline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a batch service: no progress bars in its logs
    try:
        pipeline = BaseChronosPipeline.from_pretrained(
            source, device_map="cpu", dtype=torch.float32
        )
    except Exception as exc:  # no network, wrong id, corrupt files, out of memory
        raise ChronosUnavailable(f"cannot load CHRONOS_MODEL={model}: {first_line(exc)}") from exc
    if not isinstance(pipeline, ChronosBoltPipeline):
        raise ChronosUnavailable(
            f"CHRONOS_MODEL={model} is a {type(pipeline).__name__}, not a Chronos-Bolt model"
        )
    return pipeline


def download(repo: str, folder: Path) -> Path:
    """Save a model's two files into `folder` (needs network), for servers that run offline."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, local_dir=folder, allow_patterns=list(MODEL_FILES))
    except Exception as exc:
        raise FxError(
            f"could not download {repo} into {folder}: {first_line(exc)}; this needs network "
            "access to the Hugging Face hub"
        ) from exc
    model_source(str(folder))  # both files are there
    return folder


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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
    model: str  # a Hugging Face id or a folder (CHRONOS_MODEL)
    min_available_mb: int  # skip below this much available memory
    context_length: int  # business days of history given to the model
    skipped: bool = field(default=False, init=False)
    figures: dict = field(default_factory=lambda: dict.fromkeys(FIGURES), init=False)

    def fit(self, frame):
        return _ChronosFitted(self, self.context_length)

    def pipeline(self):
        """The process's pipeline for this model, loaded on first use after a memory check."""
        if self.model in _pipelines:
            return _pipelines[self.model]
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
        _pipelines[self.model] = load_pipeline(self.model)
        self.figures["load_s"] = round(time.perf_counter() - started, 3)
        return _pipelines[self.model]

    def predict(self, contexts: list[np.ndarray], steps: int) -> np.ndarray:
        """Every context in one batched call: (series, min(steps, model length), 3) in CLP."""
        pipeline = self.pipeline()
        import torch  # only now: the memory guard runs before anything heavy is imported

        contexts = [c[-pipeline.model_context_length :] for c in contexts]  # what Bolt reads
        self.figures["context_length"] = len(contexts[-1])  # the last: the as-of's, in a run
        started = time.perf_counter()
        quantiles, _ = pipeline.predict_quantiles(
            [torch.tensor(c, dtype=torch.float32) for c in contexts],
            prediction_length=min(steps, pipeline.model_prediction_length),
            quantile_levels=BOLT_LEVELS,
        )
        self.figures["predict_s"] = round(
            (self.figures["predict_s"] or 0) + time.perf_counter() - started, 3
        )
        self.figures["rss_after_mb"] = rss_mb()
        return quantiles.numpy()

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
            **self.figures,
            "status": "skipped" if self.skipped else outcome.status,
            "reason": outcome.reason,
        }
