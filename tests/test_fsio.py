"""The write primitives on a real file system: staging never outside a folder the writer owns,
sets published whole, metrics lines whole or absent on a full disk (RLIMIT_FSIZE gives the
short write a full disk gives)."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from fxforecast import fsio
from helpers import ROOT

SERVICE_USER = "nobody"  # any user other than root: the folders' owners are what is tested
# The system's Python, which every user can run (the project's may live under /root); fsio
# needs only the standard library.
SYSTEM_PYTHON = "/usr/bin/python3"
as_root = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists(),
    reason="needs root (to act as another user) and the system's python3",
)


@pytest.fixture
def open_tmp(request):
    """A temporary folder every user can reach (pytest's own is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="fxforecast-fsio-"))
    folder.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(folder))
    return folder


def as_user(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", SERVICE_USER, "--", SYSTEM_PYTHON, "-c", textwrap.dedent(code)],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
    )


def test_write_all_stages_inside_the_folder_and_leaves_only_the_files(tmp_path):
    folder = tmp_path / "data"
    fsio.write_all(folder, {"a.csv": b"1\n", "b.csv": b"2\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv"]
    assert (folder / "b.csv").read_bytes() == b"2\n"


@as_root
def test_a_service_user_writes_its_folder_under_a_root_owned_parent(open_tmp):
    """The installed layout: PREFIX is root's, data/ the service user's. Staging in PREFIX
    (the parent) failed with Permission denied, so the cache never updated."""
    prefix = open_tmp / "prefix"
    data = prefix / "data"
    data.mkdir(parents=True)
    prefix.chmod(0o755)
    user = pwd.getpwnam(SERVICE_USER)
    os.chown(data, user.pw_uid, user.pw_gid)
    done = as_user(
        f"""
        from pathlib import Path
        from fxforecast.fsio import write_all
        write_all(Path({str(data)!r}), {{"market_daily.csv": b"Date\\n"}})
        """
    )
    assert done.returncode == 0, done.stderr
    assert (data / "market_daily.csv").read_bytes() == b"Date\n"
    assert sorted(p.name for p in prefix.iterdir()) == ["data"]


def test_write_set_replaces_the_previous_set_whole(tmp_path):
    folder = tmp_path / "svc" / "2024-11-29"
    fsio.write_set(folder, {"forecast.json": b"old", "fan_chart.png": b"old"})
    fsio.write_set(folder, {"forecast.json": b"new", "forecast.csv": b"new"})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        "forecast.json": b"new",
        "forecast.csv": b"new",
    }
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2024-11-29"]


def test_write_set_that_fails_midway_leaves_the_previous_set(tmp_path, monkeypatch):
    folder = tmp_path / "svc" / "2024-11-29"
    old = {"forecast.json": b"old", "forecast.csv": b"old", "fan_chart.png": b"old"}
    fsio.write_set(folder, old)
    real = fsio._write_synced

    def fail_on_second(path, content):
        if path.name == "forecast.csv":
            raise OSError(28, "No space left on device")
        real(path, content)

    monkeypatch.setattr(fsio, "_write_synced", fail_on_second)
    with pytest.raises(OSError):
        fsio.write_set(folder, {name: b"new" for name in old})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == old
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2024-11-29"]


def test_a_killed_writers_set_is_never_published_and_is_cleaned_up(tmp_path):
    """A writer killed after writing one file of three: nothing is published, and the next
    writer removes its staging folder (its process is gone)."""
    parent = tmp_path / "svc"
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from fxforecast import fsio
        real = fsio._write_synced
        def die_after_first(path, content):
            real(path, content)
            os.kill(os.getpid(), signal.SIGKILL)
        fsio._write_synced = die_after_first
        fsio.write_set(Path({str(parent / "2024-11-29")!r}), {{"forecast.json": b"x", "b": b"y"}})
        """
    )
    done = subprocess.run([sys.executable, "-c", code])
    assert done.returncode == -signal.SIGKILL
    assert [p.name for p in parent.iterdir()] == [f".2024-11-29.partial-{_pid_of(parent)}"]
    fsio.write_set(parent / "2024-11-30", {"forecast.json": b"z"})
    assert sorted(p.name for p in parent.iterdir()) == ["2024-11-30"]


def _pid_of(parent):
    [staging] = parent.iterdir()
    return staging.name.rsplit("-", 1)[1]


def test_staging_of_a_live_writer_is_left_alone(tmp_path):
    live = tmp_path / f".2024-11-29.partial-{os.getppid()}"
    live.mkdir()
    assert fsio.remove_staging(tmp_path) == []
    assert live.is_dir()


APPEND_WITH_FILE_LIMIT = """
import resource, signal, sys
from pathlib import Path
from fxforecast.fsio import append_locked
path = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a short write and EFBIG, as a full disk gives
limit = path.stat().st_size + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    append_locked(path, sys.argv[3].encode() + b"\\n")
except OSError as exc:
    print(exc.errno)
    sys.exit(1)
"""


def test_a_metrics_line_that_does_not_fit_is_not_left_torn(tmp_path):
    path = tmp_path / "metrics.jsonl"
    first = json.dumps({"run": 1, "pad": "x" * 50})
    path.write_text(first + "\n")
    line = json.dumps({"run": 2, "pad": "y" * 200})
    done = subprocess.run(
        [sys.executable, "-c", APPEND_WITH_FILE_LIMIT, str(path), "40", line],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    assert path.read_text() == first + "\n"  # no partial line for the next run to glue onto
    fsio.append_locked(path, (json.dumps({"run": 3}) + "\n").encode())
    assert [json.loads(x)["run"] for x in path.read_text().splitlines()] == [1, 3]


def test_a_line_after_a_torn_one_stays_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"run": 1}\n{"run": 2, "tor')  # torn by something outside this code
    fsio.append_locked(path, b'{"run": 3}\n')
    assert path.read_text().splitlines()[-1] == '{"run": 3}'


@as_root
def test_a_lock_file_root_created_can_still_be_taken_by_the_service_user(open_tmp):
    """A manual run as root leaves a root-owned lock file; the service user's next run must
    still be able to take the lock."""
    lock = open_tmp / "service.lock"
    with fsio.locked(lock):
        pass
    done = as_user(
        f"""
        from pathlib import Path
        from fxforecast.fsio import locked
        with locked(Path({str(lock)!r})):
            print("held")
        """
    )
    assert done.stdout.strip() == "held", done.stderr
