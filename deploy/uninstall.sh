#!/usr/bin/env bash
# Remove what deploy/install.sh added to PREFIX, exactly as listed in PREFIX/.fxforecast-manifest:
# each file it copied, the virtual environment, the crontab block, the logrotate rule, and each
# .env that install created and nobody changed since. What the services made (forecasts in
# output/ and data/, logs/) and anything else in PREFIX stays; a folder install created goes
# only when nothing but Python's generated __pycache__/*.egg-info is left in it.
set -euo pipefail

usage="usage: deploy/uninstall.sh PREFIX [--dry-run]"
# shellcheck source=deploy/common.sh
source "$(dirname "$0")/common.sh"
extra_option() { return 1; }
parse_arguments "$@"
MANIFEST="$PREFIX/.fxforecast-manifest"
[ -f "$MANIFEST" ] ||
    die "no install manifest at $MANIFEST: nothing to uninstall (install with deploy/install.sh)"

# Newest entries first, so files go before the folders that hold them.
mapfile -t entries < <(tac "$MANIFEST")
run rm -f "$MANIFEST"
for entry in "${entries[@]}"; do
    kind=${entry%% *} path=${entry#* }
    case $kind in
        crontab)
            CRON_USER=$path
            if ((DRY_RUN)); then
                say "would remove the fxforecast block for $PREFIX from the crontab of $CRON_USER"
            else
                current_crontab | without_block | crontab_of_user -
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
        *) say "skipping unknown manifest entry: $entry" ;;
    esac
done
say "fxforecast removed from $PREFIX"
