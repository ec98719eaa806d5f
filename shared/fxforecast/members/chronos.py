"""Chronos-Bolt (Amazon's pretrained time-series transformer), used zero-shot in float32.

Nothing is fitted: at each origin the model reads the last `context_length` genuine closes on or
before it and predicts quantiles of the next steps. Two backends give the same quantiles:
- numpy (chronos_fast): a local model folder that `fxforecast chronos-export` has checked runs in
  plain numpy on the CPU; torch and transformers are never imported.
- library: the chronos-forecasting pipeline, the reference, on CPU or CUDA (CHRONOS_DEVICE);
  torch and transformers are imported on its first load only.
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
from pathlib import Path

import numpy as np
from scipy.stats import norm

from ..errors import FxError
from ..runlog import available_mb, rss_mb
from . import chronos_fast
from .base import Fitted, Member, closes_until
from .chronos_fast import FastPathUnavailable, NumpyBolt

BOLT_LEVELS = [0.1, 0.5, 0.9]  # asked of the model; the ensemble's 0.025/0.975 are derived
OUTER_RATIO = float(norm.ppf(0.975) / norm.ppf(0.9))
MODEL_FILES = ("config.json", "model.safetensors")

_pipelines: dict = {}  # (model, backend, device) -> loaded model; at most one entry per process


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


def load_pipeline(model: str, device: str = "cpu"):
    """The library's own loader in float32 (bfloat16 is emulated, slowly, on most CPUs)."""
    source = model_source(model)
    import torch
    from chronos import BaseChronosPipeline, ChronosBoltPipeline
    from transformers.utils import logging as hf_logging

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ChronosUnavailable(
            "CHRONOS_DEVICE=cuda but torch finds no CUDA device; set CHRONOS_DEVICE=auto or cpu"
        )
    hf_logging.disable_progress_bar()  # a batch service: no progress bars in its logs
    try:
        pipeline = BaseChronosPipeline.from_pretrained(
            source, device_map=device, dtype=torch.float32
        )
    except Exception as exc:  # no network, wrong id, corrupt files, out of memory
        raise ChronosUnavailable(f"cannot load CHRONOS_MODEL={model}: {first_line(exc)}") from exc
    if not isinstance(pipeline, ChronosBoltPipeline):
        raise ChronosUnavailable(
            f"CHRONOS_MODEL={model} is a {type(pipeline).__name__}, not a Chronos-Bolt model"
        )
    return LibraryBolt(pipeline, device)


class LibraryBolt:
    """The chronos-forecasting pipeline behind NumpyBolt's interface."""

    backend = "library"

    def __init__(self, pipeline, device: str):
        self.pipeline = pipeline
        self.device = device
        self.context_length = pipeline.model_context_length
        self.prediction_length = pipeline.model_prediction_length

    def predict_quantiles(self, contexts: list[np.ndarray], steps: int, levels) -> np.ndarray:
        import torch

        quantiles, _ = self.pipeline.predict_quantiles(
            [torch.tensor(c, dtype=torch.float32) for c in contexts],
            prediction_length=steps,
            quantile_levels=levels,
        )
        return quantiles.numpy()


def fast_model(source: str, device: str) -> NumpyBolt:
    if device == "cuda":
        raise FastPathUnavailable("CHRONOS_DEVICE=cuda: the numpy path runs on the CPU only")
    if not Path(source).is_dir():
        raise FastPathUnavailable(
            f"CHRONOS_MODEL={source} is a Hugging Face id; the numpy path needs a local folder "
            "exported with fxforecast chronos-export"
        )
    return chronos_fast.load(Path(source))


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

    def forecast(self, frame, origins, steps):
        contexts = [
            closes_until(frame, origin).iloc[-self.context_length :].to_numpy()
            for origin in origins
        ]
        bolt = self.member.predict(contexts, max(steps))
        return [ensemble_levels(quantiles, n) for quantiles, n in zip(bolt, steps, strict=True)]


class ChronosBolt(Member):
    name = "chronos"
    zero_shot = True

    def __init__(
        self,
        model: str,
        min_available_mb: int,
        context_length: int | None,
        backend: str = "auto",
        device: str = "auto",
    ):
        self.model = model
        self.min_available_mb = min_available_mb
        self.context_length = context_length  # None: the horizon's default
        self.skipped = False
        self.settings = {"backend": backend, "device": device}
        self.figures = dict.fromkeys(
            (
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
        )

    def fit(self, frame, params):
        context = params.chronos_context if self.context_length is None else self.context_length
        return _ChronosFitted(self, context)

    def pipeline(self):
        """The process's loaded model, loaded on first use after a memory check."""
        key = (self.model, self.settings["backend"], self.settings["device"])
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
        backend, device = self.settings["backend"], self.settings["device"]
        if backend != "library":
            try:
                return fast_model(source, device)
            except FastPathUnavailable as exc:
                if backend == "numpy":
                    raise ChronosUnavailable(f"CHRONOS_BACKEND=numpy: {exc}") from exc
                self.figures["fast_path_reason"] = str(exc)
        return load_pipeline(self.model, device)

    def predict(self, contexts: list[np.ndarray], steps: int) -> np.ndarray:
        """Every context in one batched call: (series, min(steps, model length), 3) in CLP."""
        model = self.pipeline()
        contexts = [c[-model.context_length :] for c in contexts]  # what Bolt reads
        self.figures["context_length"] = len(contexts[-1])  # the last: the as-of's, in a run
        started = time.perf_counter()
        quantiles = model.predict_quantiles(
            contexts, min(steps, model.prediction_length), BOLT_LEVELS
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

    def metrics(self, outcome) -> dict:
        """The metrics line's chronos block: this run's figures and the ensemble's verdict."""
        return {
            "enabled": outcome.status != "disabled",
            "model": self.model,
            **self.settings,
            **self.figures,
            "status": "skipped" if self.skipped else outcome.status,
            "reason": outcome.reason,
        }
