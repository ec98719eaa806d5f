"""Chronos-Bolt's forward pass in plain numpy: the fast path, with neither torch nor transformers.

Importing torch and transformers costs a run more time and memory than Bolt's inference itself,
so a model folder that `fxforecast chronos-export` has checked is run here instead. The network is
small (a T5 encoder over patches of the scaled context, ONE decoder step, a residual-MLP head);
the weights are memory-mapped straight from the folder's model.safetensors (parsed here: an
8-byte header length, a JSON header, then the raw tensors), so nothing is converted or copied.

The export writes `chronos_fast.json` next to config.json after checking, with the library
loaded, that this path's quantiles equal the library's on that very model. A run uses the fast
path only while the folder still holds what was checked: the same architecture and context
length, and weights with the same fingerprint. Anything else raises FastPathUnavailable with a
one-line reason, and the member falls back to the library (or runs without Chronos).
"""

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

EXPORT_FILE = "chronos_fast.json"
EXPORT_FORMAT = 1
PARITY_RTOL = 1e-4
FINGERPRINT_SAMPLES = 64  # evenly spaced 4 KiB reads: hashing all 191 MB would cost ~1 s a run
SAMPLE_BYTES = 4096


class FastPathUnavailable(Exception):
    """Why the fast path cannot run this model; one line, for the metrics line."""


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Float32 tensors memory-mapped from a safetensors file, and the file's fingerprint."""
    try:
        with path.open("rb") as file:
            header_size = int.from_bytes(file.read(8), "little")
            header_bytes = file.read(header_size)
        header = json.loads(header_bytes)
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    except (OSError, ValueError) as exc:
        raise FastPathUnavailable(f"cannot read {path}: {exc}") from exc
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        if entry["dtype"] != "F32":
            raise FastPathUnavailable(f"{path.name} holds {entry['dtype']} tensors; needs F32")
        if end > data.size or (end - start) != 4 * math.prod(entry["shape"]):
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


def relative_buckets(length: int, num_buckets: int, max_distance: int) -> np.ndarray:
    """T5's bidirectional relative-position buckets (transformers' formula, in float32 like it)."""
    position = np.arange(length)[None, :] - np.arange(length)[:, None]
    num_buckets //= 2
    buckets = (position > 0) * num_buckets
    position = np.abs(position)
    max_exact = num_buckets // 2
    # np.maximum: the log of 0 is never used (those positions are small), only warned about
    log_ratio = np.log(np.maximum(position, 1).astype(np.float32) / np.float32(max_exact))
    large = max_exact + (
        log_ratio
        / np.float32(math.log(max_distance / max_exact))
        * np.float32(num_buckets - max_exact)
    ).astype(np.int64, copy=False)
    large = np.minimum(large, num_buckets - 1)
    return buckets + np.where(position < max_exact, position, large)


def layer_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """T5's RMS norm: no mean, no bias."""
    return weight * (x / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + np.float32(eps)))


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return scores / scores.sum(axis=-1, keepdims=True)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ weight.T (+ bias) as ONE matrix product: numpy loops over a stacked operand."""
    y = x.reshape(-1, x.shape[-1]) @ weight.T  # torch's (out, in) layout, read without a copy
    y = y.reshape(*x.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


class NumpyBolt:
    """Chronos-Bolt for batched quantile forecasts, numpy only, float32 throughout."""

    backend, device = "numpy", "cpu"

    def __init__(self, weights: dict[str, np.ndarray], arch: dict):
        self.w = weights
        self.arch = arch
        self.context_length = arch["context_length"]
        self.prediction_length = arch["prediction_length"]
        self.quantiles = list(arch["quantiles"])
        self.heads, self.d_kv = arch["num_heads"], arch["d_kv"]
        self.eps = arch["layer_norm_epsilon"]

    def predict_quantiles(self, contexts: list[np.ndarray], steps: int, levels) -> np.ndarray:
        """(series, steps, levels) for steps up to the model's length and levels it was trained
        on: what ChronosBoltPipeline.predict_quantiles gives for the same input."""
        columns = [self.quantiles.index(level) for level in levels]
        return self.forward(contexts)[:, :steps, columns]

    def forward(self, contexts: list[np.ndarray]) -> np.ndarray:
        """The library's encode, decode and output head: (series, prediction_length, quantiles)."""
        context = self._stack(contexts)
        loc, scale = self._scaling(context)
        embeds, mask = self._embed((context - loc) / scale)
        encoded = self._encoder(embeds, mask)
        hidden = self._decoder(encoded, mask)
        out = self._residual_block("output_patch_embedding", hidden)
        out = out.reshape(len(context), len(self.quantiles), self.prediction_length)
        return (out * scale[:, :, None] + loc[:, :, None]).transpose(0, 2, 1)

    def _stack(self, contexts) -> np.ndarray:
        """Left-pad with NaN to one length (as the library does), keep the model's last closes."""
        length = min(max(len(c) for c in contexts), self.context_length)
        stacked = np.full((len(contexts), length), np.nan, dtype=np.float32)
        for row, c in zip(stacked, contexts, strict=True):
            c = np.asarray(c, dtype=np.float32)[-length:]
            row[length - len(c) :] = c
        return stacked

    @staticmethod
    def _scaling(context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Instance norm: mean and standard deviation of the observed closes of each series."""
        observed = ~np.isnan(context)
        count = observed.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            loc = np.where(observed, context, 0).sum(axis=1, keepdims=True) / count
            loc = np.nan_to_num(loc, nan=0.0).astype(np.float32)
            square = np.where(observed, np.square(context - loc), 0)
            scale = np.sqrt(square.sum(axis=1, keepdims=True) / count)
        scale = np.nan_to_num(scale, nan=1.0).astype(np.float32)
        return loc, np.where(scale == 0, np.float32(1e-5), scale)

    def _embed(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patches (values, then the observed mask) -> input embeddings, plus the [REG] token."""
        size = self.arch["patch_size"]
        pad = -scaled.shape[1] % size
        scaled = np.pad(scaled, ((0, 0), (pad, 0)), constant_values=np.nan)
        patches = scaled.reshape(len(scaled), -1, size)
        observed = ~np.isnan(patches)
        features = np.concatenate(
            [np.where(observed, patches, 0), observed.astype(np.float32)], axis=-1
        )
        embeds = self._residual_block("input_patch_embedding", features)
        mask = observed.any(axis=-1)
        if self.arch["use_reg_token"]:
            reg = np.broadcast_to(self.w["shared.weight"][1], (len(embeds), 1, embeds.shape[-1]))
            embeds = np.concatenate([embeds, reg], axis=1)
            mask = np.concatenate([mask, np.ones((len(mask), 1), dtype=bool)], axis=1)
        return embeds, mask

    def _residual_block(self, prefix: str, x: np.ndarray) -> np.ndarray:
        w = self.w
        hidden = np.maximum(
            linear(x, w[f"{prefix}.hidden_layer.weight"], w[f"{prefix}.hidden_layer.bias"]), 0
        )
        out = linear(hidden, w[f"{prefix}.output_layer.weight"], w[f"{prefix}.output_layer.bias"])
        return out + linear(
            x, w[f"{prefix}.residual_layer.weight"], w[f"{prefix}.residual_layer.bias"]
        )

    def _heads(self, x: np.ndarray) -> np.ndarray:
        """(series, tokens, heads * d_kv) -> (series, heads, tokens, d_kv)."""
        return x.reshape(*x.shape[:2], self.heads, self.d_kv).transpose(0, 2, 1, 3)

    def _attention(self, prefix, x, memory, bias) -> np.ndarray:
        """T5 attention: no 1/sqrt(d) scaling; `bias` carries positions and the padding mask."""
        w = self.w
        query = self._heads(linear(x, w[f"{prefix}.q.weight"]))
        key = self._heads(linear(memory, w[f"{prefix}.k.weight"]))
        value = self._heads(linear(memory, w[f"{prefix}.v.weight"]))
        weights = softmax(query @ key.transpose(0, 1, 3, 2) + bias)
        out = (weights @ value).transpose(0, 2, 1, 3).reshape(*x.shape[:2], -1)
        return linear(out, w[f"{prefix}.o.weight"])

    def _feed_forward(self, prefix, x) -> np.ndarray:
        w = self.w
        normed = layer_norm(x, w[f"{prefix}.layer_norm.weight"], self.eps)
        hidden = np.maximum(linear(normed, w[f"{prefix}.DenseReluDense.wi.weight"]), 0)
        return x + linear(hidden, w[f"{prefix}.DenseReluDense.wo.weight"])

    def _encoder(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, arch = self.w, self.arch
        buckets = relative_buckets(
            x.shape[1],
            arch["relative_attention_num_buckets"],
            arch["relative_attention_max_distance"],
        )
        # Layer 0's position bias serves every layer, as in T5; padding patches are never read.
        positions = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        bias = positions[buckets].transpose(2, 0, 1)[None]
        bias = np.where(mask[:, None, None, :], bias, -np.inf).astype(np.float32)
        for i in range(arch["num_layers"]):
            block = f"encoder.block.{i}.layer"
            normed = layer_norm(x, w[f"{block}.0.layer_norm.weight"], self.eps)
            x = x + self._attention(f"{block}.0.SelfAttention", normed, normed, bias)
            x = self._feed_forward(f"{block}.1", x)
        return layer_norm(x, w["encoder.final_layer_norm.weight"], self.eps)

    def _decoder(self, encoded: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One step from the start token: its self-attention sees only itself (softmax of one
        score is 1), so it reduces to the value and output projections."""
        w, arch = self.w, self.arch
        start = w["shared.weight"][arch["decoder_start_token_id"]]
        x = np.broadcast_to(start, (len(encoded), 1, start.size)).astype(np.float32)
        bias = np.where(mask[:, None, None, :], np.float32(0), -np.inf).astype(np.float32)
        for i in range(arch["num_decoder_layers"]):
            block = f"decoder.block.{i}.layer"
            normed = layer_norm(x, w[f"{block}.0.layer_norm.weight"], self.eps)
            value = linear(normed, w[f"{block}.0.SelfAttention.v.weight"])
            x = x + linear(value, w[f"{block}.0.SelfAttention.o.weight"])
            normed = layer_norm(x, w[f"{block}.1.layer_norm.weight"], self.eps)
            x = x + self._attention(f"{block}.1.EncDecAttention", normed, encoded, bias)
            x = self._feed_forward(f"{block}.2", x)
        return layer_norm(x, w["decoder.final_layer_norm.weight"], self.eps)


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


def write_export(folder: Path, export: dict) -> None:
    """Written beside and renamed: a failed export never leaves a half-written file."""
    staging = folder / f".{EXPORT_FILE}.partial-{os.getpid()}"
    staging.write_text(json.dumps(export, indent=2) + "\n")
    os.replace(staging, folder / EXPORT_FILE)
