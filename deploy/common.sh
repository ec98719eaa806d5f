# shellcheck shell=bash disable=SC2154  # usage is set by the sourcing script
# Shared by install.sh and uninstall.sh (sourced): arguments, dry-run aware actions and the
# crontab block. The actions expect PREFIX, DRY_RUN and CRON_USER to be set.

say() { echo "$*"; }
die() { echo "error: $*" >&2; exit 2; }

# PREFIX [--dry-run] plus the calling script's own options: its extra_option function takes
# "$@", sets what it needs and USED (arguments consumed), or returns 1 for an unknown option.
parse_arguments() {
    PREFIX="" DRY_RUN=0
    while (($#)); do
        case $1 in
            --dry-run) DRY_RUN=1 USED=1 ;;
            -h | --help) echo "$usage"; exit 0 ;;
            -*) extra_option "$@" || die "unknown option $1; $usage" ;;
            *) [ -z "$PREFIX" ] || die "more than one PREFIX given; $usage"; PREFIX=$1 USED=1 ;;
        esac
        shift "$USED"
    done
    [ -n "$PREFIX" ] || die "no PREFIX given; $usage"
    # Resolved (., .., symlinks) so that no spelling of a folder passes for another.
    PREFIX=$(realpath -m -- "$PREFIX")
}

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
