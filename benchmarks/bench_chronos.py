"""`make bench-chronos`: what Chronos-Bolt-Small costs a service run, in time and memory.

The real weights cannot be downloaded here, so the model is built with Chronos-Bolt-Small's exact
architecture (47.7M parameters, 191 MB in float32) and RANDOM weights, then exported
(`fxforecast chronos-export`): the compute and memory are the real model's, the forecasts are
not. Each service runs in a fresh process with Chronos off, on with the numpy path and on with
the library, side by side, `repeats` times; the figures come from each run's metrics line.
Prints numbers; asserts nothing.
"""

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .bench import ROOT, run_once

BENCH_SERVICES = ("forecaster_7d", "forecaster_15d", "forecaster_30d", "forecaster_90d")
# Chronos-Bolt-Small's config.json, less the weights.
BOLT_SMALL = dict(
    d_model=512,
    d_ff=2048,
    d_kv=64,
    num_layers=6,
    num_decoder_layers=6,
    num_heads=8,
    initializer_factor=0.05,
)
IMPORT_TIME = (
    "import time, fxforecast.ops.service; t = time.perf_counter(); import chronos; "
    "print(time.perf_counter() - t)"
)
# Built in a child process: Linux passes a parent's peak RSS on to the ru_maxrss of every process
# it starts, so a bench grown by torch would inflate each service's peak_rss_mb.
BUILD = (
    "import sys, pathlib, benchmarks.bench_chronos as bench; "
    "bench.save_random_bolt(pathlib.Path(sys.argv[1]))"
)
EXPORT = "import sys; from fxforecast.cli import main; sys.exit(main(sys.argv[1:]))"
BACKENDS = ("numpy", "library")


def save_random_bolt(folder: Path, **architecture) -> Path:
    """Save a randomly initialised ChronosBolt model (Bolt-Small's shape unless overridden) with
    the library's own classes, as config.json + model.safetensors in `folder`."""
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    torch.manual_seed(0)
    config = T5Config(
        **{**BOLT_SMALL, **architecture},
        feed_forward_proj="relu",
        vocab_size=2,
        # transformers 5 needs these set for an encoder-decoder config
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        architectures=["ChronosBoltModelForForecasting"],
        chronos_pipeline_class="ChronosBoltPipeline",
        chronos_config={
            "context_length": 2048,
            "prediction_length": 64,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            "use_reg_token": True,
        },
    )
    ChronosBoltModelForForecasting(config).save_pretrained(folder)
    return folder


def paired_runs(service: str, workdir: Path, model: Path, repeats: int) -> dict:
    """Chronos off, then on with each backend, `repeats` times in turn: the ratios of each
    repeat's runs share the machine's load of the moment; their median is reported."""
    runs = {"off": [], **{backend: [] for backend in BACKENDS}}
    for _ in range(repeats):
        runs["off"].append(run_once(service, workdir, {"ENABLE_CHRONOS": "false"}))
        for backend in BACKENDS:
            env = {"ENABLE_CHRONOS": "true", "CHRONOS_MODEL": str(model)}
            record = run_once(service, workdir, {**env, "CHRONOS_BACKEND": backend})
            block = record["chronos"]
            if block["status"] != "ok" or block["backend_used"] != backend:
                raise SystemExit(f"{service} with CHRONOS_BACKEND={backend}: {block}")
            runs[backend].append(record)
    off = runs["off"]
    figures = {
        "off": {
            "wall_s": statistics.median(r["wall_s"] for r in off),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in off),
        }
    }
    for backend in BACKENDS:
        on = runs[backend]
        figures[backend] = {
            "ratio": statistics.median(
                a["wall_s"] / b["wall_s"] for a, b in zip(on, off, strict=True)
            ),
            "wall_s": statistics.median(r["wall_s"] for r in on),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in on),
            **{k: statistics.median(r["chronos"][k] for r in on) for k in ("load_s", "predict_s")},
        }
    return figures


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bolt-small-random"
        subprocess.run(
            [sys.executable, "-c", BUILD, str(model)], capture_output=True, check=True, cwd=ROOT
        )
        subprocess.run(
            [sys.executable, "-c", EXPORT, "chronos-export", "--model", str(model)],
            capture_output=True,
            check=True,
        )
        size_mb = (model / "model.safetensors").stat().st_size / 2**20
        import_s = min(
            float(
                subprocess.run(
                    [sys.executable, "-c", IMPORT_TIME],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                ).stdout
            )
            for _ in range(repeats)
        )
        print(
            "Chronos-Bolt-Small architecture with RANDOM weights: time and memory only, "
            "not forecast quality"
        )
        print(
            f"model file {size_mb:.0f} MB; the library's import of torch + transformers + chronos "
            f"after the service's own imports takes {import_s:.2f} s of its load_s"
        )
        print(
            f"{'service':<16}{'wall s off':>11}{'numpy':>14}{'library':>14}"
            f"{'peak RSS MB off':>17}{'numpy':>12}{'library':>12}"
            f"{'load s np/lib':>15}{'predict s np/lib':>18}"
        )
        for service in BENCH_SERVICES:
            f = paired_runs(service, Path(tmp), model, repeats)
            off, fast, lib = f["off"], f["numpy"], f["library"]
            print(
                f"{service:<16}{off['wall_s']:>11.1f}"
                + "".join(f"{b['wall_s']:>7.1f} ({b['ratio']:.2f}x)".rjust(14) for b in (fast, lib))
                + f"{off['peak_rss_mb']:>17.0f}"
                + "".join(
                    f"{b['peak_rss_mb']:.0f} (+{b['peak_rss_mb'] - off['peak_rss_mb']:.0f})".rjust(
                        12
                    )
                    for b in (fast, lib)
                )
                + f"{fast['load_s']:>9.2f}/{lib['load_s']:<5.2f}"
                + f"{fast['predict_s']:>12.2f}/{lib['predict_s']:<5.2f}"
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"(wall s: median of {repeats}; x: median of the {repeats} on/off ratios, each pair run "
        f"side by side; peak RSS: the largest; {os.cpu_count()} CPUs, load average {load}; "
        "embedded data)"
    )


if __name__ == "__main__":
    main()
