"""The write primitives on a real file system: staging never outside a folder the writer owns,
sets published whole, metrics lines whole or absent on a full disk (RLIMIT_FSIZE gives the
short write a full disk gives)."""

import errno
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fxforecast import fsio
from helpers import file_size_limit

# Where the fxforecast under test was imported from (shared/, or mutmut's copy), for children.
PACKAGE_PARENT = str(Path(fsio.__file__).resolve().parents[1])
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
        env={"PATH": os.environ["PATH"], "PYTHONPATH": PACKAGE_PARENT},
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
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    )
    assert done.returncode == -signal.SIGKILL
    assert [p.name for p in parent.iterdir()] == [f".2024-11-29.partial-{_pid_of(parent)}"]
    fsio.write_set(parent / "2024-11-30", {"forecast.json": b"z"})
    assert sorted(p.name for p in parent.iterdir()) == ["2024-11-30"]


def _pid_of(parent):
    [staging] = parent.iterdir()
    return staging.name.rsplit("-", 1)[1]


def test_staging_of_a_live_writer_is_left_alone(tmp_path):
    """Another live writer's staging stays (and the writer is only asked whether it lives,
    never signalled); a dead writer's goes, a file and a folder alike; other names stay."""
    writer = subprocess.Popen(["sleep", "60"])
    try:
        live = tmp_path / f".2024-11-29.partial-{writer.pid}"
        live.mkdir()
        dead = _a_finished_pid()
        (tmp_path / f".partial-{dead}").mkdir()
        (tmp_path / f".index.html.partial-{dead}").write_text("half a page")
        (tmp_path / "2024-11-22").mkdir()
        (tmp_path / ".partial-x").mkdir()
        removed = fsio.remove_staging(tmp_path)
        assert removed == [
            str(tmp_path / f".index.html.partial-{dead}"),
            str(tmp_path / f".partial-{dead}"),
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [live.name, "2024-11-22", ".partial-x"]
        )
        assert writer.poll() is None
    finally:
        writer.kill()
        writer.wait()
    # The writer gone, its staging goes; so does this process's own (an earlier attempt).
    (tmp_path / f".partial-{os.getpid()}").mkdir()
    assert fsio.remove_staging(tmp_path) == [str(live), str(tmp_path / f".partial-{os.getpid()}")]
    assert fsio.remove_staging(tmp_path / "missing") == []


def _a_finished_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_utf8_text_names_the_first_byte_that_is_not_utf8():
    assert fsio.utf8_text(b"\xef\xbb\xbfA=1\n") == "A=1\n"  # a byte-order mark is dropped
    with pytest.raises(ValueError) as error:
        fsio.utf8_text("A=Peñalolén".encode("latin-1"))
    assert str(error.value) == "byte 0xf1 at offset 4 is not UTF-8"
    with pytest.raises(ValueError) as error:
        fsio.utf8_text("A=1".encode("utf-16"))
    assert str(error.value) == "byte 0xff at offset 0 is not UTF-8 (UTF-16?)"
    with pytest.raises(ValueError) as error:
        fsio.utf8_text("A=1".encode("utf-16-le"))
    assert str(error.value) == "a NUL byte at offset 1 (UTF-16?)"


def test_fix_for_says_what_to_do_for_each_kind_of_failure(tmp_path):
    blocker = tmp_path / "output"
    blocker.write_text("a file")
    path = blocker / "svc" / "x.json"
    for code in (errno.ENOTDIR, errno.EEXIST):
        assert fsio.fix_for(OSError(code, "x"), path, "OUTPUT_DIR") == (
            f"{blocker} is a file, not a folder: move it or point OUTPUT_DIR at a folder"
        )
    for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        assert fsio.fix_for(OSError(code, "x"), path, "OUTPUT_DIR") == (
            "free space on its disk or point OUTPUT_DIR at another one"
        )
    for code in (errno.EACCES, errno.EPERM, errno.EROFS):
        assert fsio.fix_for(OSError(code, "x"), path, "LOG_DIR") == (
            "make it writable for this user or point LOG_DIR elsewhere"
        )
    free = tmp_path / "free" / "x.json"
    assert fsio.fix_for(OSError(errno.EEXIST, "x"), free, "OUTPUT_DIR") == (
        "check OUTPUT_DIR and its disk"
    )
    assert fsio.fix_for(OSError(errno.EIO, "x"), path, "OUTPUT_DIR") == (
        "check OUTPUT_DIR and its disk"
    )


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
        env={**os.environ, "PYTHONPATH": PACKAGE_PARENT},
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


def test_write_all_that_fails_on_its_second_file_leaves_the_old_files(tmp_path):
    """The second file does not fit: the first keeps its old bytes (it was staged, not
    written over) and no partial file or staging is left."""
    folder = tmp_path / "data"
    old = {"market_daily.csv": b"old market\n", "rates_daily.csv": b"old rates\n"}
    fsio.write_all(folder, old)
    new = {"market_daily.csv": b"new market\n", "rates_daily.csv": b"r" * 5000}
    with file_size_limit(1000), pytest.raises(OSError) as error:
        fsio.write_all(folder, new)
    assert error.value.errno == errno.EFBIG
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == old


def test_write_all_that_fails_on_its_first_file_writes_nothing(tmp_path):
    folder = tmp_path / "data"
    with file_size_limit(1000), pytest.raises(OSError):
        fsio.write_all(folder, {"market_daily.csv": b"m" * 5000, "rates_daily.csv": b"r\n"})
    assert list(folder.iterdir()) == []


class SyncLog:
    """os.fsync, os.replace and os.rename recorded in order, each with the path it concerns."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = {name: getattr(os, name) for name in ("fsync", "replace", "rename")}

        def fsync(fd):
            self.calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real["fsync"](fd)

        def renamer(name):
            def rename(source, target):
                self.calls.append(("rename", str(source), str(target)))
                real[name](source, target)

            return rename

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", renamer("replace"))
        monkeypatch.setattr(os, "rename", renamer("rename"))

    def rename_to(self, target) -> int:
        [at] = [i for i, c in enumerate(self.calls) if c[0] == "rename" and c[2] == str(target)]
        return at

    def synced_before(self, path, at: int) -> bool:
        return ("fsync", str(path)) in self.calls[:at]

    def synced_after(self, path, at: int) -> bool:
        return ("fsync", str(path)) in self.calls[at + 1 :]


def test_write_all_syncs_each_file_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A power cut after a rename must find the new bytes, not an empty file: each staged file
    reaches the disk before it is renamed into place, and the folder after the renames."""
    folder = tmp_path / "data"
    folder.mkdir()
    log = SyncLog(monkeypatch)
    fsio.write_all(folder, {"a.csv": b"1\n", "b.csv": b"2\n"})
    renames = [log.rename_to(folder / name) for name in ("a.csv", "b.csv")]
    for at in renames:
        staged = log.calls[at][1]
        assert log.synced_before(staged, at), log.calls
    assert log.synced_after(folder, max(renames)), log.calls


def test_write_set_syncs_its_files_and_folder_before_publishing_it(tmp_path, monkeypatch):
    folder = tmp_path / "svc" / "2024-11-29"
    folder.parent.mkdir()
    log = SyncLog(monkeypatch)
    fsio.write_set(folder, {"forecast.json": b"{}", "forecast.csv": b"date\n"})
    at = log.rename_to(folder)
    staging = log.calls[at][1]
    for name in ("forecast.json", "forecast.csv"):
        assert log.synced_before(f"{staging}/{name}", at), log.calls
    assert log.synced_before(staging, at) and log.synced_after(folder.parent, at), log.calls


def test_a_metrics_line_reaches_the_disk_before_the_lock_is_let_go(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    log = SyncLog(monkeypatch)
    fsio.append_locked(path, b'{"run": 1}\n')
    assert log.calls == [("fsync", str(path))]


def test_a_waiting_locker_goes_on_only_once_it_holds_the_lock(tmp_path):
    """The second taker is told it waits, and does nothing until the first lets go."""
    lock = tmp_path / "logs" / "forecaster_7d.lock"
    events = []
    waiting = threading.Event()

    def second():
        with fsio.locked(lock, on_wait=waiting.set):
            events.append("second has the lock")

    with fsio.locked(lock):
        taker = threading.Thread(target=second)
        taker.start()
        assert waiting.wait(30)
        time.sleep(0.5)  # time enough to go on, were it not waiting
        events.append("first lets go")
    taker.join(30)
    assert events == ["first lets go", "second has the lock"]
    with fsio.locked(lock, on_wait=lambda: events.append("waited")):
        pass  # free again: taken at once
    assert events[-1] == "second has the lock"


def test_files_and_folders_are_created_with_their_parents_and_mode_644(tmp_path, monkeypatch):
    """Nested folders that do not exist yet; files rw-r--r-- whatever the umask leaves."""
    previous = os.umask(0)
    try:
        written = fsio.write_all(tmp_path / "a" / "data", {"x.csv": b"1\n"})
        published = fsio.write_set(tmp_path / "b" / "svc" / "2024-11-29", {"f.json": b"{}"})
        fsio.append_locked(tmp_path / "c" / "logs" / "metrics.jsonl", b"{}\n")
    finally:
        os.umask(previous)
    assert written == {"x.csv": str(tmp_path / "a" / "data" / "x.csv")}
    assert published == {"f.json": str(tmp_path / "b" / "svc" / "2024-11-29" / "f.json")}
    for path in (*written.values(), *published.values(), tmp_path / "c/logs/metrics.jsonl"):
        assert os.stat(path).st_mode & 0o777 == 0o644, path


def test_a_set_is_swapped_in_one_step_also_by_a_relative_path(tmp_path, monkeypatch):
    """Where the file system can (here), the previous set is exchanged with the new one by
    renameat2 (no rename of the folder), relative paths taken from the working folder."""
    monkeypatch.chdir(tmp_path)
    folder = Path("output") / "svc" / "2024-11-29"
    fsio.write_set(folder, {"forecast.json": b"old"})
    log = SyncLog(monkeypatch)
    fsio.write_set(folder, {"forecast.json": b"new"})
    assert [c for c in log.calls if c[0] == "rename"] == []
    assert (folder / "forecast.json").read_bytes() == b"new"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2024-11-29"]


def test_where_no_swap_is_possible_the_old_set_is_moved_aside_first(tmp_path, monkeypatch):
    folder = tmp_path / "svc" / "2024-11-29"
    fsio.write_set(folder, {"forecast.json": b"old", "fan_chart.png": b"old"})
    monkeypatch.setattr(fsio, "_exchange", lambda first, second: False)
    log = SyncLog(monkeypatch)
    fsio.write_set(folder, {"forecast.json": b"new"})
    aside = tmp_path / "svc" / f".2024-11-29.old.partial-{os.getpid()}"
    renames = [c for c in log.calls if c[0] == "rename"]
    assert renames[0] == ("rename", str(folder), str(aside))
    assert renames[1][2] == str(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"forecast.json": b"new"}
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2024-11-29"]


def test_the_exchange_says_what_it_cannot_do(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x").write_text("a")
    assert fsio._exchange(first, second) is True
    assert [p.name for p in second.iterdir()] == ["x"] and list(first.iterdir()) == []
    # A folder into itself: EINVAL, which the callers take as "cannot swap here".
    assert fsio._exchange(second, second / "x") is False
    with pytest.raises(FileNotFoundError) as error:
        fsio._exchange(tmp_path / "missing", second)
    assert (error.value.errno, error.value.strerror, error.value.filename) == (
        errno.ENOENT,
        os.strerror(errno.ENOENT),
        str(second),
    )


def test_a_write_that_makes_no_progress_is_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(OSError) as error:
        fsio.write_all(tmp_path / "data", {"x.csv": b"1\n"})
    assert (error.value.errno, error.value.strerror) == (errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_one_byte_torn_line_gets_its_newline(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"x")
    fsio.append_locked(path, b'{"run": 2}\n')
    assert path.read_bytes() == b'x\n{"run": 2}\n'


def test_another_users_process_is_alive(monkeypatch):
    """os.kill(pid, 0) on another user's process raises PermissionError: it is running."""

    def refused(pid, signal):
        raise PermissionError

    monkeypatch.setattr(os, "kill", refused)
    assert fsio._alive(1) is True


def test_staging_is_looked_for_only_in_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    assert fsio.remove_staging(tmp_path / "file") == []


def test_utf16_big_endian_is_named():
    with pytest.raises(ValueError) as error:
        fsio.utf8_text("A=1".encode("utf-16-be").join([b"\xfe\xff", b""]))
    assert str(error.value) == "byte 0xfe at offset 0 is not UTF-8 (UTF-16?)"
