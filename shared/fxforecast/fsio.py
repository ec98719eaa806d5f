"""File-system primitives shared by every writer: all-or-nothing writes and flock locks.

Staging always happens inside a folder the writer owns and on the same file system as the
target: inside the target folder for `write_all` (which may be a mount point, or sit in a folder
the writer may not write, as an installed data/ under a root-owned prefix), and beside the new
folder, in the writer's own parent, for `write_set`. Staging names carry the writer's PID, so a
later writer removes what a killed one left without a lock of its own.
"""

import ctypes
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

# A staging file or folder: ".partial-<pid>" inside a folder, ".<name>.partial-<pid>" beside one.
STAGING = re.compile(r"^\.(?:.+\.)?partial-(?P<pid>\d+)$")
_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths atomically


@contextmanager
def locked(lock_path: Path, on_wait: Callable[[], None] | None = None):
    """Hold an exclusive flock on `lock_path` (created if missing); `on_wait` is called once
    when another process holds it and this one has to wait. An existing lock file is opened
    read-only: flock needs no write access, so a lock file another user created still works."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
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


def _write_fully(fd: int, data: bytes) -> None:
    """os.write until every byte is out: a short write (a full disk) is an error, never a
    silently shortened file."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_locked(path: Path, line: bytes) -> None:
    """Append `line` (ending in a newline) whole, under an exclusive lock, or not at all: a write
    that fails part-way (a full disk) is cut off again and raises, so no partial line is left
    for the next append to glue onto. A file whose last line was torn by something else gets a
    newline first, so this line stays whole and readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        try:
            _write_fully(fd, (b"\n" if torn else b"") + line)
            os.fsync(fd)
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def utf8_text(content: bytes) -> str:
    """`content` as UTF-8 text, a leading byte-order mark dropped. ValueError naming the first
    byte that is not UTF-8 and its offset (UTF-16 starts with 0xff 0xfe, Latin-1's 'ó' is 0xf3),
    or the first NUL byte (UTF-16 without its mark)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (UTF-16?)" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ValueError(
            f"byte 0x{content[exc.start]:02x} at offset {exc.start} is not UTF-8{hint}"
        ) from None
    if "\x00" in text:
        raise ValueError(f"a NUL byte at offset {content.index(0)} (UTF-16?)")
    return text


def fix_for(exc: OSError, path: Path, setting: str) -> str:
    """What to do when `path` could not be written, in words that name `setting`."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        for blocker in (path, *path.parents):
            if blocker.exists() and not blocker.is_dir():
                return f"{blocker} is a file, not a folder: move it or point {setting} at a folder"
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"free space on its disk or point {setting} at another one"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make it writable for this user or point {setting} elsewhere"
    return f"check {setting} and its disk"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's own leftover from an earlier attempt
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_staging(folder: Path) -> list[str]:
    """Remove the staging files and folders in `folder` whose writer is no longer running
    (killed mid-write); another live writer's are left alone. Returns what was removed."""
    removed = []
    with suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(folder.iterdir()):
            match = STAGING.match(entry.name)
            if match is None or _alive(int(match["pid"])):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(str(entry))
    return removed


def _write_synced(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_fully(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so the renames in it survive a power cut as well as the files do."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write every file under a staging folder inside `folder` first (each synced to disk), then
    move each into place by rename: a failure before the renames leaves the old files (or none)
    and no partial file. For files read one by one (the data cache, a page, a results folder);
    a set that must change as a whole is `write_set`'s."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_staging(folder)
    staging = folder / f".partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, content in files.items():
            _write_synced(staging / name, content)
        for name in files:
            os.replace(staging / name, folder / name)
        _sync_folder(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: str(folder / name) for name in files}


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or
    file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library without it
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def write_set(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """`folder` holding exactly `files`, published as a whole: a reader sees the previous set or
    the new one, never a mix. The set is written into a staging folder beside `folder` (in its
    parent, which the writer owns), then renamed into place, or swapped with the previous set
    in one step (where the file system cannot swap, the old set is moved aside first)."""
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_staging(parent)
    staging = parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, content in files.items():
            _write_synced(staging / name, content)
        _sync_folder(staging)
        if not folder.exists():
            os.rename(staging, folder)
        elif not _exchange(staging, folder):
            old = parent / f".{folder.name}.old.partial-{os.getpid()}"
            os.rename(folder, old)
            os.rename(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        _sync_folder(parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap: the previous set
    return {name: str(folder / name) for name in files}
