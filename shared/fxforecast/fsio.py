"""File-system primitives shared by every writer: all-or-nothing folder writes and flock locks."""

import fcntl
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(lock_path: Path, on_wait: Callable[[], None] | None = None):
    """Hold an exclusive flock on `lock_path` (created if missing); `on_wait` is called once
    when another process holds it and this one has to wait."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_locked(path: Path, line: bytes) -> None:
    """Append `line` whole, under an exclusive lock, in a single write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


STAGING = ".{name}.partial-{pid}"


def remove_staging(parent: Path) -> list[str]:
    """Remove the staging folders that killed writers left in `parent`. Call it only where no
    other writer can be at work (a service holds its lock)."""
    found = sorted(p for p in parent.glob(STAGING.format(name="*", pid="*")) if p.is_dir())
    for staging in found:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(staging) for staging in found]


def write_all(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write every file under a staging folder first, then move each into place by rename:
    a failure before the renames leaves the old outputs (or nothing) and no partial file."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / STAGING.format(name=folder.name, pid=os.getpid())
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, content in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        folder.mkdir(exist_ok=True)
        for name in files:
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: str(folder / name) for name in files}
