"""Surviving mutants that behave exactly like the code, and why: by 'module.function: old -> new'."""

# Reasons shared by several mutants.
UNREACHABLE_AT = (
    "an origin needs MIN_FIT_OBS (250) closes up to its refit date, so the loop stops at that "
    "check long before a weekly step could reach a position before the first row: `at < 0` is "
    "never true, nor `at <= 0`"
)

REINDEX_SUBSET = (
    "`bad` comes from the whole USDCLP column and the closes are that column less its blanks: "
    "every close's date is in `bad`, so nothing is ever filled"
)
FORMAT_UNIQUE = (
    "with 2 significant digits fixed, numpy prints the same digits either way: checked on "
    "300,000 ratios from 1e-4 to 1e4 (the default is unique=True)"
)

EQUIVALENT: dict[str, str] = {
    # validation
    "validation.validation_set: if at < 0: -> if at <= 0:": UNREACHABLE_AT,
    "validation.validation_set: if at < 0: -> if at < 1:": UNREACHABLE_AT,
    "validation.validation_set: break -> return": UNREACHABLE_AT,
    # signals
    "signals.level_shift: flagged = bad.reindex(close.index, fill_value=False) -> flagged = bad.reindex(close.index, fill_value=None)": REINDEX_SUBSET,
    "signals.level_shift: flagged = bad.reindex(close.index, fill_value=False) -> flagged = bad.reindex(close.index, )": REINDEX_SUBSET,
    "signals.level_shift: flagged = bad.reindex(close.index, fill_value=False) -> flagged = bad.reindex(close.index, fill_value=True)": REINDEX_SUBSET,
    "signals.level_shift: runs = (flagged & ~flagged.shift(fill_value=False)).cumsum().where(flagged) -> runs = (flagged & ~flagged.shift(fill_value=True)).cumsum().where(flagged)": (
        "only a run that starts at the first close changes: it is numbered 0 instead of 1 and "
        "every later run one less; runs are only compared with each other's numbers, so the same "
        "closes are picked"
    ),
    "signals.level_shift: before = close[~flagged & (close.index < shifted.index[0])].iloc[-5:] -> before = close[~flagged & (close.index <= shifted.index[0])].iloc[-5:]": (
        "the shift's first close is flagged, so ~flagged already leaves it out"
    ),
    'signals.level_shift: factor = np.format_float_positional(ratio, 2, unique=False, fractional=False, trim="-") + "x" -> factor = np.format_float_positional(ratio, 2, fractional=False, trim="-") + "x"': FORMAT_UNIQUE,
    'signals.level_shift: factor = np.format_float_positional(ratio, 2, unique=False, fractional=False, trim="-") + "x" -> factor = np.format_float_positional(ratio, 2, unique=True, fractional=False, trim="-") + "x"': FORMAT_UNIQUE,
    # defects
    'defects.check_dates: f"{dates.iloc[rows[0] - 2].date()} appears {len(rows)} times; keep one row per date" -> f"{dates.iloc[rows[1] - 2].date()} appears {len(rows)} times; keep one row per date"': (
        "every row in `rows` holds the same (repeated) date"
    ),
    'defects.gaps: days = np.diff(index.to_numpy()).astype("timedelta64[D]").astype(int) -> days = np.diff(index.to_numpy()).astype("timedelta64[D]").astype(None)': (
        "astype(None) gives whole days as floats: compared with MAX_GAP_DAYS and passed through "
        "int() alike"
    ),
    # gate
    "gate.problems: if np.any(np.diff(quantiles, axis=1) < 0): -> if np.any(np.diff(quantiles, ) < 0):": (
        "np.diff's default axis is the last, which is axis 1 of the 2-d array checked just above"
    ),
}
