#!/usr/bin/env bash
# Install fxforecast into PREFIX: the project files, a virtual environment, each service's .env
# (only where none exists: an operator's settings are never overwritten), the weekly crontab
# lines (merged into the user's crontab; other lines are kept) and a logrotate rule for logs/.
# Re-running it updates the code and changes nothing else. Everything it adds is listed in
# PREFIX/.fxforecast-manifest, which deploy/uninstall.sh reads to remove exactly that.
set -euo pipefail

usage="usage: deploy/install.sh PREFIX [--dry-run] [--crontab-user USER] [--logrotate-dir DIR]"
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
CRON_USER=$(id -un) LOGROTATE_DIR=/etc/logrotate.d
# shellcheck source=deploy/common.sh
source "$SOURCE/deploy/common.sh"
extra_option() {
    [[ $1 = --crontab-user || $1 = --logrotate-dir ]] || return 1
    (($# >= 2)) || die "$1 needs a value; $usage"
    if [ "$1" = --crontab-user ]; then CRON_USER=$2; else LOGROTATE_DIR=$2; fi
    USED=2
}
parse_arguments "$@"
# The path goes into crontab lines and a logrotate rule unquoted: keep it plain.
[[ $PREFIX =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
    die "PREFIX $PREFIX has characters other than letters, digits and . _ / + -; choose a plain path"
[ "$PREFIX" != "$SOURCE" ] || die "PREFIX is the source folder itself; choose another folder"
command -v crontab >/dev/null || die "crontab not found; install cron (apt-get install cron)"
id "$CRON_USER" >/dev/null 2>&1 || die "no such user $CRON_USER for --crontab-user"
RULE="$LOGROTATE_DIR/fxforecast"
if [ -d "$LOGROTATE_DIR" ] && [ ! -w "$LOGROTATE_DIR" ]; then
    die "cannot write $LOGROTATE_DIR; run as root or pass --logrotate-dir DIR"
fi

MANIFEST="$PREFIX/.fxforecast-manifest"

render_logrotate() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@USER@|$CRON_USER|g" \
        -e "s|@GROUP@|$(id -gn "$CRON_USER")|g" "$SOURCE/deploy/logrotate.conf"
}

# Add a line to the manifest once (re-installs keep what earlier installs recorded).
record() {
    ((DRY_RUN)) || grep -qxF "$*" "$MANIFEST" 2>/dev/null || echo "$*" >>"$MANIFEST"
}

make_dir() {
    [ -d "$1" ] && return
    run mkdir -p "$1"
    record dir "$1"
}

say "installing fxforecast from $SOURCE into $PREFIX"
make_dir "$PREFIX"
((DRY_RUN)) || touch "$MANIFEST"

# Code: the trees are replaced whole (no stale modules); files keep their times so make sees
# an unchanged requirements.txt as up to date.
for tree in shared deploy; do
    run rm -rf "${PREFIX:?}/$tree"
    run cp -a "$SOURCE/$tree" "$PREFIX/$tree"
    ((DRY_RUN)) || find "$PREFIX/$tree" \( -name __pycache__ -o -name '*.egg-info' \) -prune \
        -exec rm -rf {} +
    record tree "$PREFIX/$tree"
done
for file in Makefile pyproject.toml requirements.txt crontab README.md; do
    run cp -p "$SOURCE/$file" "$PREFIX/$file"
    record file "$PREFIX/$file"
done
# Settings: an existing .env is the operator's and stays as it is.
make_dir "$PREFIX/services"
for folder in "$SOURCE"/services/forecaster_*/; do
    folder=${folder%/}
    service_dir="$PREFIX/services/$(basename "$folder")"
    make_dir "$service_dir"
    for file in run.py .env.example; do
        run cp -p "$folder/$file" "$service_dir/$file"
        record file "$service_dir/$file"
    done
    if [ -e "$service_dir/.env" ]; then
        say "keeping existing $service_dir/.env"
    else
        run cp "$folder/.env.example" "$service_dir/.env"
        record env "$service_dir/.env"
    fi
done
for dir in logs data output; do
    make_dir "$PREFIX/$dir"
done
# The services run as the crontab's user: it must be able to write what they write.
if [ "$CRON_USER" != "$(id -un)" ]; then
    run chown "$CRON_USER:" "$PREFIX/logs" "$PREFIX/data" "$PREFIX/output"
fi

# The virtual environment: the Makefile's own install rule (a no-op when up to date).
[ -d "$PREFIX/.venv" ] || record tree "$PREFIX/.venv"
run make --no-print-directory -C "$PREFIX" install

# Crontab: drop this prefix's old block, append the current one; other lines stay.
block=$(
    begin_marker
    sed "s|@PREFIX@|$PREFIX|g" "$SOURCE/crontab"
    end_marker
)
merged=$(
    current_crontab | without_block
    echo "$block"
)
if ((DRY_RUN)); then
    say "would install this block in the crontab of $CRON_USER:"
    echo "$block"
else
    echo "$merged" | crontab_of_user -
    say "crontab of $CRON_USER: fxforecast lines installed"
fi
record crontab "$CRON_USER"
if ! crontab -V 2>&1 | grep -qi cronie &&
    [ "$(date +%Z)" != "$(TZ=America/Santiago date +%Z)" ]; then
    say "note: this cron ignores CRON_TZ and the server's time zone is $(date +%Z): the runs" \
        "start at 06:00-07:00 $(date +%Z). Set the server to America/Santiago" \
        "(timedatectl set-timezone America/Santiago) or install cronie."
fi

# Log rotation for logs/*.log, checked by logrotate itself.
if ((DRY_RUN)); then
    say "would write $RULE:"
    render_logrotate
else
    make_dir "$LOGROTATE_DIR"
    record logrotate "$RULE"
    render_logrotate >"$RULE"
    chmod 644 "$RULE"
    if command -v logrotate >/dev/null; then
        logrotate -d "$RULE" >/dev/null 2>&1 ||
            die "logrotate rejects $RULE: run logrotate -d $RULE to see why"
    else
        say "note: logrotate is not installed (apt-get install logrotate); $RULE is unused"
    fi
    say "logrotate rule: $RULE"
fi

say "done. First run: cd $PREFIX && .venv/bin/python services/forecaster_7d/run.py"
