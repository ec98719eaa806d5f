"""`make bench-chronos`: what Chronos-Bolt-Small costs a service run, in time and memory.

The real weights cannot be downloaded here, so the model is built with Chronos-Bolt-Small's exact
architecture (47.7M parameters, 191 MB in float32) and RANDOM weights: the compute and memory are
the real model's, the forecasts are not. Each service runs in a fresh process with Chronos off,
then on; the figures come from each run's metrics line. Prints numbers; asserts nothing.
"""

import os
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


def timed_runs(service: str, workdir: Path, env: dict, repeats: int) -> dict:
    """Fastest wall time and Chronos figures (other work on the machine only ever adds time),
    largest peak RSS."""
    runs = [run_once(service, workdir, env) for _ in range(repeats)]
    fastest = min(runs, key=lambda r: r["wall_s"])
    chronos = {k: min(r["chronos"][k] or 0 for r in runs) for k in ("load_s", "predict_s")}
    return {
        "wall_s": fastest["wall_s"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "status": fastest["status"],
        "chronos": {**fastest["chronos"], **chronos},
    }


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bolt-small-random"
        subprocess.run(
            [sys.executable, "-c", BUILD, str(model)], capture_output=True, check=True, cwd=ROOT
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
            f"model file {size_mb:.0f} MB; importing torch + transformers + chronos after the "
            f"service's own imports takes {import_s:.2f} s of load_s"
        )
        print(
            f"{'service':<16}{'wall s off/on':>15}{'peak RSS MB off/on':>20}{'load s':>8}"
            f"{'predict s':>11}{'RSS MB before/after/released':>30}"
        )
        for service in BENCH_SERVICES:
            off = timed_runs(service, Path(tmp), {"ENABLE_CHRONOS": "false"}, repeats)
            on = timed_runs(
                service, Path(tmp), {"ENABLE_CHRONOS": "true", "CHRONOS_MODEL": str(model)}, repeats
            )
            block = on["chronos"]
            memory = (
                f"{block['rss_before_mb']:.0f}/{block['rss_after_mb']:.0f}/"
                f"{block['rss_released_mb']:.0f}"
            )
            print(
                f"{service:<16}{off['wall_s']:>7.1f}/{on['wall_s']:<7.1f}"
                f"{off['peak_rss_mb']:>12.0f}/{on['peak_rss_mb']:<7.0f}"
                f"{block['load_s']:>8.2f}{block['predict_s']:>11.2f}{memory:>30}"
                f"  {off['status']}/{on['status']} (chronos {block['status']})"
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"(times: fastest of {repeats} fresh runs; peak RSS: the largest; {os.cpu_count()} CPUs, "
        f"load average {load}; embedded data)"
    )


if __name__ == "__main__":
    main()
