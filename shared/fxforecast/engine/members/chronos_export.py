"""`fxforecast chronos-export`: let services run a local Chronos-Bolt model without torch.

Run where torch and chronos-forecasting are installed. It runs the numpy path (chronos_fast) and
the library on the same contexts of this very model and, only if every quantile agrees within
PARITY_RTOL, writes chronos_fast.json into the folder; services then take the numpy path for it.
"""

import json
from pathlib import Path

import numpy as np

from ...errors import FxError
from ...fsio import write_all
from . import chronos_files
from .chronos_fast import NumpyBolt
from .chronos_files import EXPORT_FILE, FastPathUnavailable
from .chronos_library import load_pipeline, model_source


def export(folder: Path) -> str:
    """Check the numpy path against the library on this model and, if they agree, write
    EXPORT_FILE into the folder: from then on services use the fast path for it."""
    if not folder.is_dir():
        raise FxError(f"{folder} is not a model folder; give the folder of make chronos-download")
    model_source(str(folder))  # config.json and model.safetensors are there
    try:
        arch = chronos_files.architecture(chronos_files.read_config(folder))
        weights, fingerprint = chronos_files.read_safetensors(folder / "model.safetensors")
        fast = NumpyBolt(weights, arch)
    except FastPathUnavailable as exc:
        raise FxError(f"cannot export {folder}: {exc}") from exc
    library = load_pipeline(str(folder), "cpu")
    contexts = parity_contexts(arch["context_length"])
    levels = list(arch["quantiles"])
    steps = arch["prediction_length"]
    try:
        fast_q = fast.predict_quantiles(contexts, steps, levels)
    except (KeyError, ValueError) as exc:  # a tensor missing or of another shape
        raise FxError(f"cannot export {folder}: the numpy path fails on it ({exc!r})") from exc
    library_q = library.predict_quantiles(contexts, steps, levels)
    error = float(np.max(np.abs(fast_q - library_q) / np.abs(library_q)))
    if not error <= chronos_files.PARITY_RTOL:
        raise FxError(
            f"cannot export {folder}: the numpy path differs from the library by {error:.1e} "
            f"(relative; the limit is {chronos_files.PARITY_RTOL:.0e}); services keep the library"
        )
    import chronos
    import torch

    export = {
        "format": chronos_files.EXPORT_FORMAT,
        "architecture": arch,
        "weights_fingerprint": fingerprint,
        "parity": {
            "max_relative_difference": error,
            "contexts": len(contexts),
            "chronos-forecasting": chronos.__version__,
            "torch": torch.__version__,
        },
    }
    # staged and renamed: a failed export never leaves a half-written file
    write_all(folder, {EXPORT_FILE: (json.dumps(export, indent=2) + "\n").encode()})
    return (
        f"exported {folder / EXPORT_FILE}: the numpy path matches the library within "
        f"{error:.1e} (relative) on {len(contexts)} contexts; services with "
        f"CHRONOS_MODEL={folder} now run without torch"
    )


def parity_contexts(context_length: int) -> list[np.ndarray]:
    """The embedded closes as the services read them: 90, 180, 365 and the model's most, and a
    365-day one with gaps (NaN), in one batch of mixed lengths (left-padded by both paths)."""
    from ...marketdata.clean import load

    closes = load().closes().to_numpy()
    gappy = closes[-365:].copy()
    gappy[[3, 40, 41, 42, 200]] = np.nan
    gappy[100:140] = np.nan
    lengths = (90, 180, 365, context_length)
    return [closes[-n:] for n in lengths] + [closes[-400:-35], gappy]
