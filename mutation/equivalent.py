"""Surviving mutants that behave exactly like the code, and why: by 'module.function: old -> new'."""

# Reasons shared by several mutants.
UNREACHABLE_AT = (
    "an origin needs MIN_FIT_OBS (250) closes up to its refit date, so the loop stops at that "
    "check long before a weekly step could reach a position before the first row: `at < 0` is "
    "never true, nor `at <= 0`"
)

EQUIVALENT: dict[str, str] = {
    # validation
    "validation.validation_set: if at < 0: -> if at <= 0:": UNREACHABLE_AT,
    "validation.validation_set: if at < 0: -> if at < 1:": UNREACHABLE_AT,
    "validation.validation_set: break -> return": UNREACHABLE_AT,
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
