"""Commands that write, started as root where another user (the services' user in an install)
owns the folders: refused in one line naming that user and the command to run instead, with
nothing written. The whole installed flow is rehearsed in tests/test_deploy.py."""

import os
import pwd
import shlex
import subprocess
import sys

import pytest
from helpers import FAST_MEMBERS, error_line, service_env, service_script

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chowns to another user")
OWNER = "nobody"


def snapshot(folder):
    """Every path under `folder` with its owner, size and modification time."""
    return sorted(
        (str(p.relative_to(folder)), p.lstat().st_uid, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    )


@pytest.fixture
def install_layout(tmp_path):
    """logs/, data/ and output/ belonging to the services' user, as deploy/install.sh leaves
    them (logs/ already holds a run's lock and metrics line)."""
    uid = pwd.getpwnam(OWNER).pw_uid
    for name in ("logs", "data", "output"):
        (tmp_path / name).mkdir()
        os.chown(tmp_path / name, uid, -1)
    (tmp_path / "logs/metrics.jsonl").write_text("")
    os.chown(tmp_path / "logs/metrics.jsonl", uid, -1)
    env = service_env(tmp_path, **FAST_MEMBERS)
    env.update(
        LOG_DIR=str(tmp_path / "logs"),
        METRICS_LOG_PATH=str(tmp_path / "logs/metrics.jsonl"),
        FORECAST_DB=str(tmp_path / "data/forecasts.sqlite"),
    )
    return env


def test_a_root_run_in_the_service_users_folders_is_refused_and_writes_nothing(
    tmp_path, install_layout
):
    script = service_script("forecaster_7d", tmp_path)
    before = snapshot(tmp_path)
    command = [sys.executable, str(script)]
    done = subprocess.run(command, env=install_layout, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    typed = shlex.join(command)
    assert error_line(done.stderr) == (
        f"error: started as root, but {tmp_path / 'logs'} belongs to {OWNER}, who runs the "
        f"services: a file root wrote there would stop {OWNER}'s cron runs; run it as {OWNER}: "
        f"runuser -u {OWNER} -- {typed}   (or: sudo -u {OWNER} {typed})"
    )
    assert done.stderr.count("\n") == 1  # no log line on the console either
    assert snapshot(tmp_path) == before


def test_root_report_fetch_and_a_bad_setting_are_refused_too(tmp_path, install_layout):
    """Every command that writes there; a run stopped by a bad setting would append its
    metrics line as root (creating the file when missing)."""
    before = snapshot(tmp_path)
    fxforecast = [sys.executable, "-m", "fxforecast"]
    for command, extra in (
        ([*fxforecast, "report"], {}),
        ([*fxforecast, "fetch-data"], {"DATA_DIR": str(tmp_path / "data")}),
        ([*fxforecast, "run", "--horizon", "7"], {"ENABLE_VAR": "maybe"}),
    ):
        env = {**install_layout, **extra}
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2, command
        line = error_line(done.stderr)
        assert line.startswith("error: started as root, but ") and f"runuser -u {OWNER} --" in line
    assert snapshot(tmp_path) == before


def test_a_cache_dir_of_the_service_user_outside_data_refuses_root_too(tmp_path):
    """CACHE_DIR elsewhere (a server's /var/cache/fxforecast): the member cache and the report's
    charts there are the service user's; a root run or `fxforecast report` is refused, not let
    in to leave root-owned files behind."""
    cache = tmp_path / "var-cache"
    cache.mkdir()
    os.chown(cache, pwd.getpwnam(OWNER).pw_uid, -1)
    env = {**service_env(tmp_path, **FAST_MEMBERS), "CACHE_DIR": str(cache)}
    (tmp_path / "metrics.jsonl").write_text("")
    for command in ("report", "run --horizon 7"):
        command = [sys.executable, "-m", "fxforecast", *command.split()]
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2, command
        line = error_line(done.stderr)
        assert line.startswith(f"error: started as root, but {cache} belongs to"), command
    assert list(cache.iterdir()) == []
