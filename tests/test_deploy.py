"""The crontab, deploy/install.sh and deploy/uninstall.sh with the real crontab, flock,
logrotate and a real virtual environment, in a temporary prefix."""

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fxforecast.ops.status import STANDARD_SERVICES
from helpers import FAST_MEMBERS, ROOT, metrics_lines

CRON_USER = "fxforecast-test"
INSTALLED = (
    "Makefile",
    "requirements.txt",
    "crontab",
    "shared/fxforecast/cli.py",
    "deploy/uninstall.sh",
    "services/forecaster_90d/run.py",
    ".venv/.installed",
    "logs",
    "data",
    "output",
)
UNRELATED = "5 4 * * * /bin/true  # someone else's job"


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


def script(name, *args, **kwargs):
    return subprocess.run(
        [str(ROOT / "deploy" / name), *map(str, args)], capture_output=True, text=True, **kwargs
    )


def crontab_of(user):
    done = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def test_bad_prefix_and_missing_manifest_are_clear_errors(tmp_path):
    done = script("install.sh", tmp_path / "with space", "--dry-run")
    assert done.returncode == 2 and "choose a plain path" in done.stderr
    done = script("uninstall.sh", tmp_path)
    assert done.returncode == 2 and "no install manifest" in done.stderr
    # "." from the clone is the clone itself, however it is spelled.
    for spelling in (".", "./", "../" + ROOT.name):
        done = script("install.sh", spelling, "--dry-run", cwd=ROOT)
        assert done.returncode == 2 and "the source folder itself" in done.stderr, spelling


needs_tools = pytest.mark.skipif(
    not (shutil.which("crontab") and shutil.which("logrotate")),
    reason="crontab and logrotate missing: .ci/run installs them (apt-get install cron logrotate)",
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates a test user and edits its crontab (-u)"
)


@pytest.fixture(scope="module")
def cron_user():
    created = subprocess.run(["id", CRON_USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", CRON_USER], check=True)
    subprocess.run(["crontab", "-u", CRON_USER, "-"], input=UNRELATED + "\n", text=True, check=True)
    yield CRON_USER
    subprocess.run(["crontab", "-u", CRON_USER, "-r"], capture_output=True)
    if created:
        subprocess.run(["userdel", CRON_USER], check=True)


def cron_command(prefix, service):
    [job] = [job for job in cron_jobs() if f"services/{service}/" in job[5]]
    return job[5].replace("@PREFIX@", str(prefix))


@pytest.fixture(scope="module")
def deployment(request, cron_user):
    """One real install (venv included, ~1-2 min), a re-install, the cron line run twice,
    a rollout, then uninstall; each step's evidence is kept for the tests below."""
    # Not under pytest's private (0700) temp folder: the crontab's user must reach the prefix.
    base = Path(tempfile.mkdtemp(prefix="fxforecast-deploy-"))
    base.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(base))
    prefix, rules = base / "fxforecast", base / "logrotate.d"
    options = ("--crontab-user", cron_user, "--logrotate-dir", rules)
    facts = SimpleNamespace(prefix=prefix, rules=rules)

    facts.dry_run = script("install.sh", prefix, "--dry-run", *options)
    facts.after_dry_run = (prefix.exists(), rules.exists(), crontab_of(cron_user))

    operator_env = prefix / "services/forecaster_30d/.env"
    operator_env.parent.mkdir(parents=True)
    operator_env.write_text("STALE_DATA_DAYS=9\n")
    # An operator's own files: one where install puts a file of its own, one beside its code.
    (prefix / "README.md").write_text("operator notes\n")
    (prefix / "shared/config").mkdir(parents=True)
    (prefix / "shared/config/app.yml").write_text("x\n")
    facts.refused = script("install.sh", prefix, *options)
    facts.after_refused = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*"))
    facts.first = script("install.sh", prefix, "--force", *options)
    facts.backups = {
        str(p.relative_to(prefix)): p.read_text() for p in prefix.glob(".fxforecast-backup-*/*")
    }
    facts.installed = {path: (prefix / path).exists() for path in INSTALLED}
    facts.env_texts = {p.parent.name: p.read_text() for p in prefix.glob("services/*/.env")}
    facts.crontab_first = crontab_of(cron_user)
    facts.manifest_first = (prefix / ".fxforecast-manifest").read_text()
    facts.logrotate_check = subprocess.run(
        ["logrotate", "-d", rules / "fxforecast"], capture_output=True, text=True
    )
    facts.second = script("install.sh", prefix, *options)
    facts.crontab_second = crontab_of(cron_user)
    facts.manifest_second = (prefix / ".fxforecast-manifest").read_text()

    env = {**os.environ, **FAST_MEMBERS}
    command = cron_command(prefix, "forecaster_7d")
    with open(prefix / "logs/cron_forecaster_7d.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        facts.blocked = subprocess.run(["sh", "-c", command], env=env)
        facts.blocked_seconds = time.monotonic() - started
    facts.metrics_after_blocked = (prefix / "logs/metrics.jsonl").exists()
    facts.cron_run = subprocess.run(["sh", "-c", command], env=env)
    facts.metrics = metrics_lines(prefix / "logs/metrics.jsonl")
    facts.status = subprocess.run(
        [prefix / ".venv/bin/fxforecast", "status"], cwd=prefix, capture_output=True, text=True
    )
    facts.rollout = subprocess.run(
        ["make", "-s", "enable-chronos", "SERVICE=forecaster_7d"],
        cwd=prefix,
        capture_output=True,
        text=True,
    )

    facts.uninstall_dry_run = script("uninstall.sh", prefix, "--dry-run")
    facts.after_uninstall_dry_run = sorted(p.name for p in prefix.iterdir())
    facts.uninstall = script("uninstall.sh", prefix)
    facts.crontab_after_uninstall = crontab_of(cron_user)
    return facts


@needs_tools
@needs_root
def test_dry_run_changes_nothing(deployment):
    assert deployment.dry_run.returncode == 0, deployment.dry_run.stderr
    assert "would run: make --no-print-directory -C" in deployment.dry_run.stdout
    assert deployment.after_dry_run == (False, False, UNRELATED + "\n")


@needs_tools
@needs_root
def test_install_never_overwrites_an_operators_files(deployment):
    prefix = deployment.prefix
    assert deployment.refused.returncode == 2
    assert "1 file(s) that install would overwrite and did not create (README.md)" in (
        deployment.refused.stderr
    )
    assert deployment.after_refused == [
        "README.md",
        "services",
        "services/forecaster_30d",
        "services/forecaster_30d/.env",
        "shared",
        "shared/config",
        "shared/config/app.yml",
    ]
    assert "--force: moved 1 file(s)" in deployment.first.stdout
    [(backup, text)] = deployment.backups.items()
    assert backup.endswith("/README.md") and text == "operator notes\n"
    assert (prefix / "shared/config/app.yml").read_text() == "x\n"  # kept after uninstall too


@needs_tools
@needs_root
def test_install_puts_everything_in_place(deployment):
    assert deployment.first.returncode == 0, deployment.first.stderr
    assert all(deployment.installed.values()), deployment.installed
    # A .env from its example where there was none; the operator's own left as it was.
    for service in ("forecaster_7d", "forecaster_15d", "forecaster_90d"):
        example = ROOT / "services" / service / ".env.example"
        assert deployment.env_texts[service] == example.read_text()
    assert deployment.env_texts["forecaster_30d"] == "STALE_DATA_DAYS=9\n"
    assert "keeping existing" in deployment.second.stdout
    assert deployment.logrotate_check.returncode == 0, deployment.logrotate_check.stderr
    assert f"{deployment.prefix}/logs/*.log" in deployment.logrotate_check.stderr


@needs_tools
@needs_root
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


@needs_tools
@needs_root
def test_cron_line_runs_the_service_once_at_a_time(deployment):
    # flock -n: with the lock held the line gives up at once and runs nothing.
    assert deployment.blocked.returncode == 1 and deployment.blocked_seconds < 5
    assert not deployment.metrics_after_blocked
    assert deployment.cron_run.returncode == 0
    [record] = deployment.metrics
    assert record["service"] == "forecaster_7d" and record["status"] == "ok"
    prefix = deployment.prefix
    assert (prefix / f"output/forecaster_7d/{record['as_of']}/forecast.json").is_file()
    assert (prefix / "data/forecasts.sqlite").is_file()
    assert "forecaster_7d: ok" in (prefix / "logs/cron_forecaster_7d.log").read_text()
    # The other three never ran: status says so and exits 1 for the monitoring cron.
    assert deployment.status.returncode == 1
    assert "forecaster_7d: OK" in deployment.status.stdout
    assert "forecaster_90d: ALERT" in deployment.status.stdout


@needs_tools
@needs_root
def test_uninstall_removes_exactly_what_install_added(deployment):
    prefix = deployment.prefix
    assert deployment.rollout.returncode == 0, deployment.rollout.stderr
    assert deployment.uninstall_dry_run.returncode == 0
    assert ".venv" in deployment.after_uninstall_dry_run
    assert deployment.uninstall.returncode == 0, deployment.uninstall.stderr
    assert deployment.crontab_after_uninstall == UNRELATED + "\n"
    assert not (deployment.rules / "fxforecast").exists()
    left = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    kept_outputs = [p for p in left if p.split("/")[0] in ("logs", "data", "output")]
    # What the services made stays, the two .env files an operator owns, and the operator's
    # own files (the one --force moved aside, the one install never touched).
    assert sorted(set(left) - set(kept_outputs)) == [
        next(p for p in left if p.endswith("/README.md")),
        "services/forecaster_30d/.env",
        "services/forecaster_7d/.env",
        "shared/config/app.yml",
    ]
    assert "data/forecasts.sqlite" in kept_outputs
    assert "keeping" in deployment.uninstall.stdout
