"""The numpy fast path for Chronos-Bolt against the library, and its export and fallbacks.

The reference is always the chronos-forecasting pipeline loaded from the same folder; models are
built at test time with the library's own classes (random weights): the tiny one of
conftest.py and one of Bolt-Small's exact architecture."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from fxforecast.cli import main
from fxforecast.engine.members import chronos_files
from fxforecast.engine.members.chronos import ChronosBolt
from fxforecast.engine.members.chronos_files import EXPORT_FILE
from fxforecast.engine.members.chronos_library import load_pipeline
from fxforecast.errors import ConfigError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import load
from fxforecast.settings import load_settings
from test_chronos import ONLY_CHRONOS, check_in_subprocess, run_service

from benchmarks.bench_chronos import save_random_bolt

LEVELS9 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.fixture(scope="module")
def closes() -> np.ndarray:
    return load().closes().to_numpy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_bolt) -> Path:
    """A copy of the session's tiny model, exported (the original stays library-only)."""
    folder = tmp_path_factory.mktemp("models") / "tiny"
    shutil.copytree(tiny_bolt, folder)
    assert main(["chronos-export", "--model", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def bolt_small(tmp_path_factory) -> Path:
    """Bolt-Small's architecture (47.7M parameters), random weights, exported."""
    folder = save_random_bolt(tmp_path_factory.mktemp("models") / "bolt-small")
    assert main(["chronos-export", "--model", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def tiny_pair(tiny):
    """Both backends loaded once from the same folder: (numpy, library)."""
    return chronos_files.load(tiny), load_pipeline(str(tiny), "cpu")


@pytest.fixture(scope="module")
def bolt_small_pair(bolt_small):
    return chronos_files.load(bolt_small), load_pipeline(str(bolt_small), "cpu")


def windows(closes: np.ndarray, length: int, batch: int) -> list[np.ndarray]:
    """`batch` contexts of `length` closes ending a week apart, the newest first."""
    return [closes[len(closes) - length - 5 * i : len(closes) - 5 * i] for i in range(batch)]


def gappy(closes: np.ndarray) -> np.ndarray:
    context = closes[-365:].copy()
    context[[7, 50, 51, 200]] = np.nan  # missing closes
    context[100:140] = np.nan  # whole patches missing
    return context


def assert_parity(pair, contexts: list[np.ndarray]) -> None:
    """Every quantile of every step, numpy path vs library, within 1e-4 relative; and in the
    model's own scaled units (value - mean) / std, where the network's output is not dwarfed by
    the series' level, within 1e-3."""
    fast, library = pair
    expected = library.predict_quantiles(contexts, 64, LEVELS9)
    got = fast.predict_quantiles(contexts, 64, LEVELS9)
    assert got.shape == expected.shape == (len(contexts), 64, 9)
    np.testing.assert_allclose(got, expected, rtol=chronos_files.PARITY_RTOL, atol=0)
    loc = np.array([np.nanmean(c[-2048:]) for c in contexts])[:, None, None]
    scale = np.array([np.nanstd(c[-2048:]) for c in contexts])[:, None, None]
    np.testing.assert_allclose((got - loc) / scale, (expected - loc) / scale, rtol=0, atol=1e-3)


@pytest.mark.parametrize("length", [90, 180, 365, 2048])
@pytest.mark.parametrize("batch", [1, 156])
def test_tiny_model_parity(tiny_pair, closes, length, batch):
    assert_parity(tiny_pair, windows(closes, length, batch))


def test_tiny_model_parity_with_gaps_and_mixed_lengths(tiny_pair, closes):
    assert_parity(tiny_pair, [gappy(closes), closes[-90:], closes[-2500:], closes[-1000:-900]])


@pytest.mark.parametrize(
    "length, batch", [(90, 1), (180, 1), (365, 1), (2048, 1), (180, 156), (365, 156)]
)
def test_bolt_small_parity(bolt_small_pair, closes, length, batch):
    """Batches of 156 at the contexts the 7/15-day and 90-day services give them."""
    assert_parity(bolt_small_pair, windows(closes, length, batch))


def test_bolt_small_parity_with_gaps(bolt_small_pair, closes):
    assert_parity(bolt_small_pair, [gappy(closes), closes[-90:], closes[-2048:]])


def test_the_65th_step_at_90_days_is_the_same_on_both_backends(bolt_small):
    data = load()
    origins = list(data.frame.index[-100::10])
    paths = {}
    for backend in ("numpy", "library"):
        member = ChronosBolt(
            model=str(bolt_small),
            min_available_mb=1,
            context_length=horizon_params(90).chronos_context,
            backend=backend,
            device="cpu",
        )
        fitted = member.fit(data.frame)
        paths[backend] = fitted.forecast(data.frame, origins, [65] * len(origins))
        assert member.figures["backend_used"] == backend
        member.release()
    for fast, library in zip(paths["numpy"], paths["library"], strict=True):
        assert fast.shape == (65, 5)
        np.testing.assert_allclose(fast, library, rtol=1e-4)


def test_export_writes_its_file_and_a_run_takes_the_numpy_path_without_torch(tmp_path, tiny):
    export = json.loads((tiny / EXPORT_FILE).read_text())
    assert export["architecture"]["context_length"] == 2048
    assert 0 <= export["parity"]["max_relative_difference"] <= 1e-4
    record = check_in_subprocess(
        tmp_path, f"{ONLY_CHRONOS}ENABLE_CHRONOS=true\nCHRONOS_MODEL={tiny}\n", {}
    )  # asserts that neither torch, transformers nor chronos was imported
    block = record["chronos"]
    assert block["status"] == "ok" and record["status"] == "ok"
    assert (block["backend"], block["backend_used"]) == ("auto", "numpy")
    assert (block["device"], block["device_used"]) == ("auto", "cpu")
    assert block["fast_path_reason"] is None
    assert block["load_s"] > 0 and block["predict_s"] > 0


def test_export_of_a_folder_that_is_not_a_model_is_one_line_error(tmp_path, capsys):
    assert main(["chronos-export", "--model", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a model folder" in err
    assert len(err.strip().splitlines()) == 1


def _header(body: bytes) -> bytes:
    return len(body).to_bytes(8, "little") + body


@pytest.mark.parametrize(
    "content, why",
    [
        (b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>", "first 8 bytes"),
        (b"", "first 8 bytes"),
        (b"\x10\x00\x00", "first 8 bytes"),
        (_header(b"not json at all!") + b"\x00" * 64, "its header is not JSON"),
        (_header(b"[1, 2, 3]"), "its header is not a JSON object"),
        (
            _header(b'{"w": {"dtype": "F32", "shape": "x", "data_offsets": [0, 4]}}'),
            "entry for 'w'",
        ),
        (
            _header(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}'),
            "entry for 'w'",
        ),
        (_header(b'{"w": [0, 4]}'), "entry for 'w'"),
        (_header(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 99]}}'), "truncated"),
    ],
    ids=[
        "an-html-page",
        "empty",
        "three-bytes",
        "header-not-json",
        "header-a-list",
        "shape-not-a-list",
        "range-backwards",
        "entry-not-an-object",
        "range-past-the-end",
    ],
)
def test_export_of_a_file_that_is_not_safetensors_is_one_line(
    tmp_path, tiny_bolt, capsys, content, why
):
    """Today an HTML page saved as model.safetensors gives a MemoryError, an odd header a
    TypeError: tracebacks."""
    folder = copy_of(tiny_bolt, tmp_path)
    (folder / "model.safetensors").write_bytes(content)
    assert main(["chronos-export", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and why in err
    assert err.startswith(f"error: cannot export {folder}: ")
    assert str(folder / "model.safetensors") in err or "model.safetensors is truncated" in err
    assert not (folder / EXPORT_FILE).exists()


def copy_of(tiny: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny, folder)
    return folder


def without_export(folder: Path) -> None:
    (folder / EXPORT_FILE).unlink()


def corrupt_export(folder: Path) -> None:
    (folder / EXPORT_FILE).write_text('{"format": 1, "architec')


def export_of_another_model(folder: Path) -> None:
    """Same architecture, other weights: the export no longer matches."""
    other = save_random_bolt(folder.parent / "other", **TINY, initializer_factor=0.5)
    shutil.copyfile(other / "model.safetensors", folder / "model.safetensors")


def other_context_length(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["chronos_config"]["context_length"] = 512
    (folder / "config.json").write_text(json.dumps(config))


def truncated_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])


@pytest.mark.parametrize(
    "break_export, reason",
    [
        (without_export, f"no {EXPORT_FILE} in "),
        (corrupt_export, "is unreadable or corrupt"),
        (export_of_another_model, "was exported from another model"),
        (other_context_length, "was exported for context length 2048, the model's is 512"),
        (truncated_weights, "model.safetensors is truncated or corrupt"),
    ],
)
def test_a_bad_export_falls_back_to_the_library_or_to_no_chronos(
    tmp_path, tiny, break_export, reason
):
    folder = copy_of(tiny, tmp_path)
    break_export(folder)
    settings = f"{ONLY_CHRONOS}ENABLE_CHRONOS=true\nCHRONOS_MODEL={folder}\n"
    (tmp_path / "auto").mkdir()
    (tmp_path / "numpy").mkdir()
    # auto: the library runs it (unless the weights themselves are broken), with the reason
    code, record = run_service(tmp_path / "auto", 7, settings)
    block = record["chronos"]
    assert code == 0 and reason in block["fast_path_reason"]
    assert "\n" not in block["fast_path_reason"]
    if break_export is truncated_weights:
        assert block["status"] == "failed" and record["status"] == "degraded"
    else:
        assert block["status"] == "ok" and block["backend_used"] == "library"
    # numpy: no library fallback; the run goes on without Chronos
    code, record = run_service(tmp_path / "numpy", 7, settings + "CHRONOS_BACKEND=numpy\n")
    block = record["chronos"]
    assert code == 0 and record["status"] == "degraded"
    assert block["status"] == "failed" and block["backend_used"] is None
    assert block["reason"].startswith("ChronosUnavailable: CHRONOS_BACKEND=numpy: ")
    assert reason in block["reason"] and "\n" not in block["reason"]


@pytest.mark.parametrize(
    "backend, device, used, reason",
    [
        ("library", "auto", ("library", "cpu"), None),
        ("library", "cpu", ("library", "cpu"), None),
        ("auto", "cpu", ("numpy", "cpu"), None),
        ("auto", "cuda", (None, None), "CHRONOS_DEVICE=cuda: the numpy path runs on the CPU"),
    ],
)
def test_backend_and_device_settings_are_recorded(tmp_path, tiny, backend, device, used, reason):
    """No GPU here: CHRONOS_DEVICE=cuda goes to the library, which finds no CUDA device."""
    settings = (
        f"{ONLY_CHRONOS}ENABLE_CHRONOS=true\nCHRONOS_MODEL={tiny}\n"
        f"CHRONOS_BACKEND={backend}\nCHRONOS_DEVICE={device}\n"
    )
    code, record = run_service(tmp_path, 7, settings)
    block = record["chronos"]
    assert code == 0
    assert (block["backend"], block["device"]) == (backend, device)
    assert (block["backend_used"], block["device_used"]) == used
    if reason is None:
        assert block["fast_path_reason"] is None and block["status"] == "ok"
    else:
        assert block["fast_path_reason"].startswith(reason) and block["status"] == "failed"
        assert "CHRONOS_DEVICE=cuda but torch finds no CUDA device" in block["reason"]


@pytest.mark.parametrize(
    "environ, message",
    [
        (
            {"CHRONOS_BACKEND": "onnx"},
            "CHRONOS_BACKEND='onnx' in the environment: expected one of auto",
        ),
        (
            {"CHRONOS_DEVICE": "gpu"},
            "CHRONOS_DEVICE='gpu' in the environment: expected one of auto",
        ),
        (
            {"CHRONOS_BACKEND": "numpy", "CHRONOS_DEVICE": "cuda"},
            "CHRONOS_BACKEND=numpy runs on the CPU only",
        ),
    ],
)
def test_backend_and_device_settings_are_validated(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(None, environ=environ)


def test_a_hub_id_with_the_numpy_backend_is_one_line_reason(tmp_path):
    environ = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    record = check_in_subprocess(
        tmp_path, ONLY_CHRONOS + "ENABLE_CHRONOS=true\nCHRONOS_BACKEND=numpy\n", environ
    )
    assert record["chronos"]["status"] == "failed"
    assert (
        "is a Hugging Face id; the numpy path needs a local folder" in (record["chronos"]["reason"])
    )


CLI = "import sys; from fxforecast.cli import main; sys.exit(main(sys.argv[1:]))"


def test_chronos_export_command_in_a_fresh_interpreter(tmp_path, tiny):
    folder = copy_of(tiny, tmp_path)
    without_export(folder)
    done = subprocess.run(
        [sys.executable, "-c", CLI, "chronos-export", "--model", str(folder)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"exported {folder / EXPORT_FILE}: the numpy path matches")
    assert chronos_files.load(folder).context_length == 2048
