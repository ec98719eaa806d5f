"""`fxforecast rollout`: switch Chronos on or off for one service by editing its .env.

The .env is created from .env.example when missing; comments and every other key are kept.
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
    created = not env_file.is_file()
    if created:
        shutil.copyfile(folder / ".env.example", env_file)
    lines = env_file.read_text(encoding="utf-8").splitlines(keepends=True)
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
    # Written beside and renamed: a crash never leaves a half-written .env.
    staging = env_file.with_name(f".env.partial-{os.getpid()}")
    staging.write_text("".join(lines), encoding="utf-8")
    shutil.copymode(env_file, staging)
    os.replace(staging, env_file)
    origin = " (created from .env.example)" if created else ""
    if before == wanted:
        return f"{service}: {KEY} already {wanted} in {env_file}{origin}"
    return f"{service}: {KEY} {before or 'unset'} -> {wanted} in {env_file}{origin}"
