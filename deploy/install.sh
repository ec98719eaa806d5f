#!/usr/bin/env bash
# Install fxforecast into PREFIX: the project files, a virtual environment, each service's .env
# (only where none exists: an operator's settings are never overwritten), the weekly crontab
# lines (merged into the user's crontab; other lines are kept) and a logrotate rule for logs/.
# Re-running it updates the code and changes nothing else. Everything it adds is listed in
# PREFIX/.fxforecast-manifest, which deploy/uninstall.sh reads to remove exactly that. A file
# in PREFIX that an earlier install did not create is never overwritten: the install refuses,
# or with --force moves it into a backup folder first.
set -euo pipefail

usage="usage: deploy/install.sh PREFIX [--dry-run] [--force] [--crontab-user USER] [--logrotate-dir DIR]"
SOURCE=$(cd "$(dirname "$0")/.." && pwd -P)
CRON_USER=$(id -un) LOGROTATE_DIR=/etc/logrotate.d FORCE=0
# shellcheck source=deploy/common.sh
source "$SOURCE/deploy/common.sh"
extra_option() {
    if [ "$1" = --force ]; then FORCE=1 USED=1; return; fi
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
[[ $SOURCE/ != "$PREFIX"/* ]] || die "PREFIX $PREFIX holds the source folder; choose another folder"
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

make_dir() {  # each folder it creates is recorded, parents first
    [ -d "$1" ] && return
    make_dir "$(dirname "$1")"
    run mkdir "$1"
    record dir "$1"
}

# Every file install copies, relative to SOURCE and PREFIX.
copied_files() {
    (cd "$SOURCE" &&
        find shared deploy -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | sort &&
        printf '%s\n' Makefile pyproject.toml requirements.txt crontab README.md &&
        for folder in services/forecaster_*/; do
            printf '%s\n' "${folder}run.py" "${folder}.env.example"
        done)
}

# Did an earlier install create this absolute path (a file, or one inside a tree it built)?
ours() {
    [ -f "$MANIFEST" ] && awk -v p="$1" '($1 == "file" && $2 == p) ||
        ($1 == "tree" && index(p, $2 "/") == 1) { found = 1 } END { exit !found }' "$MANIFEST"
}

mapfile -t files < <(copied_files)
declare -A shipped=()  # a set: `printf | grep -q` under pipefail fails when grep exits first
for file in "${files[@]}"; do shipped[$file]=1; done
foreign=()
for file in "${files[@]}"; do
    [ ! -e "$PREFIX/$file" ] || ours "$PREFIX/$file" || foreign+=("$file")
done
if ((${#foreign[@]})) && ! ((FORCE)); then
    die "$PREFIX holds ${#foreign[@]} file(s) that install would overwrite and did not create" \
        "(${foreign[*]:0:3}${foreign[3]:+ ...}); move them away, or pass --force to back them up first"
fi

say "installing fxforecast from $SOURCE into $PREFIX"
make_dir "$PREFIX"
((DRY_RUN)) || touch "$MANIFEST"
# Earlier installs listed the code as whole trees; each file is listed instead now.
((DRY_RUN)) || sed -i -e "\|^tree $PREFIX/shared\$|d" -e "\|^tree $PREFIX/deploy\$|d" "$MANIFEST"
if ((${#foreign[@]})); then
    BACKUP="$PREFIX/.fxforecast-backup-$(date +%Y%m%d-%H%M%S)"
    for file in "${foreign[@]}"; do
        run mkdir -p "$(dirname "$BACKUP/$file")"
        run mv "$PREFIX/$file" "$BACKUP/$file"
    done
    say "--force: $(((DRY_RUN)) && echo would move || echo moved) ${#foreign[@]} file(s)" \
        "install did not create into $BACKUP"
fi

# Code: files an earlier install copied that the source no longer has go (no stale modules);
# files keep their times so make sees an unchanged requirements.txt as up to date.
if [ -f "$MANIFEST" ]; then
    while read -r kind path; do
        [ "$kind" = file ] && [[ $path = "$PREFIX"/shared/* || $path = "$PREFIX"/deploy/* ]] || continue
        [[ -n ${shipped[${path#"$PREFIX"/}]:-} ]] && continue
        run rm -f "$path"
        ((DRY_RUN)) || grep -vxF "file $path" "$MANIFEST" >"$MANIFEST.new" || true
        ((DRY_RUN)) || mv "$MANIFEST.new" "$MANIFEST"
    done < <(cat "$MANIFEST")
fi
for file in "${files[@]}"; do
    make_dir "$(dirname "$PREFIX/$file")"
    run cp -p "$SOURCE/$file" "$PREFIX/$file"
    record file "$PREFIX/$file"
done
# Settings: an existing .env is the operator's and stays as it is.
for folder in "$SOURCE"/services/forecaster_*/; do
    folder=${folder%/}
    service_dir="$PREFIX/services/$(basename "$folder")"
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
[ -d "$PREFIX/shared/fxforecast.egg-info" ] || record tree "$PREFIX/shared/fxforecast.egg-info"
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
