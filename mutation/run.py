"""Mutation testing of the critical modules: mutmut puts plausible one-line bugs into a module,
one at a time, and runs the fast tests that cover it; a mutant the tests do not notice survives.

    python -m mutation.run [MODULE ...] [--jobs N]     # make mutation [MODULE=calibration]

Each module runs in its own folder, .mutation/<module>/ (a copy of the package under src/, the
tests, the benchmarks' helpers), one module after another; its score is killed / (mutants -
equivalent), where an equivalent mutant is one that behaves exactly like the code (listed with
the reason in mutation/equivalent.py, keyed by function and changed line so that renumbering
does not lose them). Prints one row per module and each surviving mutant's change.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .equivalent import EQUIVALENT

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
PACKAGE = ROOT / "shared" / "fxforecast"


@dataclass(frozen=True)
class Module:
    path: str  # under shared/fxforecast
    tests: tuple[str, ...]  # pytest arguments selecting the fast tests that cover it
    functions: tuple[str, ...] = ("*",)  # which of its functions are mutated (fnmatch)


POINT_IN_TIME = "tests/engine/test_point_in_time.py"
REFRESH = "tests/marketdata/test_refresh.py"
# Every weekly origin of the snapshot cleaned (6 s): for the signals' own mutants only.
SLOW_SIGNALS = (
    "tests/marketdata/test_signals.py::test_no_signal_fires_at_any_weekly_origin_of_the_snapshot"
)
MODULES = {
    "defects": Module(
        "marketdata/defects.py",
        ("tests/marketdata/test_defects.py", "tests/marketdata/test_clean.py"),
    ),
    "clean": Module(
        "marketdata/clean.py",
        (
            "tests/marketdata/test_clean.py",
            "tests/marketdata/test_clean_rules.py",
            "tests/marketdata/test_defects.py",
            "tests/marketdata/test_signals.py",
            f"--deselect={SLOW_SIGNALS}",
            f"{POINT_IN_TIME}::test_the_cleaned_frame_as_of_a_day_is_the_later_frame_cut_at_that_day",
            f"{POINT_IN_TIME}::test_a_missing_exogenous_value_is_the_previous_days",
        ),
    ),
    "signals": Module(
        "marketdata/signals.py",
        ("tests/marketdata/test_signals.py", "tests/marketdata/test_clean.py"),
    ),
    "validation": Module(
        "engine/validation.py",
        (
            "tests/engine/test_validation.py",
            "tests/engine/test_point_in_time.py",
            "tests/engine/test_gate.py",
            "tests/engine/test_ensemble.py::test_pinball_loss_by_hand",
            "tests/engine/test_ensemble.py::test_too_short_history_is_a_clear_error",
            "tests/engine/test_ensemble.py::test_long_horizons_validate_on_as_many_weeks_as_the_data_allows",
        ),
    ),
    "combiner": Module(
        "engine/combiner.py",
        (
            "tests/engine/test_combiner_rules.py",
            "tests/engine/test_combination.py",
            "-k",
            "not real_data",
        ),
    ),
    "calibration": Module(
        "engine/calibration.py",
        (
            "tests/engine/test_combiner_rules.py",
            "tests/engine/test_combination.py",
            "-k",
            "not real_data",
        ),
    ),
    "gate": Module("engine/gate.py", ("tests/engine/test_gate.py",)),
    # Not the two tests run as another user by the system's Python, which lacks mutmut.
    "fsio": Module(
        "fsio.py", ("tests/test_fsio.py", "-k", "not service_user and not root_created")
    ),
    "cache": Module(
        "marketdata/cache.py",
        (
            "tests/marketdata/test_cache.py",
            "tests/marketdata/test_cache_rules.py",
            f"{REFRESH}::test_unreadable_cache_is_moved_aside_and_rebuilt",
            f"{REFRESH}::test_unwritable_cache_is_a_one_line_error",
        ),
    ),
    "refresh-merge": Module(
        "marketdata/refresh.py",
        (
            f"{REFRESH}::test_normal_refresh_adds_new_rows_and_keeps_stored_ones",
            f"{REFRESH}::test_second_refresh_with_nothing_new_changes_nothing",
            f"{REFRESH}::test_stored_values_win_over_a_revised_answer",
            f"{REFRESH}::test_a_refreshing_run_uses_exactly_what_the_cache_now_holds",
            "tests/marketdata/test_refresh_merge.py",
        ),
        ("x__fill*", "x_merge*"),
    ),
    # Not the test that runs a service in a child process (6 s, and it cannot see a mutant).
    "status": Module(
        "ops/status.py",
        (
            "tests/ops/test_status.py",
            "tests/ops/test_status_rules.py",
            "--deselect=tests/ops/test_status.py::test_lines_that_went_to_the_fallback_file_are_an_alert",
        ),
    ),
    "scoring": Module("evaluation/scoring.py", ("tests/evaluation/test_scoring.py",)),
    "report-escaping": Module(
        "ops/report/sections.py",
        ("tests/ops/test_report_escaping.py",),
        ("x__cell*", "x__table*", "x__swatch*", "x__data_facts*"),
    ),
}
KILLED = ("killed", "timeout", "segfault")


def prepare(name: str, module: Module) -> Path:
    """A fresh folder with the package under src/ (mutmut's layout), the tests and its config."""
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    shutil.copytree(PACKAGE, work / "src" / "fxforecast", ignore=ignore)
    for folder in ("tests", "benchmarks", "services"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    quoted = ", ".join(f'"{arg}"' for arg in module.tests)
    config = (ROOT / "pyproject.toml").read_text() + (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f'only_mutate = ["src/fxforecast/{module.path}"]\n'
        'also_copy = ["benchmarks/", "services/"]\n'
        f"pytest_add_cli_args_test_selection = [{quoted}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        # A mutant that loops for ever is stopped at 4x its tests' time (mutmut's 15x let one
        # take 20 minutes); stopped, it counts as killed.
        "timeout_multiplier = 4.0\n"
        "timeout_constant = 5.0\n"
    )
    (work / "pyproject.toml").write_text(config)
    return work


def run_mutmut(work: Path, module: Module, jobs: int) -> int:
    prefix = "fxforecast." + module.path.removesuffix(".py").replace("/", ".")
    patterns = [f"{prefix}.{function}" for function in module.functions]
    mutmut = Path(sys.executable).parent / "mutmut"
    command = [str(mutmut), "run", "--max-children", str(jobs), *patterns]
    with open(work / "mutmut.log", "w") as log:
        # Its own process group, so an interrupted run leaves no mutant process behind.
        process = subprocess.Popen(
            command, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait()
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    return code


def results(work: Path, module: Module) -> dict[str, str]:
    """Each mutant's status by name (mutmut's meta file, read in the module's folder)."""
    import fnmatch
    import json

    from mutmut.stats import status_by_exit_code

    meta = work / "mutants" / "src" / "fxforecast" / (module.path + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    prefix = "fxforecast." + module.path.removesuffix(".py").replace("/", ".") + "."
    wanted = [prefix + function for function in module.functions]
    return {
        key: status_by_exit_code[code]
        for key, code in codes.items()
        if any(fnmatch.fnmatch(key, pattern) for pattern in wanted)
    }


def change(work: Path, module: Module, mutant: str) -> str:
    """'module.function: old line -> new line' (several lines joined by ' / '): how a mutant is
    named in equivalent.py, whatever its number."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = Path.cwd()
    os.chdir(work)
    try:
        reset_config()
        diff = get_diff_for_mutant(mutant, path=Path("src/fxforecast") / module.path)
    finally:
        os.chdir(here)
    removed = [line[1:].strip() for line in diff.splitlines()[2:] if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines()[2:] if line.startswith("+")]
    function = mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[1]
    function = function.removeprefix("x_").replace("ǁ", ".").lstrip("x.")
    where = f"{Path(module.path).stem}.{function}"
    return f"{where}: {' / '.join(removed)} -> {' / '.join(added)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (2)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.modules if name not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    rows, notes, failed = [], [], []
    for name in args.modules or list(MODULES):
        module = MODULES[name]
        print(f"{name}: mutating shared/fxforecast/{module.path} ...", flush=True)
        work = prepare(name, module)
        code = run_mutmut(work, module, args.jobs)
        if code != 0:
            print(f"error: mutmut failed on {name} (exit {code}); see {work}/mutmut.log")
            failed.append(name)
            continue
        statuses = results(work, module)
        killed = sum(status in KILLED for status in statuses.values())
        equivalent, survivors = 0, []
        for mutant, status in sorted(statuses.items()):
            if status in KILLED:
                continue
            described = change(work, module, mutant)
            if status == "survived" and described in EQUIVALENT:
                equivalent += 1
            else:
                survivors.append(f"  {name} {status}: {described}  [{mutant}]")
        counted = len(statuses) - equivalent
        score = 100.0 * killed / counted if counted else 100.0
        rows.append((name, len(statuses), killed, equivalent, len(survivors), score))
        notes += survivors
        print(f"{name}: {killed} of {counted} non-equivalent mutants killed ({score:.1f}%)")
    if notes:
        print("\nNot killed (not listed as equivalent):")
        print("\n".join(notes))
    print(f"\n{'module':<16}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'left':>6}{'score':>8}")
    for name, total, killed, equivalent, left, score in rows:
        print(f"{name:<16}{total:>8}{killed:>8}{equivalent:>8}{left:>6}{score:>7.1f}%")
    for name in failed:
        print(f"{name:<16}  mutmut failed: see .mutation/{name}/mutmut.log")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
