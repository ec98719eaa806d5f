#!/usr/bin/env bash
# Install fxforecast into PREFIX: the project files, a virtual environment, each service's .env
# (only where none exists: an operator's settings are never overwritten), the weekly crontab
# lines (merged into the user's crontab; other lines are kept) and a logrotate rule for logs/.
# Re-running it updates the code and changes nothing else. Everything it adds is listed in
# PREFIX/.fxforecast-manifest, which deploy/uninstall.sh reads to remove exactly that. Nothing
# in PREFIX that an earlier install did not create is overwritten or written into (a file, a
# .venv): the install refuses, or with --force moves it into a backup folder first. Before
# anything is written it checks that the crontab's user can run the Python the venv is built
# from; afterwards, that this user can run the venv's interpreter and import fxforecast.
set -euo pipefail

usage="usage: deploy/install.sh PREFIX [--dry-run] [--force] [--crontab-user USER]"
usage+=" [--python PATH] [--logrotate-dir DIR]"
SOURCE=$(cd "$(dirname "$0")/.." && pwd -P)
CRON_USER=$(id -un) LOGROTATE_DIR=/etc/logrotate.d FORCE=0 PYTHON=python3
# shellcheck source=deploy/common.sh
source "$SOURCE/deploy/common.sh"
extra_option() {
    if [ "$1" = --force ]; then FORCE=1 USED=1; return; fi
    [[ $1 = --crontab-user || $1 = --logrotate-dir || $1 = --python ]] || return 1
    (($# >= 2)) || die "$1 needs a value; $usage"
    case $1 in
        --crontab-user) CRON_USER=$2 ;;
        --logrotate-dir) LOGROTATE_DIR=$2 ;;
        --python) PYTHON=$2 ;;
    esac
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
[ "$CRON_USER" = "$(id -un)" ] || [ "$(id -u)" = 0 ] ||
    die "--crontab-user $CRON_USER (another user) needs root: run install.sh as root"
# One rule per install, named after PREFIX: two installs never share (or remove) one.
RULE="$LOGROTATE_DIR/fxforecast$(printf '%s' "$PREFIX" | tr -c 'A-Za-z0-9_' -)"
if [ -d "$LOGROTATE_DIR" ] && [ ! -w "$LOGROTATE_DIR" ]; then
    die "cannot write $LOGROTATE_DIR; run as root or pass --logrotate-dir DIR"
fi

MANIFEST="$PREFIX/.fxforecast-manifest"

# Run a command as the crontab's user, from / (which every user may enter).
as_cron_user() {
    if [ "$CRON_USER" = "$(id -un)" ]; then
        (cd / && "$@")
    else
        (cd / && runuser -u "$CRON_USER" -- "$@")
    fi
}

# The venv links to this interpreter's file, and cron runs it as CRON_USER: a Python that user
# cannot read (pyenv's under /root) would fail every run.
PYTHON_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null) ||
    die "cannot run --python $PYTHON; give a Python 3.11+ with venv, e.g. --python /usr/bin/python3"
as_cron_user "$PYTHON_EXE" -c '' 2>/dev/null ||
    die "$CRON_USER cannot run $PYTHON_EXE, the Python the virtual environment would be built" \
        "from, so every cron run would fail; pass --python with a Python every user can run" \
        "(e.g. --python /usr/bin/python3)"

render_logrotate() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@USER@|$CRON_USER|g" \
        -e "s|@GROUP@|$(id -gn "$CRON_USER")|g" "$SOURCE/deploy/logrotate.conf"
}

# Add a line to the manifest once (re-installs keep what earlier installs recorded).
record() {
    ((DRY_RUN)) || grep -qxF "$*" "$MANIFEST" 2>/dev/null || echo "$*" >>"$MANIFEST"
}

declare -A made=()  # the folders a dry run would have made: each said once
make_dir() {  # each folder it creates is recorded, parents first
    [ -d "$1" ] || [ -n "${made[$1]:-}" ] && return
    make_dir "$(dirname "$1")"
    run mkdir "$1"
    made[$1]=1
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

# Did an earlier install create this absolute path (listed itself, or inside a tree it built)?
ours() {
    [ -f "$MANIFEST" ] && awk -v p="$1" '($2 == p && $1 ~ /^(file|tree|dir|logrotate)$/) ||
        ($1 == "tree" && index(p, $2 "/") == 1) { found = 1 } END { exit !found }' "$MANIFEST"
}

mapfile -t files < <(copied_files)
declare -A shipped=()  # a set: `printf | grep -q` under pipefail fails when grep exits first
for file in "${files[@]}"; do shipped[$file]=1; done
foreign=()
for file in "${files[@]}" .venv; do
    [ ! -e "$PREFIX/$file" ] || ours "$PREFIX/$file" || foreign+=("$file")
done
if ((${#foreign[@]})) && ! ((FORCE)); then
    die "$PREFIX holds ${#foreign[@]} path(s) that install would overwrite or write into and" \
        "did not create (${foreign[*]:0:3}${foreign[3]:+ ...}); move them away, or pass" \
        "--force to back them up first"
fi
# The folders the services write: install gives those it creates to CRON_USER; one that was
# there before stays as it is, and must already be writable by that user.
for dir in logs data output; do
    if [ -d "$PREFIX/$dir" ] && ! ours "$PREFIX/$dir" && ! as_cron_user test -w "$PREFIX/$dir"; then
        die "$PREFIX/$dir was not created by install and $CRON_USER cannot write it (owner" \
            "$(stat -c %U "$PREFIX/$dir")); the services write there: chown -R $CRON_USER:" \
            "$PREFIX/$dir, or move it away"
    fi
done
if [ -e "$RULE" ] && ! ours "$RULE"; then
    die "$RULE exists and install did not write it; remove it, or pass --logrotate-dir DIR"
fi
# Crontab: only the block an earlier install wrote (rendered from the crontab file it copied,
# before this install replaces that file), unchanged, is ever replaced.
previous_block=""
if ours "$PREFIX/crontab"; then previous_block=$(cron_block "$PREFIX/crontab"); fi
new_block=$(cron_block "$SOURCE/crontab")
# The crontab without this PREFIX's block; refuses when its lines are there but not as written.
crontab_kept() {
    local text
    text=$(current_crontab)
    if [ -z "$(prefix_lines "$text")" ]; then
        printf '%s' "$text"
    elif ! { [ -n "$previous_block" ] && without_block "$text" "$previous_block"; } &&
        ! without_block "$text" "$new_block"; then
        refuse_edited_block "$text"
    fi
}
crontab_kept >/dev/null

say "installing fxforecast from $SOURCE into $PREFIX"
make_dir "$PREFIX"
((DRY_RUN)) || touch "$MANIFEST"
# Earlier installs listed the code as whole trees; each file is listed instead now.
((DRY_RUN)) || sed -i -e "\|^tree $PREFIX/shared\$|d" -e "\|^tree $PREFIX/deploy\$|d" "$MANIFEST"
if ((${#foreign[@]})); then
    BACKUP="$PREFIX/.fxforecast-backup-$(date +%Y%m%d-%H%M%S)"
    for file in "${foreign[@]}"; do
        folder=$(dirname "$BACKUP/$file")
        [ -n "${made[$folder]:-}" ] || run mkdir -p "$folder"
        made[$folder]=1
        run mv "$PREFIX/$file" "$BACKUP/$file"
    done
    say "--force: $(((DRY_RUN)) && echo would move || echo moved) ${#foreign[@]} path(s)" \
        "install did not create into $BACKUP"
fi

# What an earlier install copied that the source no longer has goes (no stale modules), as
# does its logrotate rule under an earlier name; files keep their times so make sees an
# unchanged requirements.txt as up to date.
if [ -f "$MANIFEST" ]; then
    while read -r kind path; do
        if [ "$kind" = file ] && [[ $path = "$PREFIX"/shared/* || $path = "$PREFIX"/deploy/* ]]; then
            [[ -n ${shipped[${path#"$PREFIX"/}]:-} ]] && continue
        elif [ "$kind" != logrotate ] || [ "$path" = "$RULE" ]; then
            continue
        fi
        run rm -f "$path"
        ((DRY_RUN)) || grep -vxF "$kind $path" "$MANIFEST" >"$MANIFEST.new" || true
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
    created=0
    [ -d "$PREFIX/$dir" ] || created=1
    make_dir "$PREFIX/$dir"
    # The services run as the crontab's user: it must be able to write what they write.
    if [ "$CRON_USER" != "$(id -un)" ] && { ((created)) || ours "$PREFIX/$dir"; }; then
        run chown "$CRON_USER:" "$PREFIX/$dir"
    fi
done

# The virtual environment: the Makefile's own install rule (a no-op when up to date), rebuilt
# when it was built from another Python than the one asked for.
if [ -e "$PREFIX/.venv/bin/python" ] &&
    [ "$(readlink -f "$PREFIX/.venv/bin/python")" != "$(readlink -f "$PYTHON_EXE")" ]; then
    say "$PREFIX/.venv was built from $(readlink -f "$PREFIX/.venv/bin/python"); rebuilding it" \
        "from $PYTHON_EXE"
    run rm -rf "$PREFIX/.venv"
fi
[ -d "$PREFIX/.venv" ] || record tree "$PREFIX/.venv"
[ -d "$PREFIX/shared/fxforecast.egg-info" ] || record tree "$PREFIX/shared/fxforecast.egg-info"
run make --no-print-directory -C "$PREFIX" install PYTHON="$PYTHON_EXE"
if ! ((DRY_RUN)); then
    problem=$(as_cron_user "$PREFIX/.venv/bin/python" -c 'import fxforecast' 2>&1) ||
        die "$CRON_USER cannot run $PREFIX/.venv/bin/python -c 'import fxforecast'" \
            "($(tail -n 1 <<<"$problem")), so every cron run would fail; make PREFIX readable" \
            "by $CRON_USER and install again with --python PATH of a Python every user can" \
            "run (e.g. --python /usr/bin/python3)"
fi

# Crontab: this prefix's block replaced by the current one (or appended); other lines stay.
if ((DRY_RUN)); then
    say "would install this block in the crontab of $CRON_USER:"
    echo "$new_block"
else
    kept=$(crontab_kept)
    printf '%s\n' ${kept:+"$kept"} "$new_block" | crontab_of_user -
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

as=""
[ "$CRON_USER" = "$(id -un)" ] || as="runuser -u $CRON_USER -- "
say "done. First run, as the services run: cd $PREFIX &&" \
    "${as}.venv/bin/python services/forecaster_7d/run.py"
