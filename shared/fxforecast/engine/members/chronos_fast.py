"""Chronos-Bolt's forward pass in plain numpy: the fast path, with neither torch nor transformers.

Importing torch and transformers costs a run more time and memory than Bolt's inference itself,
so a model folder that `fxforecast chronos-export` has checked (chronos_files.py) is run here
instead. The network is small: a T5 encoder over patches of the scaled context, ONE decoder step,
a residual-MLP head.
"""

import math

import numpy as np


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
