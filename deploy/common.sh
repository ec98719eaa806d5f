# Shared by install.sh and uninstall.sh (sourced): dry-run aware actions and the crontab block.
# Expects PREFIX, DRY_RUN and CRON_USER to be set.

say() { echo "$*"; }

# Run a command, or with --dry-run only say it.
run() {
    if ((DRY_RUN)); then
        echo "would run: $*"
    else
        "$@"
    fi
}

begin_marker() { echo "# BEGIN fxforecast $PREFIX (managed by deploy/install.sh)"; }
end_marker() { echo "# END fxforecast $PREFIX"; }

# Only root may name another user; for oneself plain crontab works everywhere.
crontab_of_user() {
    if [ "$CRON_USER" = "$(id -un)" ]; then
        crontab "$@"
    else
        crontab -u "$CRON_USER" "$@"
    fi
}

# The user's crontab, empty when there is none yet.
current_crontab() { crontab_of_user -l 2>/dev/null || true; }

# stdin without this prefix's block.
without_block() {
    awk -v begin="$(begin_marker)" -v end="$(end_marker)" \
        '$0 == begin { skip = 1; next } $0 == end { skip = 0; next } !skip'
}
