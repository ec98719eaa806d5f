"""The documentation: the site builds with --strict, the example outputs it shows are a real
run's, every configuration table and .env.example says what the settings' defaults are, the
Accuracy page is written from a backtest's files alone, and a real browser reads the site and
the report of a real run."""

import functools
import os
import re
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from browser import CHROMIUM, NO_CHROMIUM, Browser
from dotenv import dotenv_values
from fxforecast.evaluation.backtest import BacktestSpec
from fxforecast.evaluation.report import coverage_chart, metrics_markdown, relative_error_chart
from fxforecast.evaluation.scoring import score
from fxforecast.settings import KEYS, Settings, _parse, load_settings

from doctools import accuracy, examples

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "index.html",
    "reading-a-forecast.html",
    "operator-runbook.html",
    "model-card.html",
    "accuracy/index.html",
    "chronos.html",
    "live-data.html",
    "development.html",
    "decisions/index.html",
    "changelog.html",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `make docs` builds it (the same config, --strict), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[dict, Path]:
    """The examples as `make docs-examples` makes them: real runs in a fresh folder."""
    workdir = tmp_path_factory.mktemp("examples")
    return examples.make_examples(workdir), workdir


def test_the_site_builds_with_every_page(site):
    for page in PAGES:
        assert (site / page).is_file(), page
    decisions = sorted(p.stem for p in (site / "decisions").glob("*.html"))
    assert decisions == sorted(p.stem for p in (ROOT / "docs" / "decisions").glob("*.md"))
    # The changelog is the repository's CHANGELOG.md, included.
    changelog = (site / "changelog.html").read_text()
    assert "The test suite&rsquo;s cost" in changelog or "The test suite's cost" in changelog


def test_the_examples_shown_are_a_real_runs(made):
    shown, _ = made
    assert examples.differences(shown) == []
    # What the docs promise the reader is in them: the hint, and the thresholds with a bound.
    assert "nothing refreshes it: set DATA_REFRESH=true" in shown["quickstart"]
    assert "1050: at most 2.5%" in shown["thresholds"]


def test_a_changed_output_is_caught(made, tmp_path, monkeypatch):
    """A README whose example no longer matches a run, and one naming an unknown example."""
    shown, _ = made
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    readme.write_text(text.replace("median 973.5", "median 970.1", 1))
    monkeypatch.setattr(examples, "ROOT", tmp_path)
    monkeypatch.setattr(examples, "markdown_files", lambda: [readme])
    (tmp_path / "docs" / "img").mkdir(parents=True)
    (tmp_path / examples.FAN_CHART).write_bytes((ROOT / examples.FAN_CHART).read_bytes())
    problems = examples.differences(shown)
    assert [p.split(";")[0] for p in problems if p.startswith("README.md")] == [
        "README.md: example 'quickstart' differs from a real run"
    ]
    readme.write_text(text + "\n<!-- example: nonsense -->\n```text\nx\n```\n<!-- /example -->\n")
    problems = examples.differences(shown)
    assert [p for p in problems if p.startswith("README.md")] == [
        "README.md: no example is called 'nonsense'"
    ]


def _config_tables(path: Path) -> dict[str, str]:
    """Each row of the path's `| key | default | meaning |` tables: key -> default as shown."""
    rows, inside = {}, False
    for line in path.read_text().splitlines():
        if line.startswith("| key | default | meaning |"):
            inside = True
        elif inside and line.startswith("| `"):
            keys, default = line.split(" | ")[:2]
            for key in re.findall(r"`([A-Z_0-9]+)`", keys):
                rows[key] = default.strip("` ")
        elif not line.startswith("|"):
            inside = False
    return rows


@pytest.mark.parametrize(
    "page, complete",
    [
        ("README.md", True),
        ("docs/operator-runbook.md", True),
        ("docs/chronos.md", False),
        ("docs/live-data.md", False),
    ],
)
def test_every_configuration_table_shows_the_defaults(page, complete):
    rows = _config_tables(ROOT / page)
    assert rows and set(rows) <= set(KEYS)
    if complete:
        assert set(rows) == set(KEYS)
    defaults = Settings()
    for key, shown in rows.items():
        text = "" if shown in ("(empty)", "empty") else shown
        value = _parse(key, text, page)
        assert value == getattr(defaults, KEYS[key].name), f"{page}: {key} shows {shown!r}"


@pytest.mark.parametrize("example", sorted(ROOT.glob("services/*/.env.example")), ids=str)
def test_every_env_example_holds_every_key_at_its_default(example):
    assert set(dotenv_values(example)) == set(KEYS)
    assert load_settings(example, environ={}) == Settings()


def _backtest_folder(folder: Path) -> None:
    """A backtest's five files for hand-made forecasts. The ensemble's 80% interval is 95..105
    at every origin; at 7 days it holds 3 of the 4 origins of 2023 (one exactly on its edge, the
    miss on 2023-12-29, whose target falls in 2024) and 1 of the 2 of 2024; at 30 days all."""
    outcomes = {
        7: {"2023-06-02": 100, "2023-06-09": 105, "2023-06-16": 101, "2023-12-29": 108,
            "2024-03-01": 100, "2024-03-08": 120},
        30: {"2023-06-02": 100, "2023-06-09": 102, "2024-03-01": 99, "2024-03-08": 97},
    }  # fmt: skip
    quantiles = {
        "ensemble": (90, 95, 100, 105, 110),
        "random_walk": (80, 90, 100, 110, 120),
        "var": (85, 93, 101, 107, 115),
    }
    rows = [
        {
            "model": model,
            "origin": origin,
            "horizon_days": days,
            "target_date": str((pd.Timestamp(origin) + pd.Timedelta(days=days)).date()),
            "steps": 5,
            **dict(zip(["q0.025", "q0.1", "q0.5", "q0.9", "q0.975"], q, strict=True)),
            "last_close": 99.0,
            "actual": float(actual),
        }
        for days, by_origin in outcomes.items()
        for origin, actual in by_origin.items()
        for model, q in quantiles.items()
    ]
    forecasts = pd.DataFrame(rows)
    metrics = score(forecasts)
    spec = BacktestSpec((7, 30), "2023-06-02", "2024-03-08", 1, 4)
    folder.mkdir()
    forecasts.to_csv(folder / "forecasts.csv", index=False)
    (folder / "metrics.json").write_text(metrics.to_json(orient="records"))
    (folder / "metrics.md").write_text(metrics_markdown(metrics, spec))
    (folder / "coverage.png").write_bytes(coverage_chart(metrics))
    (folder / "relative_error.png").write_bytes(relative_error_chart(metrics))


def test_the_readmes_accuracy_figures_are_the_accuracy_pages():
    """The README's headline table, typed by hand, against the generated Accuracy page: a new
    backtest (make accuracy-docs) fails this until the README says the same."""

    def rows(text: str, header: str) -> dict[str, list[str]]:
        table = text[text.index(header) :].split("\n\n")[0].splitlines()[2:]
        return {cells[0]: cells for cells in (line.strip("| ").split(" | ") for line in table)}

    readme = rows((ROOT / "README.md").read_text(), "| horizon | rel_MAE | rel_WQL |")
    page = rows((ROOT / "docs" / "accuracy" / "index.md").read_text(), "| horizon | n | rel_MAE |")
    assert readme.keys() == page.keys() == {"7d", "15d", "30d", "90d"}
    for horizon, (_, rel_mae, rel_wql, cov80, cov95) in readme.items():
        assert [rel_mae, rel_wql, cov80, cov95] == page[horizon][2:6], horizon


def test_the_accuracy_page_is_written_from_the_backtests_files(tmp_path, capsys):
    backtest, out = tmp_path / "backtest", tmp_path / "page"
    _backtest_folder(backtest)
    assert accuracy.main([str(backtest), str(out)]) == 0
    page = (out / "index.md").read_text()
    # The yearly table, by the origin's calendar year, worked out by hand.
    assert "| 7d | 0.75 | 0.50 |" in page and "| 30d | 1.00 | 1.00 |" in page
    assert f"python -m doctools.accuracy {backtest} {out}" in page
    assert "origins from 2023-06-02 to 2024-03-08" in page.replace("\n", " ")
    # The whole metrics table as the backtest wrote it.
    assert (backtest / "metrics.md").read_text().split("\n", 2)[2].strip() in page
    # By hand at 7 days: the median's errors sum to 34 against no change's 40; 4 of 6 outcomes
    # inside the 80% interval, 5 of 6 inside the 95% one.
    assert "| 7d | 6 | 0.850 |" in page and "| 66.7% | 83.3% | 0.50–0.75 |" in page
    assert "| 7d | met |" in page and "| 30d | met |" in page  # rel_MAE 0.85 and 6/6 = 1.00
    # 7 days: a year at 0.50 is outside 0.70-0.90; 30 days: 1.00 is outside 0.65-0.95.
    assert page.count("**not met** (0.70–0.90)") == 1
    assert page.count("**not met** (0.65–0.95)") == 1
    summary = (out / "summary.md").read_text()
    assert "| 7 days | 6 | 67% | 83% | 50% to 75% |" in summary
    for chart in accuracy.CHARTS:
        assert (out / chart).read_bytes() == (backtest / chart).read_bytes()
    # A folder without a backtest's files: one line, exit 2, nothing written.
    (backtest / "forecasts.csv").unlink()
    capsys.readouterr()
    assert accuracy.main([str(backtest), str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {backtest} lacks forecasts.csv; ")
    assert not (tmp_path / "other").exists()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is not the place for an access log
        pass


@pytest.fixture
def served(site):
    """The built site over HTTP on 127.0.0.1, as a browser reads a published site."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


WIDE, NARROW = 1000, 380


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_a_real_browser_reads_the_site_and_a_runs_report(served, made, tmp_path):
    _, workdir = made
    report = workdir / "treasurer" / "output" / "report" / "index.html"
    browser = Browser(tmp_path / "profile")
    read = {}
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        for page in PAGES:
            browser.load(f"{served}/{page}", WIDE)
            read[page] = (
                browser.console_errors(),
                browser.evaluate("document.querySelector('h1').textContent"),
                browser.charts("article img"),
            )
        browser.load(report, WIDE)
        errors = browser.console_errors()
        wide = browser.box(".beside figure"), browser.box(".beside .side table")
        browser.load(report, NARROW)
        narrow_width = browser.evaluate("document.documentElement.scrollWidth")
        narrow = browser.box(".beside figure"), browser.box(".beside .side table")
    finally:
        browser.close()
    for page, (page_errors, title, images) in read.items():
        assert page_errors == [], page
        assert title.strip(), page
        assert all(image["decoded"] and image["w"] > 0 for image in images), (page, images)
    assert read["index.html"][1].startswith("fxforecast")
    assert [i["alt"][:11] for i in read["reading-a-forecast.html"][2]] == ["A fan chart"]
    assert errors == []
    # Wide: the thresholds table beside the fan chart, to its right, level with it.
    (figure, table) = wide
    assert table["x"] >= figure["x"] + figure["w"] - 1 and table["y"] < figure["y"] + figure["h"]
    # Narrow: nothing wider than the window, the table under the chart.
    (figure, table) = narrow
    assert narrow_width <= NARROW and table["y"] >= figure["y"] + figure["h"] - 1
