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

# The block install puts in the crontab from the crontab file $1: markers around its lines.
cron_block() {
    begin_marker
    sed "s|@PREFIX@|$PREFIX|g" "$1"
    end_marker
}

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

# The crontab text $1 without the block $2 (whole lines, as written); fails when $1 does not
# hold that block unchanged: then nothing proves which lines are fxforecast's.
without_block() {
    local text=$'\n'"$1"$'\n' block=$'\n'"$2"$'\n'
    [[ $text == *"$block"* ]] || return 1
    text=${text/"$block"/$'\n'}
    text=${text#$'\n'}
    printf '%s' "${text%$'\n'}"
}

# The numbered lines of crontab text $1 that look like this PREFIX's: from its BEGIN marker to
# its END marker (or to the end when that was edited away) and any line that names PREFIX.
prefix_lines() {
    awk -v begin="$(begin_marker)" -v end="$(end_marker)" -v job="cd $PREFIX && " '
        $0 == begin { inside = 1 }
        inside || index($0, job) || $0 == end { printf "  line %d: %s\n", NR, $0 }
        $0 == end { inside = 0 }' <<<"$1"
}

# Refuse (exit 2), changing nothing, when crontab text $1 has lines of this PREFIX but not the
# block $2 as install wrote it.
refuse_edited_block() {
    echo "error: the crontab of $CRON_USER holds lines for $PREFIX that are not the block" \
        "deploy/install.sh wrote, unchanged; only that block is ever removed or replaced." \
        "Remove or restore these lines by hand (crontab -u $CRON_USER -e), then run again:" >&2
    prefix_lines "$1" >&2
    exit 2
}

