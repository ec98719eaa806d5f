"""RATE_THRESHOLDS: the chance that USD/CLP ends above a rate on the target date, read off the
forecast's own published quantiles; a bad value is a one-line error naming the key."""

import json
import math

import pytest
from fxforecast.errors import ConfigError
from fxforecast.quantiles import QUANTILE_COLUMNS, chance_above
from fxforecast.settings import load_settings
from helpers import (
    FAST_MEMBERS,
    error_line,
    metrics_lines,
    run_service,
    service_script,
)

# A 7-day forecast as published (forecast.json's target step).
PUBLISHED = {
    "q0.025": 946.3019,
    "q0.1": 955.9306,
    "q0.5": 973.5102,
    "q0.9": 992.4237,
    "q0.975": 1002.3974,
}


def test_the_chance_falls_as_the_rate_rises():
    rates = [900 + step / 4 for step in range(4 * 160)]  # 900 .. 1059.75 CLP per USD
    chances = [chance_above(PUBLISHED, rate)["p_above"] for rate in rates]
    assert all(a >= b for a, b in zip(chances, chances[1:], strict=False))
    inside = [
        chance_above(PUBLISHED, rate)["p_above"]
        for rate in rates
        if PUBLISHED["q0.025"] < rate < PUBLISHED["q0.975"]
    ]
    assert all(a > b for a, b in zip(inside, inside[1:], strict=False))


@pytest.mark.parametrize(
    "column, chance",
    [("q0.025", 0.975), ("q0.1", 0.9), ("q0.5", 0.5), ("q0.9", 0.1), ("q0.975", 0.025)],
)
def test_exactly_the_level_at_each_published_quantile(column, chance):
    assert chance_above(PUBLISHED, PUBLISHED[column]) == {
        "rate": PUBLISHED[column],
        "p_above": chance,
        "bound": None,
    }


def test_between_quantiles_linear_in_log_rate_and_beyond_them_a_bound():
    # By hand: 950 lies between q0.025 and q0.1, a share s of the way in log-rate.
    s = (math.log(950) - math.log(946.3019)) / (math.log(955.9306) - math.log(946.3019))
    assert chance_above(PUBLISHED, 950)["p_above"] == round(1 - (0.025 + s * 0.075), 4)
    s = (math.log(1000) - math.log(992.4237)) / (math.log(1002.3974) - math.log(992.4237))
    assert chance_above(PUBLISHED, 1000)["p_above"] == round(1 - (0.9 + s * 0.075), 4)
    # Beyond the outer quantiles the forecast says no more than this.
    assert chance_above(PUBLISHED, 946.3) == {"rate": 946.3, "p_above": 0.975, "bound": "at least"}
    assert chance_above(PUBLISHED, 1500) == {"rate": 1500, "p_above": 0.025, "bound": "at most"}
    assert chance_above(PUBLISHED, 1) == {"rate": 1, "p_above": 0.975, "bound": "at least"}


@pytest.mark.parametrize("text", ["abc", "950,abc", "-950", "0", "inf", "nan", "950,,1000"])
def test_a_bad_value_is_one_line_naming_the_key(text):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"RATE_THRESHOLDS": text})
    message = str(caught.value)
    assert message.startswith(f"RATE_THRESHOLDS={text!r} in the environment: ")
    assert "not a finite number above 0" in message and "\n" not in message


def test_rates_are_read_sorted_once_each_and_empty_means_none():
    assert load_settings(environ={"RATE_THRESHOLDS": " 1000, 950 ,1000"}).rate_thresholds == (
        950.0,
        1000.0,
    )
    assert load_settings(environ={"RATE_THRESHOLDS": ""}).rate_thresholds == ()
    assert load_settings(environ={}).rate_thresholds == ()


def test_a_service_with_a_bad_value_fails_in_one_line_with_a_metrics_line(tmp_path):
    env_file = service_script("forecaster_7d", tmp_path).with_name(".env")
    env_file.write_text("RATE_THRESHOLDS=950,-1\n")
    done = run_service("forecaster_7d", tmp_path)  # with that .env beside its run.py
    assert done.returncode == 2
    expected = (
        f"RATE_THRESHOLDS='950,-1' in {env_file}: '-1' is not a finite number above 0; give "
        "rates in CLP per USD separated by commas, e.g. RATE_THRESHOLDS=950,1000"
    )
    assert error_line(done.stderr) == f"error: {expected}"
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and line["error"] == expected
    assert not (tmp_path / "output").exists()


def test_end_to_end_in_forecast_json_metrics_line_summary_and_report(tmp_path):
    done = run_service("forecaster_7d", tmp_path, RATE_THRESHOLDS="1100,900,975", **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr
    payload = json.loads((tmp_path / "output/forecaster_7d/2024-11-29/forecast.json").read_text())
    target = payload["steps"][-1]
    assert target["date"] == payload["target_date"] == "2024-12-06"
    assert target["q0.025"] < 975 < target["q0.975"]
    assert [t["rate"] for t in payload["thresholds"]] == [900.0, 975.0, 1100.0]
    low, middle, high = payload["thresholds"]
    assert low == {"rate": 900.0, "p_above": 0.975, "bound": "at least"}
    assert high == {"rate": 1100.0, "p_above": 0.025, "bound": "at most"}
    # 975 read off the published quantiles by hand: the two around it, linear in log-rate.
    levels = [float(c[1:]) for c in QUANTILE_COLUMNS]
    values = [target[c] for c in QUANTILE_COLUMNS]
    i = max(k for k in range(5) if values[k] <= 975)
    share = (math.log(975) - math.log(values[i])) / (math.log(values[i + 1]) - math.log(values[i]))
    assert middle == {
        "rate": 975.0,
        "p_above": round(1 - (levels[i] + share * (levels[i + 1] - levels[i])), 4),
        "bound": None,
    }
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["thresholds"] == payload["thresholds"]
    summary = (
        "chance USD/CLP ends above each rate on 2024-12-06: 900: at least 97.5%, "
        f"975: {middle['p_above']:.1%}, 1100: at most 2.5%"
    )
    assert summary in done.stdout.splitlines()
    page = (tmp_path / "output/report/index.html").read_text()
    beside = page[page.index('<div class="beside">') :]
    assert beside.index("fan chart of the latest forecast") < beside.index("at least 97.5%")
    for cells in (
        "<td>900</td><td>at least 97.5%</td>",
        f"<td>975</td><td>{middle['p_above']:.1%}</td>",
        "<td>1,100</td><td>at most 2.5%</td>",
    ):
        assert cells in beside
