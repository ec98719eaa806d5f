"""The example outputs shown in README.md and docs/, made by real runs in a fresh folder as a
user makes them: `make forecast` (plain, and with RATE_THRESHOLDS), then `fxforecast status`.

In a Markdown file an example is a fenced block between `<!-- example: NAME -->` and
`<!-- /example -->`. `python -m doctools.examples --write` (make docs-examples) rewrites every
such block from new runs; the test suite makes the same runs and compares (tests/test_docs.py),
so a change that moves a forecast or a message cannot leave the docs behind. What depends on
the day or the machine (times, ages, memory) is compared as a placeholder."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fxforecast.settings import KEYS

ROOT = Path(__file__).resolve().parents[1]
# Where the docs say the project is installed (deploy/install.sh /opt/fxforecast): a path the
# runs print is shown under it, not under the folder the examples were made in.
SHOWN_ROOT = "/opt/fxforecast"
THRESHOLDS = "900,950,975,1000,1050"
WIDTH = 104  # characters of a line in a JSON example
FAN_CHART = "docs/img/fan_chart.png"  # the quick start's, shown in "Reading a forecast"
# An example block: its body is whole lines (none of them the closing fence), maybe none.
BLOCK = re.compile(
    r"(?P<head><!-- example: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n)"
    r"(?P<body>(?:(?!```\n)[^\n]*\n)*?)(?P<tail>```\n<!-- /example -->)"
)
# Compared as placeholders: what the day, the clock and the machine decide.
VARYING_TEXT = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"), "<time>"),
    (re.compile(r"\b\d+ days old"), "<n> days old"),
    (re.compile(r", \d+ at the last success"), ", <n> at the last success"),
    (re.compile(r"the run of \d{4}-\d\d-\d\d"), "the run of <date>"),
    (re.compile(r"[\d.]+ days ago"), "<n> days ago"),
    (re.compile(r"p50 [\d.]+ s, max [\d.]+ s"), "p50 <s>, max <s>"),
    (re.compile(r"peak RSS max(\s+)[\d.]+ MB"), r"peak RSS max\1<MB>"),
]
VARYING_KEYS = {"timestamp", "runtime_s", "peak_rss_mb", "available_mb", "seconds", "age_days"}


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _run(command: list[str], folder: Path, **settings: str) -> str:
    """A command as a user runs it in `folder`, with no setting of this environment but
    `settings`; its standard output."""
    env = {k: v for k, v in os.environ.items() if k not in KEYS} | settings
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 2):  # status exits 2 on the fresh clone's stale data
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done.stdout.replace(str(ROOT), SHOWN_ROOT)


def _make_forecast(folder: Path, **settings: str) -> str:
    """`make forecast` in a clone without a .env: the 7-day service's run.py from `folder`."""
    script = folder / "services" / "forecaster_7d" / "run.py"
    script.parent.mkdir(parents=True)
    script.write_bytes((ROOT / "services" / "forecaster_7d" / "run.py").read_bytes())
    return _run([sys.executable, str(script.relative_to(folder))], folder, **settings)


def _json(value, indent: str = "", lead: int = 0) -> str:
    """Indented JSON whose short objects and lists stay on one line, as a reader scans it;
    `lead`: the characters before it on its line."""
    flat = json.dumps(value, ensure_ascii=False).replace(str(ROOT), SHOWN_ROOT)
    if not isinstance(value, dict | list) or lead + len(flat) <= WIDTH:
        return flat
    inner = indent + "  "
    if isinstance(value, list):
        items = [inner + _json(v, inner, len(inner)) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    items = []
    for key, item in value.items():
        head = f"{inner}{json.dumps(key)}: "
        items.append(head + _json(item, inner, len(head)))
    return "{\n" + ",\n".join(items) + f"\n{indent}}}"


def make_examples(workdir: Path) -> dict[str, str | bytes]:
    """Every example by name, from real runs under `workdir` (one folder per story): text
    examples by their block's name, images by their path under the project."""
    plain, treasurer = workdir / "plain", workdir / "treasurer"
    examples = {"quickstart": _make_forecast(plain)}
    chart = plain / "output/forecaster_7d/2024-11-29/fan_chart.png"
    images = {FAN_CHART: chart.read_bytes()}
    examples["status"] = _run([sys.executable, "-m", "fxforecast", "status"], plain)
    examples["thresholds"] = _make_forecast(treasurer, RATE_THRESHOLDS=THRESHOLDS)
    payload = json.loads((treasurer / "output/forecaster_7d/2024-11-29/forecast.json").read_text())
    shown = ("service", "as_of", "target_date", "status", "unit", "last_close")
    examples["forecast-json"] = _json(
        {
            **{key: payload[key] for key in shown},
            "steps": ["...", payload["steps"][-1]],
            "thresholds": payload["thresholds"],
        }
    )
    [line] = (treasurer / "logs" / "metrics.jsonl").read_text().splitlines()
    examples["metrics-line"] = _json(json.loads(line))
    return {name: text.rstrip("\n") for name, text in examples.items()} | images


def _steady(value):
    """An example with what varies from run to run replaced by placeholders."""
    if isinstance(value, dict):
        return {k: "<varies>" if k in VARYING_KEYS else _steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    if isinstance(value, str):
        for pattern, placeholder in VARYING_TEXT:
            value = pattern.sub(placeholder, value)
    return value


def _comparable(lang: str, text: str):
    text = text.rstrip("\n")
    return _steady(json.loads(text or "null")) if lang == "json" else _steady(text)


def differences(examples: dict[str, str | bytes]) -> list[str]:
    """Each shown example that differs from the runs' (or names no known example), and each
    example shown nowhere."""
    found, problems = {FAN_CHART}, []
    chart = ROOT / FAN_CHART
    if not chart.is_file() or chart.read_bytes() != examples[FAN_CHART]:
        problems.append(f"{FAN_CHART} differs from a real run's; run make docs-examples")
    for path in markdown_files():
        for block in BLOCK.finditer(path.read_text()):
            name, where = block["name"], path.relative_to(ROOT)
            found.add(name)
            if name not in examples:
                problems.append(f"{where}: no example is called {name!r}")
            elif _comparable(block["lang"], block["body"]) != _comparable(
                block["lang"], examples[name]
            ):
                problems.append(
                    f"{where}: example {name!r} differs from a real run; run make docs-examples"
                    f"\n--- shown:\n{block['body']}\n--- a real run:\n{examples[name]}"
                )
    problems += [f"example {name!r} is shown nowhere" for name in sorted(set(examples) - found)]
    return problems


def _body(example: str | None, shown: str) -> str:
    return shown if example is None else example + "\n"


def write(examples: dict[str, str | bytes]) -> list[Path]:
    """Rewrite every example block and image from `examples`; returns the files changed."""
    changed = []
    chart = ROOT / FAN_CHART
    if not chart.is_file() or chart.read_bytes() != examples[FAN_CHART]:
        chart.write_bytes(examples[FAN_CHART])
        changed.append(chart)
    for path in markdown_files():
        text = path.read_text()
        new = BLOCK.sub(
            lambda m: m["head"] + _body(examples.get(m["name"]), m["body"]) + m["tail"], text
        )
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        examples = make_examples(Path(folder))
    if argv == ["--write"]:
        for path in write(examples):
            print(f"rewrote the examples in {path.relative_to(ROOT)}")
    problems = differences(examples)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
