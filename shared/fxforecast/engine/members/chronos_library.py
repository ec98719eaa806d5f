"""Chronos-Bolt through the chronos-forecasting library: the reference backend, and the model
folder or Hugging Face id both backends read. torch and transformers are imported on first load.
"""

import logging
from pathlib import Path

import numpy as np

from ...errors import FxError

MODEL_FILES = ("config.json", "model.safetensors")


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
    # Before torch is imported: a run stopped while this thread still imports it must not log
    # torch's exit-time statistics after its one error line.
    logging.getLogger("torch").setLevel(logging.WARNING)
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
