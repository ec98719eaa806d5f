"""`fxforecast rollout`: switch Chronos on or off for one service by editing its .env.

The .env is created from .env.example when missing; comments and every other key are kept. A
.env that is a link (to a file kept elsewhere, e.g. /etc) stays a link: the file it points to
is edited. The edited file keeps its mode and, when root edits it, its owner.
"""

import os
import re
import shutil
from pathlib import Path

from ..errors import ConfigError

KEY = "ENABLE_CHRONOS"
ASSIGNMENT = re.compile(rf"^\s*(export\s+)?{KEY}\s*=\s*(?P<value>[^#\n]*?)\s*(#.*)?$")


def known_services(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "services").glob("*/.env.example"))


def set_chronos(root: Path, service: str, enabled: bool) -> str:
    """Set ENABLE_CHRONOS in services/<service>/.env under `root`; return what changed."""
    folder = root / "services" / service
    if not (folder / ".env.example").is_file():
        known = ", ".join(known_services(root)) or "none"
        raise ConfigError(
            f"unknown service {service!r} under {root / 'services'}; known services: {known}"
        )
    env_file = folder / ".env"
    target = env_file.resolve() if env_file.is_symlink() else env_file
    if env_file.is_symlink() and not target.is_file():
        raise ConfigError(
            f"{env_file} is a link to {target}, which is not a file; create that file (or "
            "point the link at the service's settings) and run the rollout again"
        )
    created = not target.is_file()
    if created:
        shutil.copyfile(folder / ".env.example", target)
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    wanted = "true" if enabled else "false"
    before, found = None, False
    for number, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if match:
            before, found = match["value"], True
            lines[number] = f"{KEY}={wanted}\n"
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{KEY}={wanted}\n")
    _replace(target, "".join(lines))
    where = f"{target} (linked from {env_file})" if target != env_file else str(env_file)
    origin = " (created from .env.example)" if created else ""
    if before == wanted:
        return f"{service}: {KEY} already {wanted} in {where}{origin}"
    return f"{service}: {KEY} {before or 'unset'} -> {wanted} in {where}{origin}"


def _replace(path: Path, text: str) -> None:
    """Written beside and renamed: a crash never leaves a half-written .env."""
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        staging.write_text(text, encoding="utf-8")
        shutil.copymode(path, staging)
        if os.geteuid() == 0:  # the services' user may be the only one allowed to read it
            stat = path.stat()
            os.chown(staging, stat.st_uid, stat.st_gid)
        os.replace(staging, path)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {path}: {exc.strerror}; run the rollout as a user who may write "
            f"{path.parent}"
        ) from None
