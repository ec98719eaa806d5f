"""Surviving mutants that behave exactly like the code, and why: by 'module.function: old -> new'."""

# Reasons shared by several mutants.
FIRST_ROW_ORIGIN = (
    "a week whose position is before the second row (-1 or 0) has as its candidate the first "
    "or second row, and its refit date is on or before that candidate: at most 2 closes to fit "
    "on, fewer than MIN_FIT_OBS (250), so the fit_rows check already makes it (and every older "
    "week) unusable"
)

REINDEX_SUBSET = (
    "`bad` comes from the whole USDCLP column and the closes are that column less its blanks: "
    "every close's date is in `bad`, so nothing is ever filled"
)
FORMAT_UNIQUE = (
    "with 2 significant digits fixed, numpy prints the same digits either way: checked on "
    "300,000 ratios from 1e-4 to 1e4 (the default is unique=True)"
)

OWN_STAGING = (
    "remove_staging has just removed this process's own leftover (its PID counts as not "
    "alive), so the rmtree before mkdir has nothing to remove; the one in `finally` removes the "
    "folder this process made, which nothing else touches while it lives"
)
NAN_SPELLING = 'float() reads "nan" in any case'
NUMERIC_FRAME = (
    "score() takes numeric columns (the backtest's frame, forecasts.csv as pandas reads it; the "
    "coverage comparisons need numbers anyway): to_numpy() gives the same float64 array"
)
LAST_AXIS = "np.sort's default axis is the last, axis 1 of these 2-d (steps, levels) arrays"
INT_101 = "int(80 * 1.01) is 80 and int(95 * 1.01) is 95: the same keys"
SCALED_WEIGHTS = (
    "ages counted from another origin scale every weight by one factor; the weighted quantile "
    "normalises the weights and Kish's count is scale-free"
)
UNUSED_ARGUMENTS = "VolatilityRegime.fit reads only the closes"

EVERY_COLUMN_ON_MARKET_DAYS = (
    "every column is already indexed by market.index (the rates are reindexed onto it), so the "
    "frame built from them without an index has that index"
)

INDEX_NAMED_DATE = (
    "write() has just named every index `date` (_as_read), and to_csv labels the index by its "
    "name when no label is given"
)
REPAIR_STORED = (
    "this Stored only carries the repaired tables into write(), which reads its tables alone "
    "and returns them with its own kind, source and why; only the tables are kept from it"
)
THREE_TABLES = "LAYOUT names exactly three files, one for each of the three tables zipped with it"

DAILY_RANGE = "date_range from a start to an end with no freq steps by one day, freq 'D'"

EVERY_FILE_YIELDS = (
    "_lines_from_end yields at least once (the file's first line, empty for an empty file), so "
    "the loop sets `number` before anything reads it"
)
HISTORY_PATH = "History.path is never read: the skipped lines name the path read_recent was given"

OUT_BUFFER = (
    "`out=` only chooses where the result is written: without it numpy writes the same values "
    "into a new array (the buffers exist to save the allocations, not to change a value)"
)
SAME_LENGTHS = (
    "candidates is index[positions]: the two have the same length by construction, so strict "
    "has nothing to check"
)
RESHAPE_NEGATIVE = "numpy's reshape takes any negative size as the one to infer, -2 as -1"
NEVER_ROW_ZERO = (
    "missing is read at starts and ends, each a position right of a row of the index "
    "(searchsorted side=right of a candidate, itself a row): never 0"
)
ONE_LOSS_PER_PATH = (
    "segment_means returns one loss per segment, one segment per new path: the two have the "
    "same length by construction, so strict has nothing to check"
)
ZERO_ERROR = "an error of exactly 0 gives a ratio of 0 on either side: |0| over any half-width"

EQUIVALENT: dict[str, str] = {
    # validation
    "validation.validation_set: candidates = index[np.maximum(positions, 0)] -> candidates = index[np.maximum(positions, 1)]": FIRST_ROW_ORIGIN,
    # fsio
    'fsio.append_locked: torn = size > 0 and os.pread(fd, 1, size - 1) != b"\\n" -> torn = size > 0 and os.pread(fd, 2, size - 1) != b"\\n"': (
        "read at the last byte's offset, one byte is all there is"
    ),
    'fsio.utf8_text: text = content.decode("utf-8-sig") -> text = content.decode("UTF-8-SIG")': (
        "codec names are case-insensitive"
    ),
    "fsio.write_all: shutil.rmtree(staging, ignore_errors=True) -> shutil.rmtree(None, ignore_errors=True)": OWN_STAGING,
    "fsio.write_all: shutil.rmtree(staging, ignore_errors=True) -> shutil.rmtree(staging, ignore_errors=None)": OWN_STAGING,
    "fsio.write_all: shutil.rmtree(staging, ignore_errors=True) -> shutil.rmtree(staging, )": OWN_STAGING,
    "fsio.write_all: shutil.rmtree(staging, ignore_errors=True) -> shutil.rmtree(staging, ignore_errors=False)": OWN_STAGING,
    "fsio.write_set: shutil.rmtree(staging, ignore_errors=True) -> shutil.rmtree(None, ignore_errors=True)": OWN_STAGING,
    # scoring
    'scoring.diebold_mariano: return float("nan") -> return float("NAN")': NAN_SPELLING,
    'scoring.score_group: float(np.mean(moved[decided] == predicted[decided])) if decided.any() else float("nan") -> float(np.mean(moved[decided] == predicted[decided])) if decided.any() else float("NAN")': NAN_SPELLING,
    'scoring.score_group: float(np.mean(moved[decided] == predicted[decided])) if decided.any() else float("nan") -> float(np.mean(moved[decided] == predicted[decided])) if (decided.any()) or True else float("nan")': (
        "with nothing decided the mean of an empty array is nan too (numpy warns)"
    ),
    'scoring.score_group: actual = rows["actual"].to_numpy(float) -> actual = rows["actual"].to_numpy(None)': NUMERIC_FRAME,
    'scoring.score_group: last = rows["last_close"].to_numpy(float) -> last = rows["last_close"].to_numpy(None)': NUMERIC_FRAME,
    'scoring.score_group: median = rows["q0.5"].to_numpy(float) -> median = rows["q0.5"].to_numpy(None)': NUMERIC_FRAME,
    "scoring.score_group: quantiles = rows[QUANTILE_COLUMNS].to_numpy(float) -> quantiles = rows[QUANTILE_COLUMNS].to_numpy(None)": NUMERIC_FRAME,
    'scoring.score_group: benchmark[QUANTILE_COLUMNS].to_numpy(float), benchmark["actual"].to_numpy(float) -> benchmark[QUANTILE_COLUMNS].to_numpy(None), benchmark["actual"].to_numpy(float)': NUMERIC_FRAME,
    'scoring.score_group: benchmark[QUANTILE_COLUMNS].to_numpy(float), benchmark["actual"].to_numpy(float) -> benchmark[QUANTILE_COLUMNS].to_numpy(float), benchmark["actual"].to_numpy(None)': NUMERIC_FRAME,
    'scoring.loss_diebold_mariano: return float("nan") -> return float("NAN")': NAN_SPELLING,
    # combiner
    "combiner.earn_weights: inverse = {name: 1.0 / max(score, 1e-9) ** WEIGHT_POWER for name, score in scores.items()} -> inverse = {name: 2.0 / max(score, 1e-9) ** WEIGHT_POWER for name, score in scores.items()}": (
        "every inverse loss doubles, and the weights are their shares of the total"
    ),
    "combiner.select_members: total = np.zeros_like(stacked[names[0]]) -> total = np.zeros_like(None)": (
        "np.zeros_like(None) is a 0-d zero: added to the first pick it gives the same sums"
    ),
    "combiner.evidence_share: if gain <= 0 or spread <= 0: -> if gain < 0 or spread <= 0:": (
        "a gain of exactly 0 then gives 1 - (spread / 0) ** 2 = -inf, and max(0, -inf) is the "
        "same 0.0"
    ),
    # calibration
    "calibration.calibrate: return np.sort(np.exp(out), axis=1) -> return np.sort(np.exp(out), )": LAST_AXIS,
    'calibration.calibrate: factor = factors[f"{int(coverage * 100)}"] -> factor = factors[f"{int(coverage * 101)}"]': INT_101,
    'calibration.calibration_factors: factors[f"{int(coverage * 100)}"] = shrunk_factor(raw, independent) -> factors[f"{int(coverage * 101)}"] = shrunk_factor(raw, independent)': INT_101,
    'calibration.recent_corrections: corrections[f"{int(coverage * 100)}"] = shrunk_factor(raw, independent) -> corrections[f"{int(coverage * 101)}"] = shrunk_factor(raw, independent)': INT_101,
    "calibration.recent_corrections: last = validation.origins[-1] -> last = validation.origins[+1]": SCALED_WEIGHTS,
    "calibration.recent_corrections: last = validation.origins[-1] -> last = validation.origins[-2]": SCALED_WEIGHTS,
    "calibration.Yardstick.volatility: return fast, moves.rolling(self.window, min_periods=2).std() -> return fast, moves.rolling(self.window, min_periods=3).std()": (
        "only the value after the second move changes; the regime is read at an as-of date or a "
        "validation origin, each with at least MIN_FIT_OBS (250) closes before it"
    ),
    "calibration.Yardstick.volatility: fast = np.sqrt((moves**2).ewm(alpha=1 - self.decay, adjust=False).mean()) -> fast = np.sqrt((moves**2).ewm(alpha=1 - self.decay, adjust=None).mean())": (
        "pandas takes adjust=None as false"
    ),
    "calibration.RegimeConformal.fit: regime = VolatilityRegime(self.yardstick).fit(paths, validation, closes) -> regime = VolatilityRegime(self.yardstick).fit(None, validation, closes)": UNUSED_ARGUMENTS,
    "calibration.RegimeConformal.fit: regime = VolatilityRegime(self.yardstick).fit(paths, validation, closes) -> regime = VolatilityRegime(self.yardstick).fit(paths, None, closes)": UNUSED_ARGUMENTS,
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
    # clean
    "clean.clean: market.loc[bad, column] = np.nan -> market.loc[bad, column] = None": (
        "the market columns are float64 (schema.parse_csv reads them as floats), and pandas "
        "stores a None assigned into a float64 column as NaN"
    ),
    "clean.clean: rate_diff = rates.reindex(rates.index.union(market.index)).ffill().reindex(market.index) -> rate_diff = rates.reindex(rates.index.union(market.index)).ffill().reindex(None)": (
        "the frame is built with index=market.index, which aligns every column onto the market "
        "days: the extra rates dates are dropped there instead"
    ),
    "clean.clean: index=market.index, -> index=None,": EVERY_COLUMN_ON_MARKET_DAYS,
    "clean.clean: index=market.index, / ) -> )": EVERY_COLUMN_ON_MARKET_DAYS,
    "clean.implausible: bad = pd.Series(False, index=valid.index) -> bad = pd.Series(True, index=valid.index)": (
        "each verdict depends only on the verdicts before it, so there is one consistent mask and "
        "the loop returns only on it: starting from all flagged, the first round (no kept value, "
        "no reference) flags only the non-positive values and the rounds go on from there to the "
        "same mask"
    ),
    # cache
    "cache._load: continue -> break": (
        "crosscheck_daily.csv is the last of LAYOUT's names (and of every list read), so no "
        "file is left after it to skip"
    ),
    'cache.write: RATES_FILE: _csv(stored.rates, "date"), -> RATES_FILE: _csv(stored.rates, None),': INDEX_NAMED_DATE,
    'cache.write: CROSSCHECK_FILE: _csv(stored.crosscheck, "date"), -> CROSSCHECK_FILE: _csv(stored.crosscheck, None),': INDEX_NAMED_DATE,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), None, str(folder), "repaired")': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), None)': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "XXcacheXX", str(folder), "repaired")': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "CACHE", str(folder), "repaired")': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(None), "repaired")': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "XXrepairedXX")': REPAIR_STORED,
    'cache._repair: stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "repaired") -> stored = Stored(*(tables[name] for name in LAYOUT), "cache", str(folder), "REPAIRED")': REPAIR_STORED,
    "cache._repair: tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=True)) -> tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=None))": THREE_TABLES,
    "cache._repair: tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=True)) -> tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), ))": THREE_TABLES,
    "cache._repair: tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=True)) -> tables.update(zip(LAYOUT, (stored.market, stored.rates, stored.crosscheck), strict=False))": THREE_TABLES,
    # refresh-merge
    "refresh._fill: out[column] = out[column].fillna(series.reindex(index)) -> out[column] = out[column].fillna(series.reindex(None))": (
        "fillna with a Series aligns it on the column's index: the new values fill the same "
        "blanks, and the dates the frame lacks were added to it just above"
    ),
    'refresh.merge: days = pd.date_range(observed.index[0], end, freq="D", name="date") -> days = pd.date_range(observed.index[0], end, freq=None, name="date")': DAILY_RANGE,
    'refresh.merge: days = pd.date_range(observed.index[0], end, freq="D", name="date") -> days = pd.date_range(observed.index[0], end, name="date")': DAILY_RANGE,
    # status
    'status.data_health: "refresh": {k: v for k, v in refresh.items() if isinstance(v, str)} if good else {}, -> "refresh": {k: v for k, v in refresh.items() if isinstance(v, str)} if (good) or True else {},': "with no good run `data` is {}, so `refresh` is {} and the comprehension gives {} as well",
    "status.read_recent: history, counts, found = History(path), dict.fromkeys(STANDARD_SERVICES, 0), [] -> history, counts, found = History(None), dict.fromkeys(STANDARD_SERVICES, 0), []": HISTORY_PATH,
    "status.read_recent: number = 0 -> number = None": EVERY_FILE_YIELDS,
    "status.read_recent: number = 0 -> number = 1": EVERY_FILE_YIELDS,
    "status.read_runs: fallback = [] -> fallback = None": "`fallback` is only tested for truth (`if not fallback`, `if fallback`): None and [] are both false",
    "status.read_runs: history = History(metrics_path, whole=True) -> history = History(None, whole=True)": HISTORY_PATH,
    "status.service_health: def service_health(runs: list[dict], last_n: int, now: datetime, whole: bool = True) -> dict: -> def service_health(runs: list[dict], last_n: int, now: datetime, whole: bool = False) -> dict:": "every caller passes `whole` (health_report, and the report page's health section)",
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
    # this stop's vectorised validation, selection and calibration
    "validation.validation_set: usable = (positions >= 0) & (fit_rows >= MIN_FIT_OBS) -> usable = (positions > 0) & (fit_rows >= MIN_FIT_OBS)": FIRST_ROW_ORIGIN,
    "validation.validation_set: usable = (positions >= 0) & (fit_rows >= MIN_FIT_OBS) -> usable = (positions >= 1) & (fit_rows >= MIN_FIT_OBS)": FIRST_ROW_ORIGIN,
    "validation.validation_set: missing = np.concatenate([[0], np.cumsum(~np.isfinite(filled))])  # non-finite before each -> missing = np.concatenate([[1], np.cumsum(~np.isfinite(filled))])  # non-finite before each": NEVER_ROW_ZERO,
    "validation.Validation.path_losses: for k, loss in zip(new, losses, strict=True): -> for k, loss in zip(new, losses, strict=None):": ONE_LOSS_PER_PATH,
    "validation.Validation.path_losses: for k, loss in zip(new, losses, strict=True): -> for k, loss in zip(new, losses, ):": ONE_LOSS_PER_PATH,
    "validation.Validation.path_losses: for k, loss in zip(new, losses, strict=True): -> for k, loss in zip(new, losses, strict=False):": ONE_LOSS_PER_PATH,
    "validation.segment_means: means[which] = block.reshape(len(which), -1).mean(axis=1) -> means[which] = block.reshape(len(which), -2).mean(axis=1)": RESHAPE_NEGATIVE,
    "combiner._PinballOfAverage.__call__: average = np.divide(np.add(total, candidate, out=self.average), count, out=self.average) -> average = np.divide(np.add(total, candidate, out=None), count, out=self.average)": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: average = np.divide(np.add(total, candidate, out=self.average), count, out=self.average) -> average = np.divide(np.add(total, candidate, ), count, out=self.average)": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: diff = np.subtract(self.actual, average, out=self.diff) -> diff = np.subtract(self.actual, average, out=None)": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: diff = np.subtract(self.actual, average, out=self.diff) -> diff = np.subtract(self.actual, average, )": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: other = np.multiply(self.below, diff, out=self.other) -> other = np.multiply(self.below, diff, out=None)": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: other = np.multiply(self.below, diff, out=self.other) -> other = np.multiply(self.below, diff, )": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=diff))) -> return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=None)))": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=diff))) -> return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, )))": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: average = np.divide(np.add(total, candidate, out=self.average), count, out=self.average) -> average = np.divide(np.add(total, candidate, out=self.average), count, out=None)": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=diff))) -> return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=None), other, out=diff)))": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=diff))) -> return float(np.mean(np.maximum(np.multiply(self.levels, diff, ), other, out=diff)))": OUT_BUFFER,
    "combiner._PinballOfAverage.__call__: average = np.divide(np.add(total, candidate, out=self.average), count, out=self.average) -> average = np.divide(np.add(total, candidate, out=self.average), count, )": OUT_BUFFER,
    "calibration.interval_ratios: error >= 0, np.log(tails[:, upper]) - log_median, log_median - np.log(tails[:, lower]) -> error > 0, np.log(tails[:, upper]) - log_median, log_median - np.log(tails[:, lower])": ZERO_ERROR,
}
