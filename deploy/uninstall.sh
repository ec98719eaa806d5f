#!/usr/bin/env bash
# Remove what deploy/install.sh added to PREFIX, exactly as listed in PREFIX/.fxforecast-manifest:
# each file it copied, the virtual environment, the crontab block, the logrotate rule, and each
# .env that install created and nobody changed since. What the services made (forecasts in
# output/ and data/, logs/) and anything else in PREFIX stays; a folder install created goes
# only when nothing but Python's generated __pycache__/*.egg-info is left in it.
# The crontab block goes only as install wrote it: when its lines were edited, uninstall
# refuses before removing anything and prints them. Each entry leaves the manifest once it is
# done, newest first, and the manifest itself goes last: an interrupted uninstall, run again,
# goes on where it stopped.
set -euo pipefail

usage="usage: deploy/uninstall.sh PREFIX [--dry-run]"
# shellcheck source=deploy/common.sh
source "$(dirname "$0")/common.sh"
extra_option() { return 1; }
parse_arguments "$@"
MANIFEST="$PREFIX/.fxforecast-manifest"
[ -f "$MANIFEST" ] ||
    die "no install manifest at $MANIFEST: nothing to uninstall (install with deploy/install.sh)"
rm -f "$MANIFEST.partial"  # left by an uninstall killed while shortening the manifest

# The block install wrote, from the crontab file it copied (still there: the crontab entry is
# newer than the files, so it goes first).
installed_block=""
[ ! -f "$PREFIX/crontab" ] || installed_block=$(cron_block "$PREFIX/crontab")
# The user's crontab without that block (empty when it has no lines of this PREFIX); refuses,
# changing nothing, when the lines are there but not as install wrote them.
crontab_kept() {
    local text
    text=$(current_crontab)
    if [ -z "$(prefix_lines "$text")" ]; then
        printf '%s' "$text"
    elif [ -z "$installed_block" ] || ! without_block "$text" "$installed_block"; then
        refuse_edited_block "$text"
    fi
}
while read -r kind path; do
    if [ "$kind" = crontab ]; then CRON_USER=$path crontab_kept >/dev/null; fi
done <"$MANIFEST"

remove() {
    local kind=$1 path=$2
    case $kind in
        crontab)
            CRON_USER=$path
            if [ -z "$(prefix_lines "$(current_crontab)")" ]; then
                say "crontab of $CRON_USER: no fxforecast lines for $PREFIX"
            elif ((DRY_RUN)); then
                say "would remove the fxforecast block for $PREFIX from the crontab of $CRON_USER"
            else
                kept=$(crontab_kept)
                printf '%s\n' ${kept:+"$kept"} | crontab_of_user -
                say "crontab of $CRON_USER: fxforecast lines removed"
            fi ;;
        logrotate | file) run rm -f "$path" ;;
        tree) run rm -rf "$path" ;;
        env)
            if cmp -s "$path" "$(dirname "$path")/.env.example"; then
                run rm -f "$path"
            elif [ -e "$path" ]; then
                say "keeping $path: changed since install (operator settings)"
            fi ;;
        dir)
            if [ -d "$path" ]; then
                run find "$path" -mindepth 1 -maxdepth 1 \
                    \( -name __pycache__ -o -name '*.egg-info' \) -exec rm -rf {} +
            fi
            if [ -d "$path" ] && [ -z "$(ls -A "$path")" ]; then
                run rmdir "$path"
            elif [ -d "$path" ]; then
                say "keeping $path: not empty"
            fi ;;
        *) say "skipping unknown manifest entry: $kind $path" ;;
    esac
}

# Newest entries first, so files go before the folders that hold them.
mapfile -t entries < <(tac "$MANIFEST")
left=${#entries[@]}
for entry in "${entries[@]}"; do
    left=$((left - 1))
    if ((DRY_RUN)); then
        remove "${entry%% *}" "${entry#* }"
    elif ((left)); then
        remove "${entry%% *}" "${entry#* }"
        head -n "$left" "$MANIFEST" >"$MANIFEST.partial"
        mv -f "$MANIFEST.partial" "$MANIFEST"
    else  # the oldest entry, usually PREFIX itself: the manifest goes first, or it stays in it
        rm -f "$MANIFEST"
        remove "${entry%% *}" "${entry#* }"
    fi
done
say "fxforecast removed from $PREFIX"
