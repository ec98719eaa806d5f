"""Per-service Chronos rollout on a temporary copy of the project."""

import shutil
import subprocess

import pytest
from fxforecast.cli import main
from fxforecast.settings import load_settings
from helpers import ROOT


@pytest.fixture
def project(tmp_path):
    shutil.copytree(
        ROOT / "services",
        tmp_path / "services",
        ignore=shutil.ignore_patterns(".env", "__pycache__"),
    )
    return tmp_path


def test_enable_creates_env_from_example_and_says_so(project, capsys):
    assert (
        main(["rollout", "--root", str(project), "--service", "forecaster_7d", "--chronos", "on"])
        == 0
    )
    out = capsys.readouterr().out
    assert "ENABLE_CHRONOS false -> true" in out and "created from .env.example" in out
    env_file = project / "services/forecaster_7d/.env"
    assert load_settings(env_file, environ={}).enable_chronos is True
    # Only that one line differs from the example: comments and other keys are kept.
    example = (project / "services/forecaster_7d/.env.example").read_text().splitlines()
    changed = [
        (a, b) for a, b in zip(example, env_file.read_text().splitlines(), strict=True) if a != b
    ]
    assert changed == [("ENABLE_CHRONOS=false", "ENABLE_CHRONOS=true")]
    assert not (project / "services/forecaster_15d/.env").exists()


def test_disable_keeps_operator_edits(project, capsys):
    env_file = project / "services/forecaster_15d/.env"
    env_file.write_text("# mine\nSTALE_DATA_DAYS=9\nENABLE_CHRONOS = yes  # trial\n")
    main(["rollout", "--root", str(project), "--service", "forecaster_15d", "--chronos", "off"])
    assert "ENABLE_CHRONOS yes -> false" in capsys.readouterr().out
    assert env_file.read_text() == "# mine\nSTALE_DATA_DAYS=9\nENABLE_CHRONOS=false\n"
    main(["rollout", "--root", str(project), "--service", "forecaster_15d", "--chronos", "off"])
    assert "already false" in capsys.readouterr().out


def test_missing_key_is_appended(project):
    env_file = project / "services/forecaster_30d/.env"
    env_file.write_text("STALE_DATA_DAYS=9")  # no newline at the end
    main(["rollout", "--root", str(project), "--service", "forecaster_30d", "--chronos", "on"])
    assert env_file.read_text() == "STALE_DATA_DAYS=9\nENABLE_CHRONOS=true\n"


def test_unknown_service_is_a_clear_error(project, capsys):
    code = main(
        ["rollout", "--root", str(project), "--service", "forecaster_8d", "--chronos", "on"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown service 'forecaster_8d'" in err and "forecaster_7d" in err
    assert not list(project.glob("services/*/.env"))


def test_make_targets(project):
    """The Makefile targets on the copy (its .venv borrowed from this checkout)."""
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, project / name)
    (project / ".venv").symlink_to(ROOT / ".venv")
    done = subprocess.run(
        ["make", "-s", "enable-chronos", "SERVICE=forecaster_90d"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "forecaster_90d: ENABLE_CHRONOS false -> true" in done.stdout
    done = subprocess.run(
        ["make", "-s", "disable-chronos", "SERVICE=nope"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "unknown service 'nope'" in done.stderr
    done = subprocess.run(
        ["make", "-s", "disable-chronos"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode != 0 and "give SERVICE=" in done.stderr
