"""The numpy path's model folder: the weights, the architecture and the export's record.

The weights are memory-mapped straight from the folder's model.safetensors (parsed here: an
8-byte header length, a JSON header, then the raw tensors), so nothing is converted or copied.
`fxforecast chronos-export` writes `chronos_fast.json` next to config.json after checking, with
the library loaded, that the numpy path's quantiles equal the library's on that very model. A run
uses the fast path only while the folder still holds what was checked: the same architecture and
context length, and weights with the same fingerprint. Anything else raises FastPathUnavailable
with a one-line reason, and the member falls back to the library (or runs without Chronos).
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from .chronos_fast import NumpyBolt

EXPORT_FILE = "chronos_fast.json"
EXPORT_FORMAT = 1
PARITY_RTOL = 1e-4
FINGERPRINT_SAMPLES = 64  # evenly spaced 4 KiB reads: hashing all 191 MB would cost ~1 s a run
SAMPLE_BYTES = 4096
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit


class FastPathUnavailable(Exception):
    """Why the fast path cannot run this model; one line, for the metrics line."""


def _header(path: Path) -> tuple[dict, bytes]:
    """A safetensors file's header: 8 bytes giving the length of a JSON object that maps each
    tensor to its dtype, shape and byte range. FastPathUnavailable, one line, for any file that
    is not one (an HTML page saved under that name, a cut download, another format)."""

    def refuse(why: str) -> FastPathUnavailable:
        return FastPathUnavailable(
            f"{path} is not a safetensors file ({why}); download the model again "
            "(make chronos-download)"
        )

    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if size < 8 or not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise refuse(f"its first 8 bytes give no header length within its {size} bytes")
            header_bytes = file.read(length)
    except OSError as exc:
        raise FastPathUnavailable(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise refuse("its header is not JSON") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(_count(n) for n in shape)
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(map(_count, offsets))
        if not ok or offsets[0] > offsets[1]:
            raise refuse(f"its entry for {str(name)[:60]!r} is not a dtype, shape and byte range")
        if offsets[1] > data_size:
            raise FastPathUnavailable(f"{path.name} is truncated or corrupt at {name}")
    header.pop("__metadata__", None)
    return header, header_bytes


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Float32 tensors memory-mapped from a safetensors file, and the file's fingerprint."""
    header, header_bytes = _header(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + len(header_bytes))
    except (OSError, ValueError) as exc:
        raise FastPathUnavailable(f"cannot read {path}: {exc}") from exc
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        if entry["dtype"] != "F32":
            raise FastPathUnavailable(f"{path.name} holds {entry['dtype']} tensors; needs F32")
        if (end - start) != 4 * math.prod(entry["shape"]):
            raise FastPathUnavailable(f"{path.name} is truncated or corrupt at {name}")
        tensors[name] = data[start:end].view(np.float32).reshape(entry["shape"])
    digest = hashlib.sha256(header_bytes)
    digest.update(str(data.size).encode())
    for offset in np.linspace(0, max(data.size - SAMPLE_BYTES, 0), FINGERPRINT_SAMPLES):
        digest.update(data[int(offset) : int(offset) + SAMPLE_BYTES].tobytes())
    return tensors, digest.hexdigest()


def architecture(config: dict) -> dict:
    """What the numpy forward pass needs from config.json; FastPathUnavailable for what it lacks."""
    try:
        chronos = config["chronos_config"]
        arch = {
            "d_model": config["d_model"],
            "d_kv": config["d_kv"],
            "d_ff": config["d_ff"],
            "num_heads": config["num_heads"],
            "num_layers": config["num_layers"],
            "num_decoder_layers": config.get("num_decoder_layers") or config["num_layers"],
            "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-6),
            "relative_attention_num_buckets": config.get("relative_attention_num_buckets", 32),
            "relative_attention_max_distance": config.get("relative_attention_max_distance", 128),
            "decoder_start_token_id": config.get("decoder_start_token_id", 0),
            "context_length": chronos["context_length"],
            "prediction_length": chronos["prediction_length"],
            "patch_size": chronos["input_patch_size"],
            "quantiles": chronos["quantiles"],
            "use_reg_token": chronos.get("use_reg_token", False),
        }
    except (KeyError, TypeError) as exc:
        raise FastPathUnavailable(f"config.json is not a Chronos-Bolt config: no {exc}") from exc
    activation = config.get("dense_act_fn", config.get("feed_forward_proj"))
    if activation != "relu" or config.get("is_gated_act"):
        raise FastPathUnavailable(
            f"the fast path runs relu T5 layers; this model uses {activation}"
        )
    if chronos["input_patch_stride"] != chronos["input_patch_size"]:
        raise FastPathUnavailable("the fast path needs patches that do not overlap")
    return arch


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise FastPathUnavailable(f"cannot read {folder / 'config.json'}: {exc}") from exc


def load(folder: Path) -> NumpyBolt:
    """The fast path for an exported model folder, or FastPathUnavailable saying why not."""
    export_path = folder / EXPORT_FILE
    if not export_path.is_file():
        raise FastPathUnavailable(
            f"no {EXPORT_FILE} in {folder}; run fxforecast chronos-export --model {folder}"
        )
    try:
        export = json.loads(export_path.read_text())
        checked_arch, fingerprint = export["architecture"], export["weights_fingerprint"]
        if export["format"] != EXPORT_FORMAT:
            raise ValueError(f"format {export['format']}, this version reads {EXPORT_FORMAT}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FastPathUnavailable(
            f"{export_path} is unreadable or corrupt ({exc}); run fxforecast chronos-export again"
        ) from exc
    arch = architecture(read_config(folder))
    if checked_arch.get("context_length") != arch["context_length"]:
        raise FastPathUnavailable(
            f"{EXPORT_FILE} was exported for context length {checked_arch.get('context_length')}, "
            f"the model's is {arch['context_length']}; run fxforecast chronos-export again"
        )
    weights, found = read_safetensors(folder / "model.safetensors")
    if checked_arch != arch or found != fingerprint:
        raise FastPathUnavailable(
            f"{EXPORT_FILE} was exported from another model than the one in {folder}; "
            "run fxforecast chronos-export again"
        )
    return NumpyBolt(weights, arch)
