"""Chronos-Bolt as an ensemble member, through the library's real loading and prediction path.

No weights can be downloaded here: a tiny ChronosBolt model is built once with the library's own
classes and saved to a temporary folder; the services load it like the real one."""

import json
import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from fxforecast.cli import main
from fxforecast.engine import ensemble
from fxforecast.engine.members import chronos as chronos_module
from fxforecast.engine.members import configured_members
from fxforecast.engine.members.chronos import OUTER_RATIO, ensemble_levels
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.horizons import HORIZONS, horizon_params
from fxforecast.marketdata.clean import load
from fxforecast.quantiles import LEVELS
from fxforecast.settings import Settings, load_settings
from helpers import ANY_DATA_AGE

ONLY_CHRONOS = "ENABLE_ARIMA=false\nENABLE_VAR=false\nENABLE_RF=false\n"
# The metrics line's chronos block, in order: the list, plus rss_released_mb, and the
# backend and device asked for and used (test_chronos_fast.py).
BLOCK_KEYS = ["enabled", "model", "backend", "device", "backend_used", "device_used"]
BLOCK_KEYS += ["fast_path_reason", "context_length", "load_s", "predict_s", "rss_before_mb"]
BLOCK_KEYS += ["rss_after_mb", "rss_released_mb", "available_mb", "status", "reason"]


@pytest.fixture(scope="module")
def data():
    return load()


def chronos(model: Path, days: int, context_length: int | None = None):
    """The Chronos member a service of this horizon builds (memory guard at 1 MB)."""
    settings = Settings(
        enable_chronos=True,
        chronos_model=str(model),
        chronos_min_available_mb=1,
        chronos_context_length=context_length,
    )
    return configured_members(settings, horizon_params(days))[-1][0]


def write_env(tmp_path, settings: str) -> Path:
    """A service .env whose outputs, logs and metrics line all land in tmp_path."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"OUTPUT_DIR={tmp_path / 'output'}\nLOG_DIR={tmp_path / 'logs'}\n"
        f"METRICS_LOG_PATH={tmp_path / 'metrics.jsonl'}\n"
        f"STALE_DATA_DAYS={ANY_DATA_AGE['STALE_DATA_DAYS']}\n{settings}"
    )
    return env_file


def run_service(tmp_path, horizon, settings: str) -> tuple[int, dict]:
    """One service run in this process; its exit code and its metrics line."""
    env_file = write_env(tmp_path, settings)
    code = main(["run", "--horizon", str(horizon), "--env-file", str(env_file)])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    return code, json.loads(lines[0])


@pytest.mark.parametrize("horizon, context, steps", [(7, 180, 5), (90, 365, 64)])
def test_service_end_to_end_with_chronos(tmp_path, tiny_bolt, horizon, context, steps):
    code, record = run_service(
        tmp_path, horizon, f"ENABLE_CHRONOS=true\nCHRONOS_MODEL={tiny_bolt}\n"
    )
    assert code == 0
    assert record["status"] == "ok"
    statuses = {name: m["status"] for name, m in record["members"].items()}
    assert statuses.pop("random_walk_empirical") == "disabled"  # off by default
    assert set(statuses.values()) == {"ok"}
    assert record["members"]["chronos"]["weight"] > 0
    block = record["chronos"]
    assert list(block) == BLOCK_KEYS
    assert block["enabled"] is True and block["status"] == "ok" and block["reason"] is None
    assert block["model"] == str(tiny_bolt)
    assert block["context_length"] == context
    assert block["load_s"] > 0 and block["predict_s"] > 0
    assert block["rss_after_mb"] > block["rss_before_mb"] > 0
    forecast = json.loads(
        (
            tmp_path / "output" / f"forecaster_{horizon}d" / "2024-11-29" / "forecast.json"
        ).read_text()
    )
    assert len(forecast["steps"]) == steps
    assert forecast["weights"]["chronos"] == record["members"]["chronos"]["weight"]


def test_validation_origins_go_to_a_zero_shot_member_in_one_call(data):
    """Members refitted on a grid are called once per anchor; a zero-shot one once in all."""
    calls = {}

    def counting(member_class, zero_shot):
        class Counting(member_class):
            def fit(self, frame):
                fitted = super().fit(frame)
                forecast = fitted.forecast

                def counted(*args):
                    calls[self.name] = calls.get(self.name, 0) + 1
                    return forecast(*args)

                fitted.forecast = counted
                return fitted

        Counting.zero_shot, Counting.name = zero_shot, f"zero_shot={zero_shot}"
        return Counting()

    params = horizon_params(7)
    members = [(counting(RandomWalk, False), True), (counting(RandomWalk, True), True)]
    result = ensemble.forecast(data, params, members, timeout_s=60)
    assert result.validation_origins == params.validation_origins
    assert calls["zero_shot=True"] == 2  # the validation origins, then the as-of
    assert calls["zero_shot=False"] > 2  # one per refit anchor, then the as-of
    a, b = (result.members[name].validation for name in ("zero_shot=False", "zero_shot=True"))
    assert all(np.allclose(x, y) for x, y in zip(a, b, strict=True))  # same paths either way


@pytest.mark.parametrize("horizon, expected", [(7, 180), (15, 180), (30, 90), (90, 365)])
def test_context_length_follows_the_horizon(data, tiny_bolt, horizon, expected):
    member = chronos(tiny_bolt, horizon)
    member.fit(data.frame).forecast(data.frame, [data.as_of], [5])
    assert member.figures["context_length"] == expected


def test_context_length_override_is_capped_at_history_and_model(data, tiny_bolt):
    closes = data.closes()
    member = chronos(tiny_bolt, 7, 50)
    fitted = member.fit(data.frame)
    fitted.forecast(data.frame, [data.as_of], [5])
    assert member.figures["context_length"] == 50
    member = chronos(tiny_bolt, 7, 100_000)
    fitted = member.fit(data.frame)
    fitted.forecast(data.frame, [closes.index[300]], [5])
    assert member.figures["context_length"] == 301  # all the closes up to that origin
    fitted.forecast(data.frame, [data.as_of], [5])
    assert closes.size > 2048 and member.figures["context_length"] == 2048  # the model's most


def test_a_forecast_reads_no_row_after_its_origin(data, tiny_bolt):
    fitted = chronos(tiny_bolt, 30).fit(data.frame)
    origin = data.frame.index[-200]

    def scaled(rows):
        frame = data.frame.copy()
        frame.loc[rows, "usdclp"] *= 1.5
        return frame

    (as_given,) = fitted.forecast(data.frame, [origin], [22])
    (later_changed,) = fitted.forecast(scaled(data.frame.index > origin), [origin], [22])
    (earlier_changed,) = fitted.forecast(scaled(data.frame.index <= origin), [origin], [22])
    np.testing.assert_array_equal(as_given, later_changed)
    np.testing.assert_allclose(earlier_changed, 1.5 * as_given, rtol=1e-4)  # Bolt is scale-free


def test_outer_quantiles_are_wider_than_bolts_own(data, tiny_bolt):
    """Bolt clamps 0.025/0.975 to its 0.1/0.9; the member's must lie strictly outside them."""
    fitted = chronos(tiny_bolt, 90).fit(data.frame)
    origins = list(data.frame.index[-60::10])
    for path in fitted.forecast(data.frame, origins, [64] * len(origins)):
        assert path.shape == (64, len(LEVELS))
        assert np.all(path[:, 0] < path[:, 1]) and np.all(path[:, 4] > path[:, 3])
        assert np.all(np.diff(path, axis=1) > 0)


def test_outer_levels_extend_each_side_by_the_normal_ratio():
    bolt = np.array([[990.0, 1000.0, 1020.0], [980.0, 1001.0, 1030.0]])
    levels = np.log(ensemble_levels(bolt, 2))
    median = np.log(bolt[:, 1])
    np.testing.assert_allclose(levels[:, [1, 2, 3]], np.log(bolt))
    np.testing.assert_allclose(median - levels[:, 0], OUTER_RATIO * (median - np.log(bolt[:, 0])))
    np.testing.assert_allclose(levels[:, 4] - median, OUTER_RATIO * (np.log(bolt[:, 2]) - median))
    assert pytest.approx(1.959964 / 1.281552) == OUTER_RATIO


def test_steps_past_the_models_length_widen_by_square_root_of_time(data, tiny_bolt):
    fitted = chronos(tiny_bolt, 90).fit(data.frame)
    (path,) = fitted.forecast(data.frame, [data.as_of], [65])
    assert path.shape == (65, len(LEVELS))
    log_path = np.log(path)
    assert log_path[64, 2] == pytest.approx(log_path[63, 2])
    spread = log_path - log_path[:, [2]]
    np.testing.assert_allclose(spread[64], spread[63] * np.sqrt(65 / 64))


def test_release_frees_the_pipeline_and_the_next_use_reloads(data, tiny_bolt):
    member = chronos(tiny_bolt, 7)
    fitted = member.fit(data.frame)
    first = fitted.forecast(data.frame, [data.as_of], [5])
    (loaded,) = chronos_module._pipelines.values()
    model = weakref.ref(loaded.pipeline.model)
    del loaded
    member.release()
    assert chronos_module._pipelines == {} and model() is None
    assert member.figures["rss_released_mb"] > 0
    again = fitted.forecast(data.frame, [data.as_of], [5])
    np.testing.assert_array_equal(first[0], again[0])
    member.release()


def corrupt_config(folder: Path) -> str:
    (folder / "config.json").write_text("{not json")
    return str(folder)


def truncated_weights(folder: Path) -> str:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return str(folder)


def no_weights(folder: Path) -> str:
    (folder / "model.safetensors").unlink()
    return str(folder)


@pytest.mark.parametrize(
    "break_model, reason",
    [
        (lambda folder: str(folder / "missing"), "does not exist"),
        (corrupt_config, "is not a valid JSON file"),
        (truncated_weights, "cannot load CHRONOS_MODEL="),
        (no_weights, "has no model.safetensors"),
    ],
)
def test_a_model_that_cannot_load_degrades_the_run(tmp_path, tiny_bolt, break_model, reason):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bolt, folder)
    model = break_model(folder)
    code, record = run_service(
        tmp_path, 7, f"{ONLY_CHRONOS}ENABLE_CHRONOS=true\nCHRONOS_MODEL={model}\n"
    )
    assert code == 0
    assert record["status"] == "degraded"
    assert record["members"]["random_walk"]["status"] == "ok"
    assert record["members"]["chronos"]["status"] == "failed"
    block = record["chronos"]
    assert block["status"] == "failed" and block["load_s"] is None
    assert reason in block["reason"] and "\n" not in block["reason"]
    assert block["reason"] == record["members"]["chronos"]["reason"]
    assert (tmp_path / "output" / "forecaster_7d" / "2024-11-29" / "forecast.json").is_file()


CHECK_IMPORTS = """
import json, sys
from fxforecast.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": sorted(
    name for name in ("torch", "transformers", "chronos") if name in sys.modules)}))
"""


@pytest.mark.parametrize(
    "settings, status, reason",
    [
        ("ENABLE_CHRONOS=false\n", "disabled", "switched off in settings"),
        (
            "ENABLE_CHRONOS=true\nCHRONOS_MIN_AVAILABLE_MB=100000000\n",
            "skipped",
            "below CHRONOS_MIN_AVAILABLE_MB=100000000; Chronos skipped",
        ),
    ],
)
def test_chronos_off_or_skipped_never_imports_torch(tmp_path, settings, status, reason):
    """In a fresh interpreter: a run without Chronos does not pay for torch and transformers."""
    record = check_in_subprocess(tmp_path, ONLY_CHRONOS + settings, {})
    assert list(record["chronos"]) == BLOCK_KEYS
    assert record["chronos"]["status"] == status
    assert reason in record["chronos"]["reason"]
    assert record["chronos"]["enabled"] is (status != "disabled")
    assert record["status"] == ("ok" if status == "disabled" else "degraded")


def test_a_hub_id_without_network_degrades_the_run(tmp_path):
    """The default Hugging Face id, offline with an empty cache: the no-network case."""
    environ = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    record = check_in_subprocess(
        tmp_path,
        ONLY_CHRONOS + "ENABLE_CHRONOS=true\n",
        environ,
        heavy=["chronos", "torch", "transformers"],
    )
    assert record["status"] == "degraded"
    assert record["chronos"]["status"] == "failed"
    assert record["chronos"]["reason"].startswith(
        "ChronosUnavailable: cannot load CHRONOS_MODEL=amazon/chronos-bolt-small:"
    )


def check_in_subprocess(tmp_path, settings, environ, heavy=()) -> dict:
    env_file = write_env(tmp_path, settings)
    done = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, "run", "--horizon", "7", "--env-file", str(env_file)],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "heavy": sorted(heavy)}
    return json.loads((tmp_path / "metrics.jsonl").read_text())


def test_every_service_example_env_is_valid_and_keeps_chronos_off():
    root = Path(__file__).resolve().parents[2]
    examples = sorted(root.glob("services/forecaster_*/.env.example"))
    assert len(examples) == len(HORIZONS)
    for example in examples:
        settings = load_settings(example, environ={})
        assert settings.enable_chronos is False
        assert settings.chronos_model == "amazon/chronos-bolt-small"
        assert "HF_HUB_OFFLINE" in example.read_text()  # it lives in the environment, not .env


CLI = "import sys; from fxforecast.cli import main; sys.exit(main(sys.argv[1:]))"


def test_chronos_download_without_network_is_one_line_error(tmp_path):
    """Only the failure can be tested here: the download needs the Hugging Face hub."""
    done = subprocess.run(
        [sys.executable, "-c", CLI, "chronos-download", "--to", str(tmp_path / "m")],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: could not download amazon/chronos-bolt-small into ")
    assert len(done.stderr.strip().splitlines()) == 1
