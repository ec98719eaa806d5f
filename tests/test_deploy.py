"""The documented deployment, rehearsed as an operator does it, as root, with the real crontab,
flock, logrotate, runuser, Debian's faketime and real virtual environments.

One story, told once by the `deployment` fixture and checked step by step by the tests below:
deploy/install.sh into a root-owned PREFIX for a service user (refused, then --force, over an
operator's own files, .venv and data/), a re-install; each service's .env edited (DATA_REFRESH
on the 7-day service, pointed at a stand-in of Yahoo, FRED and mindicador on 127.0.0.1; the
random walk alone to keep it quick); then Monday after Monday under a moved clock, the exact
lines of the installed crontab run as the service user as cron runs them, and the monitoring
line's `fxforecast status` after them: the cache grows, the as-of date advances, status is OK;
a manual run as root in between (refused; its suggested command works); the sources stop
(stale data: a degraded forecast and a named CRITICAL alert) and come back (OK). Then uninstall
(refused while the crontab block is edited by hand), re-install (the data and history kept),
one more Monday, and an uninstall killed midway and resumed.
"""

import fcntl
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fxforecast.ops.status import STANDARD_SERVICES
from helpers import ROOT
from sources_standin import Sources

# Its own name per test process: engineers sharing a machine run this module side by side.
CRON_USER = f"fxforecast-test-{os.getpid()}"
UNRELATED = "5 4 * * * /bin/true  # someone else's job"
OPERATOR_LINE = "30 5 * * 1 /usr/local/bin/backup  # added by hand after the block"
PYTHON = "/usr/bin/python3"  # a Python every user can run (the runbook says why)
# The Mondays the rehearsal runs on: the shipped snapshot ends on Friday 2024-11-29.
MONDAYS = [pd.Timestamp(day) for day in ("2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27")]
AFTER_REINSTALL = pd.Timestamp("2025-02-03")
FAST = {"ENABLE_ARIMA": "false", "ENABLE_VAR": "false", "ENABLE_RF": "false"}


def crontab_lines():
    lines = (ROOT / "crontab").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def cron_jobs():
    """(minute, hour, day of month, month, day of week, command) per job line."""
    return [line.split(None, 5) for line in crontab_lines() if not re.match(r"^\w+=", line)]


def test_crontab_names_the_four_services_on_mondays():
    assert [line for line in crontab_lines() if re.match(r"^\w+=", line)] == [
        "CRON_TZ=America/Santiago"
    ]
    jobs = cron_jobs()
    services = [re.search(r"services/(\w+)/run\.py", job[5]).group(1) for job in jobs]
    assert sorted(services) == sorted(STANDARD_SERVICES)
    starts = []
    for (minute, hour, day, month, weekday, command), service in zip(jobs, services, strict=True):
        assert (day, month, weekday) == ("*", "*", "1")
        assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24
        starts.append(int(hour) * 60 + int(minute))
        assert command.startswith("cd @PREFIX@ && ")
        # Its own lock (not the service's own lock file, which the run itself takes).
        assert f"flock -n logs/cron_{service}.lock .venv/bin/python" in command
        assert command.endswith(f">> logs/cron_{service}.log 2>&1")
    starts.sort()
    assert min(later - earlier for earlier, later in zip(starts, starts[1:], strict=False)) >= 20


def script(name, *args, env=None, **kwargs):
    return subprocess.run(
        [str(ROOT / "deploy" / name), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )


def crontab_of(user):
    done = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def set_crontab(user, text):
    subprocess.run(["crontab", "-u", user, "-"], input=text, text=True, check=True)


def test_bad_prefix_and_missing_manifest_are_clear_errors(tmp_path):
    done = script("install.sh", tmp_path / "with space", "--dry-run")
    assert done.returncode == 2 and "choose a plain path" in done.stderr
    done = script("uninstall.sh", tmp_path)
    assert done.returncode == 2 and "no install manifest" in done.stderr
    # "." from the clone is the clone itself, however it is spelled.
    for spelling in (".", "./", "../" + ROOT.name):
        done = script("install.sh", spelling, "--dry-run", cwd=ROOT)
        assert done.returncode == 2 and "the source folder itself" in done.stderr, spelling


def test_one_logrotate_rule_per_prefix(tmp_path):
    rules = tmp_path / "logrotate.d"
    said = [
        script("install.sh", prefix, "--dry-run", "--logrotate-dir", rules).stdout
        for prefix in ("/opt/fxforecast", "/srv/fx.old")
    ]
    assert f"would write {rules}/fxforecast-opt-fxforecast:" in said[0]
    # A dot would make logrotate skip the file (".old" is one of its ignored endings).
    assert f"would write {rules}/fxforecast-srv-fx-old:" in said[1]


def test_a_dry_run_says_each_step_once(tmp_path):
    prefix, rules = tmp_path / "prefix", tmp_path / "logrotate.d"
    (prefix / "shared/fxforecast").mkdir(parents=True)
    for name in ("settings.py", "cli.py"):  # an operator's files where install would copy
        (prefix / "shared/fxforecast" / name).write_text("# theirs\n")
    done = script("install.sh", prefix, "--dry-run", "--force", "--logrotate-dir", rules)
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stdout.splitlines() if line.startswith("would run: ")]
    assert len(steps) == len(set(steps)) > 100
    assert f"would run: mkdir {prefix}/shared/fxforecast/engine" in steps
    [backup] = [s for s in steps if s.startswith("would run: mkdir -p ")]
    assert backup.endswith("/shared/fxforecast")
    assert sorted(p.name for p in (prefix / "shared/fxforecast").iterdir()) == [
        "cli.py",
        "settings.py",
    ]
    assert not rules.exists()


needs_tools = pytest.mark.skipif(
    not all(map(shutil.which, ("crontab", "logrotate", "faketime", "runuser"))),
    reason="crontab, logrotate, faketime or runuser missing: .ci/run installs them "
    "(apt-get install cron logrotate faketime)",
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates a test user and edits its crontab (-u)"
)
needs_python = pytest.mark.skipif(
    not Path(PYTHON).is_file(), reason=f"{PYTHON} missing: the install is built from it"
)


@pytest.fixture(scope="module")
def cron_user():
    created = subprocess.run(["id", CRON_USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", CRON_USER], check=True)
    set_crontab(CRON_USER, UNRELATED + "\n")
    yield CRON_USER
    subprocess.run(["crontab", "-u", CRON_USER, "-r"], capture_output=True)
    if created:
        subprocess.run(["userdel", CRON_USER], check=True)


def deploy_base() -> Path:
    """A folder every user may enter (pytest's own temp folder is private to root). In memory
    when /dev/shm has room and allows programs: deleting a 1.8 GB venv took two minutes on this
    machine's disk (ext4 mounted with `discard`), a second in memory."""
    shm = Path("/dev/shm")
    in_memory = (
        shm.is_dir()
        and shutil.disk_usage(shm).free > 4 * 2**30
        and not os.statvfs(shm).f_flag & os.ST_NOEXEC
    )
    base = Path(tempfile.mkdtemp(prefix="fxforecast-deploy-", dir=shm if in_memory else None))
    base.chmod(0o755)
    return base


def tree(folder: Path) -> dict:
    """Every path under `folder`: owner, size and modification time."""
    return {
        str(p.relative_to(folder)): (p.lstat().st_uid, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def edit_env(path: Path, **values) -> None:
    """As an operator edits a .env: each key's line replaced, or added at the end."""
    lines = path.read_text().splitlines()
    for key, value in values.items():
        matching = [i for i, line in enumerate(lines) if line.startswith(f"{key}=")]
        for i in matching:
            lines[i] = f"{key}={value}"
        if not matching:
            lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n")


def installed_block(user: str, prefix: Path) -> tuple[dict, list[list[str]]]:
    """The variables and job lines of the block install put in the user's crontab."""
    lines = crontab_of(user).splitlines()
    begin = lines.index(f"# BEGIN fxforecast {prefix} (managed by deploy/install.sh)")
    end = lines.index(f"# END fxforecast {prefix}")
    block = [line for line in lines[begin + 1 : end] if line and not line.startswith("#")]
    variables = dict(line.split("=", 1) for line in block if re.match(r"^\w+=", line))
    return variables, [line.split(None, 5) for line in block if not re.match(r"^\w+=", line)]


def as_cron(user: str, variables: dict, at: pd.Timestamp, command: str):
    """`command` as cron runs a job line: /bin/sh -c as the user, cron's bare environment plus
    the crontab's variables, the clock moved to `at` (UTC) for it and every process it starts."""
    environment = {
        "HOME": pwd.getpwnam(user).pw_dir,
        "LOGNAME": user,
        "SHELL": "/bin/sh",
        "PATH": "/usr/bin:/bin",
        "TZ": "UTC",  # the time faketime is given, and this server's zone
        **variables,
    }
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        + ["faketime", f"{at:%Y-%m-%d %H:%M:%S}", "/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=600,
    )


def job_time(variables: dict, job: list[str], monday: pd.Timestamp) -> pd.Timestamp:
    """When cron starts the job on that Monday: its hour and minute in CRON_TZ, in UTC."""
    minute, hour = job[0], job[1]
    local = pd.Timestamp(f"{monday.date()} {int(hour):02d}:{int(minute):02d}")
    return local.tz_localize(variables["CRON_TZ"]).tz_convert("UTC").tz_localize(None)


def lines_of(path: Path) -> list[str]:
    """The file's lines; none when it is missing (a step that failed shows in its test)."""
    return path.read_text().splitlines() if path.is_file() else []


def newest_lines(prefix: Path) -> dict:
    """Each service's newest metrics line."""
    return {
        line["service"]: line for line in map(json.loads, lines_of(prefix / "logs/metrics.jsonl"))
    }


def cache_rows(prefix: Path) -> list[str]:
    return lines_of(prefix / "data/market_daily.csv")[1:]


def monday(sources, prefix, day, services=STANDARD_SERVICES) -> SimpleNamespace:
    """One Monday: the installed crontab's job lines (those of `services`) in their order, as
    cron runs them, then the monitoring line's status at 09:00 Santiago time."""
    sources.today, sources.clocks = day, []
    variables, jobs = installed_block(CRON_USER, prefix)
    week = SimpleNamespace(day=day, jobs={}, times={})
    for job in jobs:
        service = re.search(r"services/(\w+)/run\.py", job[5]).group(1)
        if service in services:
            week.times[service] = job_time(variables, job, day)
            week.jobs[service] = as_cron(CRON_USER, variables, week.times[service], job[5])
    week.clocks = {clock.date() for clock in sources.clocks}
    week.lines = newest_lines(prefix)
    week.cache = cache_rows(prefix)
    week.forecasts = {
        name: json.loads((prefix / line["outputs"]["forecast.json"]).read_text())
        for name, line in week.lines.items()
        if line.get("outputs") and (prefix / line["outputs"]["forecast.json"]).is_file()
    }
    status_at = pd.Timestamp(f"{day.date()} 09:00").tz_localize(variables["CRON_TZ"])
    week.status = as_cron(
        CRON_USER,
        variables,
        status_at.tz_convert("UTC").tz_localize(None),
        f"cd {prefix} && .venv/bin/fxforecast status",
    )
    return week


@pytest.fixture(scope="module")
def sources():
    stand_in = Sources()
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def deployment(request, cron_user, sources):
    """The whole story above, once (two venv builds, about 1 minute each); each step's
    evidence is kept for the tests below."""
    base = deploy_base()
    request.addfinalizer(lambda: shutil.rmtree(base))
    prefix, rules = base / "fxforecast", base / "logrotate.d"
    options = ("--crontab-user", cron_user, "--logrotate-dir", rules, "--python", PYTHON)
    facts = SimpleNamespace(prefix=prefix, rules=rules)

    facts.dry_run = script("install.sh", prefix, "--dry-run", *options)
    facts.after_dry_run = (prefix.exists(), rules.exists(), crontab_of(cron_user))

    # What was there before: an operator's .env, README.md, a file beside the code, a .venv
    # of their own and a data/ folder (root's, open to all); another install's logrotate rule
    # under the name every install once shared.
    operator_env = prefix / "services/forecaster_30d/.env"
    operator_env.parent.mkdir(parents=True)
    operator_env.write_text("STALE_DATA_DAYS=9\n")
    (prefix / "README.md").write_text("operator notes\n")
    (prefix / "shared/config").mkdir(parents=True)
    (prefix / "shared/config/app.yml").write_text("x\n")
    (prefix / ".venv/bin").mkdir(parents=True)
    (prefix / ".venv/bin/activate").write_text("# the operator's venv\n")
    (prefix / "data").mkdir()
    (prefix / "data").chmod(0o777)
    (prefix / "data/notes.txt").write_text("the operator's\n")
    rules.mkdir()
    (rules / "fxforecast").write_text("/srv/other/logs/*.log {\n    weekly\n}\n")
    facts.refused = script("install.sh", prefix, *options)
    facts.after_refused = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*"))
    facts.first = script("install.sh", prefix, "--force", *options)
    facts.backups = sorted(
        str(p.relative_to(prefix)) for p in prefix.glob(".fxforecast-backup-*/**/*") if p.is_file()
    )
    facts.data_owner = (prefix / "data").stat().st_uid
    facts.env_texts = {p.parent.name: p.read_text() for p in prefix.glob("services/*/.env")}
    facts.crontab_first = crontab_of(cron_user)
    facts.manifest_first = (prefix / ".fxforecast-manifest").read_text()
    facts.rules_after_install = sorted(p.name for p in rules.iterdir())
    facts.logrotate_check = [
        subprocess.run(["logrotate", "-d", rule], capture_output=True, text=True)
        for rule in rules.glob("fxforecast-*")
    ]
    facts.second = script("install.sh", prefix, *options)
    facts.crontab_second = crontab_of(cron_user)
    facts.manifest_second = (prefix / ".fxforecast-manifest").read_text()
    facts.rollout = [
        subprocess.run(["make", "-s", f"{switch}-chronos", "SERVICE=forecaster_7d"], cwd=prefix)
        for switch in ("enable", "disable")
    ]

    # The operator turns on the live refresh for the 7-day service (the others read its cache)
    # and, to keep this quick, runs the random walk alone.
    for service in STANDARD_SERVICES:
        edit_env(prefix / f"services/{service}/.env", **FAST)
    edit_env(
        prefix / "services/forecaster_7d/.env",
        DATA_REFRESH="true",
        YAHOO_URL=sources.url,
        MINDICADOR_URL=sources.url,
        FRED_URL=sources.url,
    )

    facts.weeks = [monday(sources, prefix, MONDAYS[0])]
    # cron's own lock: with it held, the line gives up at once and runs nothing.
    variables, jobs = installed_block(cron_user, prefix)
    seven = next(job for job in jobs if "forecaster_7d" in job[5])
    lines_before = len(lines_of(prefix / "logs/metrics.jsonl"))
    with open(prefix / "logs/cron_forecaster_7d.lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        began = time.monotonic()
        facts.blocked = as_cron(
            cron_user, variables, job_time(variables, seven, MONDAYS[0]), seven[5]
        )
        facts.blocked_seconds = time.monotonic() - began
    facts.blocked_lines = len(lines_of(prefix / "logs/metrics.jsonl")) - lines_before

    # The manual run the old first-run steps gave, as root, on the Tuesday: refused.
    tuesday = f"{MONDAYS[0] + pd.Timedelta(days=1):%Y-%m-%d} 10:00:00"
    bare = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "faketime", tuesday]
    owned = {k: v for k, v in tree(prefix).items() if k.split("/")[0] in ("logs", "data", "output")}
    facts.root_run = subprocess.run(
        [*bare, ".venv/bin/python", "services/forecaster_7d/run.py"],
        cwd=prefix,
        capture_output=True,
        text=True,
    )
    facts.written_by_root_run = {
        k: v
        for k, v in tree(prefix).items()
        if k.split("/")[0] in ("logs", "data", "output") and owned.get(k) != v
    }
    # The command it names, as given.
    suggested = facts.root_run.stderr.split("run it as ")[-1].split(": ", 1)[-1]
    facts.suggested = suggested.split("   (or:")[0].strip()
    facts.suggested_run = subprocess.run(
        [*bare, "sh", "-c", facts.suggested], cwd=prefix, capture_output=True, text=True
    )
    facts.root_owned = [
        k
        for k, (uid, _, _) in tree(prefix).items()
        if k.split("/")[0] in ("logs", "data", "output") and uid == 0
    ]

    facts.weeks.append(monday(sources, prefix, MONDAYS[1]))
    sources.stop()  # nothing new after Friday 2025-01-10
    facts.weeks.append(monday(sources, prefix, MONDAYS[2]))
    sources.resume()
    facts.weeks.append(monday(sources, prefix, MONDAYS[3]))

    # Uninstall while the operator has edited the block (END marker gone, a line of their own
    # after it): refused, as is a re-install, and nothing changes.
    installed = crontab_of(cron_user)
    edited = installed.replace(f"# END fxforecast {prefix}\n", "") + OPERATOR_LINE + "\n"
    set_crontab(cron_user, edited)
    files_before = tree(prefix)
    facts.uninstall_refused = script("uninstall.sh", prefix)
    facts.install_refused = script("install.sh", prefix, *options)
    facts.unchanged_after_refusals = (
        crontab_of(cron_user) == edited and tree(prefix) == files_before
    )
    set_crontab(cron_user, installed + OPERATOR_LINE + "\n")  # the marker put back
    facts.uninstall_dry_run = script("uninstall.sh", prefix, "--dry-run")
    facts.after_uninstall_dry_run = sorted(p.name for p in prefix.iterdir())
    facts.uninstall = script("uninstall.sh", prefix)
    facts.crontab_after_uninstall = crontab_of(cron_user)
    facts.rules_after_uninstall = sorted(p.name for p in rules.iterdir())
    facts.left_after_uninstall = sorted(
        str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file()
    )

    facts.reinstall = script("install.sh", prefix, *options)
    facts.crontab_reinstalled = crontab_of(cron_user)
    facts.after_reinstall = monday(sources, prefix, AFTER_REINSTALL, ["forecaster_7d"])

    # Uninstall killed while it removes the virtual environment (an rm that kills its caller
    # stands in for kill -9 or a closed terminal at that moment), then run again.
    killer = base / "killer"
    killer.mkdir()
    (killer / "rm").write_text(
        '#!/bin/sh\ncase "$*" in *"/.venv"*) kill -KILL "$PPID"; exit 1 ;; esac\n'
        'exec /bin/rm "$@"\n'
    )
    (killer / "rm").chmod(0o755)
    facts.manifest_before_kill = lines_of(prefix / ".fxforecast-manifest")
    path = f"{killer}:{os.environ['PATH']}"
    facts.killed = script("uninstall.sh", prefix, env={**os.environ, "PATH": path})
    facts.manifest_after_kill = lines_of(prefix / ".fxforecast-manifest")
    facts.venv_after_kill = (prefix / ".venv").is_dir()
    facts.crontab_after_kill = crontab_of(cron_user)
    facts.resumed = script("uninstall.sh", prefix)
    facts.after_resumed = sorted(p.name for p in prefix.iterdir())
    facts.crontab_after_resumed = crontab_of(cron_user)
    return facts


needs_deployment = [needs_tools, needs_root, needs_python]


def deploy_test(test):
    for mark in needs_deployment:
        test = mark(test)
    return test


@deploy_test
def test_dry_run_changes_nothing(deployment):
    assert deployment.dry_run.returncode == 0, deployment.dry_run.stderr
    assert "would run: make --no-print-directory -C" in deployment.dry_run.stdout
    assert f"install PYTHON={PYTHON}" in deployment.dry_run.stdout
    assert deployment.after_dry_run == (False, False, UNRELATED + "\n")


@deploy_test
def test_install_never_overwrites_or_writes_into_what_it_did_not_create(deployment):
    prefix = deployment.prefix
    assert deployment.refused.returncode == 2
    assert (
        "2 path(s) that install would overwrite or write into and did not create "
        "(README.md .venv); move them away, or pass --force to back them up first"
    ) in deployment.refused.stderr
    assert deployment.after_refused == [
        ".venv",
        ".venv/bin",
        ".venv/bin/activate",
        "README.md",
        "data",
        "data/notes.txt",
        "services",
        "services/forecaster_30d",
        "services/forecaster_30d/.env",
        "shared",
        "shared/config",
        "shared/config/app.yml",
    ]
    assert deployment.first.returncode == 0, deployment.first.stderr
    assert "--force: moved 2 path(s)" in deployment.first.stdout
    # The operator's venv moved aside whole (never pip-installed into), README.md too.
    assert [b.split("/", 1)[1] for b in deployment.backups] == [".venv/bin/activate", "README.md"]
    # Their data/ kept as it was: not given to the service user (it can already write there).
    assert deployment.data_owner == 0 and (prefix / "data/notes.txt").is_file()
    assert (prefix / "shared/config/app.yml").read_text() == "x\n"  # kept after uninstall too


@deploy_test
def test_install_puts_everything_in_place(deployment):
    first = deployment.first
    first_run = f"cd {deployment.prefix} && runuser -u {CRON_USER} -- .venv/bin/python"
    assert f"done. First run, as the services run: {first_run}" in first.stdout
    # A .env from its example where there was none; the operator's own left as it was.
    for service in ("forecaster_7d", "forecaster_15d", "forecaster_90d"):
        example = ROOT / "services" / service / ".env.example"
        assert deployment.env_texts[service] == example.read_text()
    assert deployment.env_texts["forecaster_30d"] == "STALE_DATA_DAYS=9\n"
    assert "keeping existing" in deployment.second.stdout
    # Its own rule, named after PREFIX, beside another install's (left alone).
    name = "fxforecast" + str(deployment.prefix).replace("/", "-").replace(".", "-")
    assert deployment.rules_after_install == ["fxforecast", name]
    [check] = deployment.logrotate_check
    assert check.returncode == 0, check.stderr
    assert f"{deployment.prefix}/logs/*.log" in check.stderr
    assert all(done.returncode == 0 for done in deployment.rollout)


@deploy_test
def test_crontab_merged_and_reinstall_is_idempotent(deployment):
    lines = deployment.crontab_first.splitlines()
    assert lines[0] == UNRELATED
    assert lines[1] == f"# BEGIN fxforecast {deployment.prefix} (managed by deploy/install.sh)"
    assert lines[-1] == f"# END fxforecast {deployment.prefix}"
    assert sum(f"cd {deployment.prefix} && flock -n" in line for line in lines) == 4
    assert deployment.second.returncode == 0, deployment.second.stderr
    assert deployment.crontab_second == deployment.crontab_first
    assert deployment.manifest_second == deployment.manifest_first
    assert "Nothing to be done" in deployment.second.stdout  # the venv is not rebuilt


@deploy_test
def test_each_monday_the_cron_lines_run_as_the_service_user_on_the_moved_clock(deployment):
    for week in (*deployment.weeks, deployment.after_reinstall):
        assert week.jobs, week.day
        for service, job in week.jobs.items():
            assert job.returncode == 0, (week.day, service, job.stderr)
            line = week.lines[service]
            # faketime reached the service: its line is stamped with the moved clock.
            started = pd.Timestamp(line["timestamp"]).tz_convert(None)
            assert 0 <= (started - week.times[service]).total_seconds() < 120, (service, started)
        # And the stand-in's "today" is the day the service's own clock says.
        assert week.clocks == {week.day.date()}, week.day
    prefix = deployment.prefix
    log = (prefix / "logs/cron_forecaster_7d.log").read_text()
    assert "forecaster_7d: ok" in log and "Traceback" not in log
    owners = {pwd.getpwuid(p.stat().st_uid).pw_name for p in (prefix / "data").iterdir()}
    assert owners == {CRON_USER, "root"}  # root: only the operator's notes.txt


@deploy_test
def test_week_after_week_the_cache_grows_the_forecast_advances_and_status_is_ok(deployment):
    first, second, _, recovered = deployment.weeks
    fridays = ["2025-01-03", "2025-01-10", None, "2025-01-24"]
    for week, friday in zip(deployment.weeks, fridays, strict=True):
        if friday is None:
            continue
        assert week.cache[-1].startswith(friday + ","), week.day
        for service in STANDARD_SERVICES:
            line, forecast = week.lines[service], week.forecasts[service]
            assert line["as_of"] == forecast["as_of"] == friday, (week.day, service)
            assert forecast["status"] == line["status"] == "ok", (service, forecast["warnings"])
        assert week.lines["forecaster_7d"]["data"]["data_source"] == "live"
        assert week.status.returncode == 0, week.status.stdout
        assert week.status.stdout.startswith("OK: 4 services OK\n")
    assert len(first.cache) < len(second.cache) < len(recovered.cache)
    assert len(second.cache) - len(first.cache) == 5  # one business week
    # The services without the refresh read the cache the 7-day one keeps.
    assert first.lines["forecaster_90d"]["data"]["data_source"] == "cache"
    assert "last refresh    off in this service" in first.status.stdout
    assert f"last refresh    {first.lines['forecaster_7d']['timestamp']}" in first.status.stdout


@deploy_test
def test_stale_sources_degrade_the_forecast_and_alert_until_they_come_back(deployment):
    stale = deployment.weeks[2]  # the sources published nothing after Friday 2025-01-10
    assert stale.cache == deployment.weeks[1].cache
    for service in STANDARD_SERVICES:
        line, forecast = stale.lines[service], stale.forecasts[service]
        assert line["as_of"] == "2025-01-10" and line["data"]["age_days"] == 10
        assert forecast["status"] == line["status"] == "degraded", service
        assert forecast["warnings"][0].startswith(
            "stale data: the newest USD/CLP close (2025-01-10) is 10 days old (limit "
        )
    hint = deployment.weeks[2].forecasts["forecaster_7d"]["warnings"][0]
    assert "the refresh brought nothing newer: check the sources" in hint
    assert "set DATA_REFRESH=true" in stale.forecasts["forecaster_15d"]["warnings"][0]
    assert stale.status.returncode == 2
    lines = stale.status.stdout.splitlines()
    assert lines[0].startswith("CRITICAL: forecaster_7d: stale data: newest USD/CLP close")
    assert "forecaster_7d: CRITICAL" in lines
    assert (
        "  CRITICAL  stale data: newest USD/CLP close (2025-01-10) is 10 days old "
        "(limit STALE_DATA_DAYS=7); the run of 2025-01-20 published a degraded forecast from it"
    ) in lines
    # The operator's 30-day limit is 9 days: stale as well.
    assert "(limit STALE_DATA_DAYS=9)" in stale.status.stdout
    recovered = deployment.weeks[3]
    assert recovered.status.returncode == 0 and "stale" not in recovered.status.stdout


@deploy_test
def test_a_manual_run_as_root_is_refused_and_later_cron_runs_are_unaffected(deployment):
    root_run = deployment.root_run
    assert root_run.returncode == 2
    command = ".venv/bin/python services/forecaster_7d/run.py"
    assert root_run.stderr == (
        f"error: started as root, but {deployment.prefix}/logs belongs to {CRON_USER}, who runs "
        "the services: a file"
        f" root wrote there would stop {CRON_USER}'s cron runs; run it as {CRON_USER}: "
        f"runuser -u {CRON_USER} -- {command}   (or: sudo -u {CRON_USER} {command})\n"
    )
    assert deployment.written_by_root_run == {}
    # The command it names works, and leaves nothing of root's behind.
    assert deployment.suggested == f"runuser -u {CRON_USER} -- {command}"
    assert deployment.suggested_run.returncode == 0, deployment.suggested_run.stderr
    assert deployment.root_owned == ["data", "data/notes.txt"]  # the operator's
    # flock -n: with cron's lock held, the line gives up at once and runs nothing.
    assert deployment.blocked.returncode == 1 and deployment.blocked_seconds < 10
    assert deployment.blocked_lines == 0


@deploy_test
def test_uninstall_refuses_to_guess_at_an_edited_crontab_block(deployment):
    prefix = deployment.prefix
    for refused in (deployment.uninstall_refused, deployment.install_refused):
        assert refused.returncode == 2
        err = refused.stderr.splitlines()
        assert err[0].startswith(
            f"error: the crontab of {CRON_USER} holds lines for {prefix} that are not the block"
        )
        assert err[1] == f"  line 2: # BEGIN fxforecast {prefix} (managed by deploy/install.sh)"
        assert err[-1].endswith(OPERATOR_LINE)  # what the old uninstall would have deleted
    assert deployment.unchanged_after_refusals


@deploy_test
def test_uninstall_removes_exactly_what_install_added(deployment):
    assert deployment.uninstall_dry_run.returncode == 0
    assert ".venv" in deployment.after_uninstall_dry_run
    assert deployment.uninstall.returncode == 0, deployment.uninstall.stderr
    assert deployment.crontab_after_uninstall == f"{UNRELATED}\n{OPERATOR_LINE}\n"
    assert deployment.rules_after_uninstall == ["fxforecast"]  # the other install's rule stays
    left = deployment.left_after_uninstall
    kept_outputs = [p for p in left if p.split("/")[0] in ("logs", "data", "output")]
    # What the services made stays, the .env files an operator edited, and the operator's own
    # files (the two --force moved aside, the one install never touched).
    assert sorted(set(left) - set(kept_outputs)) == [
        *sorted(p for p in left if p.startswith(".fxforecast-backup-")),
        *(f"services/{service}/.env" for service in sorted(STANDARD_SERVICES)),
        "shared/config/app.yml",
    ]
    assert {"data/forecasts.sqlite", "data/market_daily.csv", "logs/metrics.jsonl"} <= set(left)
    assert "keeping" in deployment.uninstall.stdout


@deploy_test
def test_reinstall_after_uninstall_keeps_the_data_and_runs_on(deployment):
    assert deployment.reinstall.returncode == 0, deployment.reinstall.stderr
    assert deployment.reinstall.stdout.count("keeping existing") == 4
    assert deployment.crontab_reinstalled.startswith(f"{UNRELATED}\n{OPERATOR_LINE}\n# BEGIN")
    week = deployment.after_reinstall
    assert week.jobs["forecaster_7d"].returncode == 0
    assert week.lines["forecaster_7d"]["as_of"] == "2025-01-31"
    assert len(week.cache) == len(deployment.weeks[-1].cache) + 5  # the cache was kept
    assert week.status.returncode == 0, week.status.stdout


@deploy_test
def test_an_interrupted_uninstall_resumes_where_it_stopped(deployment):
    prefix = deployment.prefix
    assert deployment.killed.returncode == -9
    before, after = deployment.manifest_before_kill, deployment.manifest_after_kill
    # Done before the kill: the logrotate rule and the crontab block, gone from the manifest;
    # the venv it was removing, and everything older, still listed.
    assert after == before[: len(after)] and f"tree {prefix}/.venv" in after
    assert not any(e.startswith(("crontab ", "logrotate ")) for e in after)
    assert deployment.venv_after_kill
    assert deployment.crontab_after_kill == f"{UNRELATED}\n{OPERATOR_LINE}\n"
    assert deployment.resumed.returncode == 0, deployment.resumed.stderr
    assert deployment.after_resumed == [
        *sorted(p.name for p in prefix.glob(".fxforecast-backup-*")),
        "data",
        "logs",
        "output",
        "services",
        "shared",
    ]
    assert deployment.crontab_after_resumed == f"{UNRELATED}\n{OPERATOR_LINE}\n"


@needs_tools
@needs_root
@needs_python
def test_install_refuses_a_python_the_service_user_cannot_run(cron_user, tmp_path):
    """pyenv's Python under /root, say: the venv would link to it and every cron run fail."""
    private = tmp_path / "private"  # pytest's folders are root's alone (0700)
    private.mkdir()
    (private / "python3").symlink_to(PYTHON)
    prefix = deploy_base()
    try:
        done = script(
            "install.sh",
            prefix / "fxforecast",
            "--crontab-user",
            cron_user,
            "--python",
            private / "python3",
        )
        assert done.returncode == 2
        assert done.stderr == (
            f"error: {cron_user} cannot run {private / 'python3'}, the Python the virtual "
            "environment would be built from, so every cron run would fail; pass --python with "
            "a Python every user can run (e.g. --python /usr/bin/python3)\n"
        )
        assert not (prefix / "fxforecast").exists()
    finally:
        shutil.rmtree(prefix)
