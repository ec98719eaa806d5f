"""Commands that write, started as root where the service user owns the folders they write to
(an install: deploy/install.sh gives logs/, data/ and output/ to the crontab's user): refused
before anything is written, with the command to run instead. A file root created there (the
lock, metrics.jsonl, the cache, a forecast folder) would belong to root and stop that user's
later cron runs."""

import os
import pwd
import shlex
import sys
from pathlib import Path

from ..errors import ConfigError
from ..settings import Settings


def run_folders(settings: Settings) -> list[Path]:
    """Every folder a service run writes into."""
    from ..marketdata.cache import cache_dir

    return [
        settings.log_dir,
        settings.metrics_log_path.parent,
        settings.output_dir,
        cache_dir(settings),
        settings.forecast_db.parent,
        *([settings.cache_dir] if settings.cache_dir else []),  # the members and report charts
    ]


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a name: runuser and sudo take "#uid"
        return f"#{uid}"


def refuse_root_in_service_folders(folders: list[Path]) -> None:
    """As root, raise ConfigError (exit 2) naming the owner and the command to run as them when
    one of `folders` that exists belongs to another user; otherwise do nothing."""
    if os.geteuid() != 0:
        return
    for folder in folders:
        try:
            owner = folder.stat().st_uid
        except OSError:  # not there yet (or unreadable): nothing of another user's to spoil
            continue
        if owner != 0:
            user, command = _user(owner), shlex.join(sys.orig_argv)
            raise ConfigError(
                f"started as root, but {folder.absolute()} belongs to {user}, who runs the "
                "services: a "
                f"file root wrote there would stop {user}'s cron runs; run it as {user}: "
                f"runuser -u {user} -- {command}   (or: sudo -u {user} {command})"
            )
