"""A service run's reliability (issue 14, cases 1, 4-7 and 9), each through `fxforecast run` in
this process with the random walk only: nothing broken is published, every run leaves a metrics
line, requests are honoured or refused, status survives any line, killed runs leave nothing
behind, and tests never read the developer's own settings."""

import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from fxforecast.cli import main
from fxforecast.evaluation import backtest
from fxforecast.marketdata.schema import default_data_dir
from fxforecast.quantiles import QUANTILE_COLUMNS
from helpers import (
    FAST_MEMBERS,
    assert_publishable,
    edit_rows,
    error_line,
    metrics_lines,
    run_service,
    service_env,
    service_script,
    start_service,
    strict_json,
)


def test_a_missing_week_in_the_validation_window_publishes_a_finite_forecast(
    cli, data_copy, tmp_path
):
    edit_rows(
        data_copy / "market_daily.csv",
        lambda lines: [line for line in lines if not "2024-06-10" <= line[:10] <= "2024-06-14"],
    )
    code, out, err = cli(DATA_DIR=data_copy)
    assert code == 0, err
    assert "nan" not in out
    payload = strict_json((tmp_path / "output/forecaster_7d/2024-11-29/forecast.json").read_text())
    published = [[step[c] for c in QUANTILE_COLUMNS] for step in payload["steps"]]
    assert_publishable(published, [step["date"] for step in payload["steps"]], "2024-11-29", 7)
    # By hand: of the 78 weekly origins, 2024-06-14 falls back to 2024-06-07, whose path lies
    # in the gap, and so does the week before: 76 earn the weights.
    assert payload["validation_origins"] == 76 and payload["status"] == "ok"
    assert any("2024-06-07 to 2024-06-17" in warning for warning in payload["warnings"])
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["data"]["gaps"] == [{"after": "2024-06-07", "before": "2024-06-17", "days": 10}]
    assert any("2024-06-07 to 2024-06-17" in warning for warning in line["warnings"])
    assert all(math.isfinite(value) for value in line["forecast"].values())


def test_a_missing_env_file_is_an_error_that_monitoring_sees(cli, tmp_path):
    code, _, err = cli("--env-file", tmp_path / "nowhere.env")
    assert code == 2
    assert error_line(err) == (
        f"error: --env-file {tmp_path / 'nowhere.env'} does not exist; give an existing .env file"
    )
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "nowhere.env" in line["error"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_member_timeout_must_be_finite_and_positive(cli, value):
    code, _, err = cli(MEMBER_TIMEOUT_S=value)
    assert code == 2
    assert error_line(err) == (
        f"error: MEMBER_TIMEOUT_S={value!r} in the environment: must be a finite number above 0"
    )


def test_status_survives_valid_json_lines_with_wrong_types(tmp_path, capsys):
    good = {
        "timestamp": pd.Timestamp.now("UTC").isoformat(),
        "service": "forecaster_7d",
        "status": "ok",
        "members": {"random_walk": {"status": "ok", "reason": None, "weight": 1.0}},
        "warnings": [],
    }
    bad = [
        {**good, "members": {"var": {"status": "ok", "weight": "high"}}},
        {**good, "warnings": "stale"},
        {**good, "status": 3},
        {**good, "members": ["var"]},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad]))
    code = main(["status", "--metrics", str(path), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert len(report["skipped_lines"]) == 4 and captured.err.count("warning:") == 4
    assert "members.var.weight is a str" in report["skipped_lines"][0]
    week = report["services"]["forecaster_7d"]
    assert week["runs"] == 1 and week["last_warnings"] == [] and week["alerts"] == []
    assert code == 2  # the other three services never ran


def test_the_next_run_removes_staging_folders_of_killed_runs(cli, tmp_path):
    stale = tmp_path / "output/forecaster_7d/.2024-11-29.partial-99999999"
    stale.mkdir(parents=True)
    (stale / "forecast.json").write_text('{"half": ')
    unrelated = tmp_path / "output/forecaster_7d/notes.partial"
    unrelated.write_text("an operator's file")
    code, _, err = cli()
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "output/forecaster_7d").iterdir()) == [
        "2024-11-29",
        "notes.partial",
    ]


def test_services_in_tests_ignore_the_callers_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no such folder"))
    monkeypatch.setenv("STALE_DATA_DAYS", "not a number")
    done = run_service("forecaster_7d", tmp_path, **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr


# Issue 21: nothing wrong published as "ok"; odd input and signals in the run itself.


@pytest.mark.parametrize(
    "name, edit, line",
    [
        ("market_daily.csv", lambda lines: [*lines, "2024-12-02,9"], 3658),
        ("market_daily.csv", lambda lines: [*lines, "2024-12-02"], 3658),
        ("market_daily.csv", lambda lines: [*lines[:-1], lines[-1][:30]], 3657),
        ("rates_daily.csv", lambda lines: [*lines, "2024-11-30,4.58"], 5449),
        ("market_daily.csv", lambda lines: [*lines[:99], lines[99][:25], *lines[100:]], 100),
    ],
)
def test_a_torn_line_is_refused_naming_file_and_line(cli, data_copy, tmp_path, name, edit, line):
    """Today `2024-12-02,9` moves the as-of date to a day with no data, status ok."""
    edit_rows(data_copy / name, edit)
    torn = (data_copy / name).read_text().splitlines()[line - 1]
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    width = 7 if name == "market_daily.csv" else 4
    assert error_line(err) == (
        f"error: {data_copy / name} line {line}: {torn.count(',') + 1} field(s) where the header "
        f"has {width} ({torn!r}): a cut or torn line; complete or remove it"
    )
    assert not (tmp_path / "output/forecaster_7d").exists()


def cut_at(path, date: str) -> None:
    """The file as a copy cut short at the end of `date`'s line (a line boundary) leaves it."""
    edit_rows(path, lambda lines: [lines[0], *(line for line in lines[1:] if line[:10] <= date)])


def test_data_cut_back_in_time_never_replaces_the_published_as_of(cli, data_copy, tmp_path):
    """A market file read half-replaced ended on 2017-08-14: today that run published "ok" as of
    2017-08-14. Now it is refused; the same date asked for with --as-of is forecast."""
    assert cli(DATA_DIR=data_copy)[0] == 0
    cut_at(data_copy / "market_daily.csv", "2017-08-14")
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    published = tmp_path / "output/forecaster_7d/2024-11-29"
    assert error_line(err) == (
        f"error: the data ends 2017-08-14, before 2024-11-29, the as-of date this service last "
        f"published ({published}): the data went back in time (a file cut or replaced by an "
        "older copy?); check DATA_DIR and the cache, or run with --as-of 2017-08-14 to forecast "
        "that date on purpose"
    )
    assert sorted(p.name for p in published.parent.iterdir()) == ["2024-11-29"]
    assert cli("--as-of", "2017-08-14", DATA_DIR=data_copy)[0] == 0
    assert [line["status"] for line in metrics_lines(tmp_path / "metrics.jsonl")] == [
        "ok",
        "failed",
        "ok",
    ]


def test_runs_while_the_market_file_is_rewritten_in_place(tmp_path, data_copy):
    """An operator's `cp` over market_daily.csv (truncate, then write in pieces) while runs read
    it: every run publishes the full data as of 2024-11-29 or fails with exit 3 and one line
    naming the problem; none publishes another as-of, none fails oddly."""
    market = data_copy / "market_daily.csv"
    content = market.read_bytes()
    env = {"DATA_DIR": data_copy, **FAST_MEMBERS}
    assert run_service("forecaster_7d", tmp_path, **env).returncode == 0
    stop = threading.Event()

    def rewrite():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            with market.open("wb") as file:
                at = 0
                while at < len(content):
                    # Pieces of any size (torn lines) or of whole lines (older-looking files).
                    end = at + int(rng.integers(2_000, 40_000))
                    if rng.random() < 0.5:
                        end = content.find(b"\n", end) + 1 or len(content)
                    file.write(content[at:end])
                    file.flush()
                    at = end
                    time.sleep(0.002)

    command = [sys.executable, str(service_script("forecaster_7d", tmp_path))]
    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        runs = [
            subprocess.Popen(
                command,
                env=service_env(tmp_path, **env),
                cwd=tmp_path,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        done = [run.communicate(timeout=600) for run in runs]
    finally:
        stop.set()
        writer.join()
    for (_, err), run in zip(done, runs, strict=True):
        assert run.returncode in (0, 3), err
        assert "Traceback" not in err
        if run.returncode == 3:
            assert error_line(err).startswith(("error: the data ends ", f"error: {market}"))
    lines = metrics_lines(tmp_path / "metrics.jsonl")[1:]
    assert len(lines) == 3
    assert all(line["as_of"] == "2024-11-29" for line in lines if line["status"] != "failed")
    assert sorted(p.name for p in (tmp_path / "output/forecaster_7d").iterdir()) == ["2024-11-29"]


def _limited(limit: int):
    """In the child before it runs: files may grow to `limit` bytes, and a write past it fails
    with EFBIG instead of killing the process (the short write a full disk gives)."""

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_metrics_line_that_does_not_fit_goes_whole_to_the_fallback_file(tmp_path):
    """A real run whose METRICS_LOG_PATH has less room than one line (RLIMIT_FSIZE): the line
    goes to the fallback file and stderr says where; no partial line is left behind."""
    metrics = tmp_path / "metrics.jsonl"
    padding = json.dumps({"service": "padding", "status": "ok", "pad": "x" * 1_000_000}) + "\n"
    metrics.write_text(padding)  # larger than any other file the run writes
    fallback_dir = tmp_path / "tmp"
    fallback_dir.mkdir()
    done = subprocess.run(
        [sys.executable, str(service_script("forecaster_7d", tmp_path))],
        env=service_env(tmp_path, TMPDIR=fallback_dir, **FAST_MEMBERS),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=_limited(metrics.stat().st_size + 100),
        timeout=600,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    fallback = fallback_dir / "fxforecast-metrics.jsonl"
    assert error_line(done.stderr) == (
        f"error: cannot append to METRICS_LOG_PATH={metrics}: File too large; this run's line "
        f"went to {fallback}; free space on its disk or point METRICS_LOG_PATH at another one"
    )
    assert metrics.read_text() == padding  # nothing glued on for the next run
    [line] = metrics_lines(fallback)
    assert line["status"] == "ok" and line["as_of"] == "2024-11-29"


def test_a_full_disk_under_the_metrics_file_names_the_path_and_the_fix(cli, tmp_path):
    code, _, err = cli(METRICS_LOG_PATH="/dev/full", TMPDIR=tmp_path)
    assert code == 1
    assert "error: cannot append to METRICS_LOG_PATH=/dev/full: No space left on device" in err
    assert err.strip().endswith("free space on its disk or point METRICS_LOG_PATH at another one")


def test_a_forecast_that_does_not_fit_on_the_disk_names_the_folder_and_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, str(service_script("forecaster_7d", tmp_path))],
        env=service_env(tmp_path, **FAST_MEMBERS),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=_limited(20_000),  # the chart does not fit; logs and metrics do
        timeout=600,
    )
    assert done.returncode == 1
    folder = tmp_path / "output/forecaster_7d/2024-11-29"
    assert error_line(done.stderr) == (
        f"error: cannot write the forecast into {folder}: File too large; free space on its "
        "disk or point OUTPUT_DIR at another one"
    )
    assert list((tmp_path / "output/forecaster_7d").iterdir()) == []  # no staging left
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "OUTPUT_DIR" in line["error"]


def test_an_output_dir_that_is_a_file_is_named(cli, tmp_path):
    (tmp_path / "out").write_text("a file")
    code, _, err = cli(OUTPUT_DIR=tmp_path / "out")
    assert code == 1
    assert error_line(err) == (
        f"error: cannot write the forecast into {tmp_path / 'out/forecaster_7d/2024-11-29'}: "
        f"Not a directory; {tmp_path / 'out'} is a file, not a folder: move it or point "
        "OUTPUT_DIR at a folder"
    )
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed"


def test_an_env_file_that_is_a_folder_is_named(cli, tmp_path):
    code, _, err = cli("--env-file", tmp_path)
    assert code == 2
    assert error_line(err) == (
        f"error: --env-file {tmp_path} is a folder; give the .env file in it, e.g. "
        f"{tmp_path / '.env'}"
    )


@pytest.mark.parametrize(
    "encoding, text, offset",
    [
        ("utf-16", "ENABLE_VAR=false\n", "byte 0xff at offset 0 is not UTF-8 (UTF-16?)"),
        ("utf-16-le", "ENABLE_VAR=false\n", "a NUL byte at offset 1 (UTF-16?)"),
        ("latin-1", "# configuración\nENABLE_VAR=false\n", "byte 0xf3 at offset 13 is not UTF-8"),
    ],
)
def test_an_env_file_in_another_encoding_is_one_line_and_a_metrics_line(
    cli, tmp_path, encoding, text, offset
):
    """Today a traceback and no metrics line."""
    env_file = tmp_path / "forecaster.env"
    env_file.write_bytes(text.encode(encoding))
    code, _, err = cli("--env-file", env_file)
    assert code == 2
    assert error_line(err) == f"error: {env_file} is not UTF-8 text ({offset}); save it as UTF-8"
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and offset in line["error"]


def test_an_env_file_with_a_byte_order_mark_is_read(cli, tmp_path):
    env_file = tmp_path / "forecaster.env"
    env_file.write_bytes("ENABLE_RF=false\n".encode("utf-8-sig"))
    assert cli("--env-file", env_file)[0] == 0


def test_the_metrics_path_of_an_env_file_in_latin_1_is_still_used(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("METRICS_LOG_PATH")
    env_file = tmp_path / "forecaster.env"
    own = tmp_path / "own-metrics.jsonl"
    env_file.write_bytes(f"# año\nMETRICS_LOG_PATH={own}\n".encode("latin-1"))
    assert cli("--env-file", env_file)[0] == 2
    [line] = metrics_lines(own)
    assert line["status"] == "failed" and "is not UTF-8 text" in line["error"]


@pytest.mark.parametrize("value", ["3000000", "86401", "1e9"])
def test_member_timeout_beyond_its_maximum_is_refused(cli, value):
    """Today 3000000 passes validation, then every run fails: OverflowError."""
    code, _, err = cli(MEMBER_TIMEOUT_S=value)
    assert code == 2
    assert error_line(err) == (
        f"error: MEMBER_TIMEOUT_S={value!r} in the environment: must be at most 86400"
    )


def test_the_maximum_member_timeout_is_usable_by_the_group_process(cli, tiny_bolt, tmp_path):
    """The longest wait there is: the fitting members' group beside Chronos waits for
    members x MEMBER_TIMEOUT_S."""
    code, _, err = cli(
        MEMBER_TIMEOUT_S="86400",
        ENABLE_CHRONOS="true",
        CHRONOS_MODEL=tiny_bolt,
        ENABLE_ARIMA="true",
    )
    assert code == 0, err
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["members"]["arima_garch"]["status"] == line["members"]["chronos"]["status"] == "ok"


@pytest.mark.parametrize(
    "key, value",
    [("DATA_TIMEOUT_S", "3601"), ("DATA_REFRESH_BUDGET_S", "1e12")],
)
def test_refresh_times_have_a_maximum(cli, key, value):
    code, _, err = cli(**{key: value})
    assert code == 2
    assert error_line(err) == f"error: {key}={value!r} in the environment: must be at most 3600"


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", ".hidden", "x..y", ""])
def test_a_service_name_is_a_plain_name(cli, tmp_path, name):
    """Today ../../escaped writes outside services/, output/ and logs/."""
    with pytest.raises(SystemExit) as stopped:
        cli("--service", name)
    assert stopped.value.code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_a_service_name_error_says_what_a_name_may_hold(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--horizon", "7", "--service", "../../escaped"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fxforecast run: error: argument --service: '../../escaped' is not a plain name "
        "(letters, digits, '_', '-', '.'; no '/' or '..'), e.g. forecaster_7d"
    )


@pytest.mark.parametrize("text", ["", " ", "2024-13-01", "29/11/2024"])
def test_an_as_of_that_is_not_a_date_is_an_error(cli, tmp_path, capsys, text):
    """Today `--as-of ""` is taken as no date, and the stale-data warning disappears."""
    with pytest.raises(SystemExit) as stopped:
        cli("--as-of", text)
    assert stopped.value.code == 2
    assert not (tmp_path / "output").exists()


def test_backtest_refit_weeks_must_be_a_count_of_weeks(tmp_path, capsys):
    """Today --refit-weeks -1 is accepted silently."""
    for value in ("-1", "521", "x"):
        with pytest.raises(SystemExit) as stopped:
            main(["backtest", "--start", "2024-11-01", "--end", "2024-11-08", "--out",
                  str(tmp_path), "--refit-weeks", value])  # fmt: skip
        assert stopped.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"fxforecast backtest: error: argument --refit-weeks: {value!r} is not a whole "
            "number of weeks from 0 to 520"
        )


def test_backtest_jobs_are_capped_at_the_cores_and_it_says_so(tmp_path, monkeypatch):
    """Today --jobs 1000 starts 1000 worker processes."""
    for key, value in FAST_MEMBERS.items():
        monkeypatch.setenv(key, value)
    cores = len(os.sched_getaffinity(0))
    started = []
    monkeypatch.setattr(backtest, "block_runner", recording(backtest.block_runner, started))
    done = main(["backtest", "--horizons", "7", "--start", "2024-11-15", "--end", "2024-11-22",
                 "--jobs", "1000", "--out", str(tmp_path / "bt")])  # fmt: skip
    assert done == 0 and started == [cores]


def recording(function, calls: list):
    """`function`, noting the first argument of each call in `calls`."""

    def wrapper(first, *args, **kwargs):
        calls.append(first)
        return function(first, *args, **kwargs)

    return wrapper


def descendants_once_fitting(process: subprocess.Popen, log: Path, count: int) -> list:
    """The run's descendant processes once it has `count` of them and has logged that its data
    is loaded (its members are fitting); the run's own process must still be working."""
    run = psutil.Process(process.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = [p for p in run.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
        if len(found) >= count and log.exists() and "data loaded" in log.read_text():
            return found
        time.sleep(0.05)
    raise AssertionError("the run never started its member processes")


def gone(processes) -> bool:
    """Whether every process has ended (gone, or a zombie nobody has reaped yet), within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "signum, chronos",
    [(signal.SIGTERM, True), (signal.SIGHUP, False), (signal.SIGINT, False)],
)
def test_a_stop_signal_ends_a_run_cleanly(tmp_path, tiny_bolt, signum, chronos):
    """Today SIGTERM or SIGHUP leave no metrics line and the forked member processes outlive the
    run. Now: a failed line naming the signal, every member process gone (with Chronos on, the
    fitting members' group process and its children too), no staging folder, exit 128 + N."""
    members = {**FAST_MEMBERS, "ENABLE_ARIMA": "true"}  # ARIMA fits for seconds in its process
    if chronos:
        members.update(ENABLE_CHRONOS="true", CHRONOS_MODEL=tiny_bolt)
    run = start_service("forecaster_7d", tmp_path, **members)
    children = descendants_once_fitting(
        run, tmp_path / "logs/forecaster_7d.log", 2 if chronos else 1
    )
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signum
    name = signal.Signals(signum).name
    assert error_line(err).startswith(f"error: interrupted by {name}: the run stopped")
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and name in line["error"]
    assert gone(children)
    assert not list((tmp_path / "output").glob("forecaster_7d/*"))  # neither a set nor staging


# A stop signal that lands while a member process is being forked: here sent from inside the
# fork itself (an at-fork callback, where Python runs logging's lock release), the window in
# which one SIGHUP in five was lost and the run published as if it never came.
SIGNAL_DURING_FORK = """
import os, signal, sys
from fxforecast.engine.runner import _Child
from fxforecast.ops.interrupt import Interrupted, stop_on_signals
sent = []
def send_once():
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGHUP)
os.register_at_fork(after_in_parent=send_once)
with stop_on_signals() as signals, signals.armed():
    try:
        child = _Child(lambda: 42, daemon=True)
        print("result", child.result(30))
        child.stop()
    except Interrupted as exc:
        print("interrupted", exc.exit_code)
"""


def test_a_stop_signal_during_a_members_fork_still_stops_the_run():
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_DURING_FORK], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "interrupted 129", (done.stdout, done.stderr)


def test_a_run_killed_outright_leaves_no_member_process(tmp_path, tiny_bolt):
    """SIGKILL runs no cleanup at all: the members die with the process that forked them, not
    after the seconds of fitting the group process still had before it."""
    run = start_service("forecaster_7d", tmp_path, ENABLE_CHRONOS="true", CHRONOS_MODEL=tiny_bolt)
    children = descendants_once_fitting(run, tmp_path / "logs/forecaster_7d.log", 2)
    run.kill()
    run.communicate(timeout=60)
    assert gone(children)


def test_the_next_run_removes_the_report_staging_of_a_killed_run(cli, tmp_path):
    """Today a report staging folder left by a killed run is never removed."""
    report = tmp_path / "output/report"
    stale = report / ".partial-99999999"
    stale.mkdir(parents=True)
    (stale / "index.html").write_text("<html><body>half a pa")
    assert cli()[0] == 0
    assert sorted(p.name for p in report.iterdir()) == ["index.html"]


def test_history_too_short_says_exactly_how_many_closes_a_run_needs(cli, data_copy):
    """The message said "need about 360" while runs succeed from about 314 closes: a run with
    exactly the number it names succeeds, one close fewer fails."""

    def keep_last(rows):
        lines = (default_data_dir() / "market_daily.csv").read_text().splitlines()
        (data_copy / "market_daily.csv").write_text("\n".join([lines[0], *lines[-rows:]]) + "\n")

    keep_last(300)
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    needed = int(error_line(err).split(", need ")[1].split()[0])
    assert error_line(err) == (
        f"error: history too short for the 7-day horizon: 300 closes up to 2024-11-29, need "
        f"{needed} (250 up to 2024-09-06, the refit date of the oldest of 8 validation origins, "
        f"and the {needed - 250} after it); use data that starts earlier"
    )
    keep_last(needed)
    assert cli(DATA_DIR=data_copy)[0] == 0
    keep_last(needed - 1)
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3 and f"{needed - 1} closes up to 2024-11-29, need {needed} " in err


class Hanging:
    """A server on 127.0.0.1 that accepts connections, counts them and never answers."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        with suppress(OSError):  # closed at the end of the test
            while True:
                self.held.append(self.server.accept()[0])

    def close(self):
        self.server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def hanging():
    server = Hanging()
    yield server
    server.close()


def test_a_stop_signal_during_a_live_refresh_stops_the_run(tmp_path, hanging):
    """The refresh never fails a run (it catches every exception), so a stop signal must not be
    one it can catch; the run stops once the requests in flight time out, asking nothing new."""
    sources = {f"{name}_URL": hanging.url for name in ("YAHOO", "MINDICADOR", "FRED")}
    run = start_service(
        "forecaster_7d",
        tmp_path,
        DATA_REFRESH="true",
        DATA_TIMEOUT_S="3",
        **sources,
        **FAST_MEMBERS,
    )
    deadline = time.monotonic() + 60
    while len(hanging.held) < 3:  # one request in flight per source
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signal.SIGTERM
    assert error_line(err).startswith("error: interrupted by SIGTERM: the run stopped")
    assert len(hanging.held) == 3  # no retry, no other series asked
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "SIGTERM" in line["error"]
    assert not (tmp_path / "output/forecaster_7d").exists()
