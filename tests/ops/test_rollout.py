"""Per-service Chronos rollout on a temporary copy of the project."""

import os
import pwd
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


def test_a_linked_env_stays_a_link_and_its_file_is_edited(project, tmp_path, capsys):
    """services/<s>/.env -> a file kept elsewhere (e.g. /etc/fx/7d.env): the link is kept."""
    kept = tmp_path / "etc" / "7d.env"
    kept.parent.mkdir()
    kept.write_text("# operator's\nENABLE_CHRONOS=false\n")
    link = project / "services/forecaster_7d/.env"
    link.symlink_to(kept)
    args = ["rollout", "--root", str(project), "--service", "forecaster_7d", "--chronos", "on"]
    assert main(args) == 0
    assert capsys.readouterr().out == (
        f"forecaster_7d: ENABLE_CHRONOS false -> true in {kept} (linked from {link})\n"
    )
    assert link.is_symlink() and link.readlink() == kept
    assert kept.read_text() == "# operator's\nENABLE_CHRONOS=true\n"
    assert sorted(p.name for p in kept.parent.iterdir()) == ["7d.env"]  # no staging left


def test_a_dangling_link_is_refused(project, tmp_path, capsys):
    link = project / "services/forecaster_7d/.env"
    link.symlink_to(tmp_path / "gone.env")
    args = ["rollout", "--root", str(project), "--service", "forecaster_7d", "--chronos", "on"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {link} is a link to {tmp_path / 'gone.env'}, which is not a file; create that "
        "file (or point the link at the service's settings) and run the rollout again\n"
    )
    assert not (tmp_path / "gone.env").exists() and link.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the .env belongs to another user")
def test_root_keeps_the_owner_and_mode_of_the_env(project):
    env_file = project / "services/forecaster_7d/.env"
    env_file.write_text("ENABLE_CHRONOS=false\n")
    nobody = pwd.getpwnam("nobody")
    os.chown(env_file, nobody.pw_uid, nobody.pw_gid)
    env_file.chmod(0o600)
    main(["rollout", "--root", str(project), "--service", "forecaster_7d", "--chronos", "on"])
    stat = env_file.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (nobody.pw_uid, nobody.pw_gid, 0o600)
    assert env_file.read_text() == "ENABLE_CHRONOS=true\n"


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
