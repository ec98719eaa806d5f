"""Text from the metrics log reaches the page as text, never as markup: a member name, an error
or a data reason holding <, >, & or quotes is escaped wherever the page shows it. Expected
markup written out by hand."""

import math

from fxforecast.ops.report.charts import Html
from fxforecast.ops.report.sections import _cell, _data_facts, _swatch, _table

HOSTILE = "<script>alert(\"x\")</script> & 'y'"
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;y&#x27;"


def test_a_cell_escapes_text_and_keeps_markup_already_escaped():
    assert _cell(HOSTILE) == ESCAPED
    assert _cell(Html("<b>kept</b>")) == "<b>kept</b>"
    assert _cell(None) == "-"
    assert _cell(math.nan) == "-"
    assert _cell(1234.5) == "1,234.50"
    assert _cell(7) == "7"


def test_a_table_escapes_every_header_and_cell():
    table = _table(["name", "<n>"], [[HOSTILE, 1.0], ["a&b", Html("<i>i</i>")]])
    assert table == (
        '<div class="scroll"><table><tr><th class=text>name</th><th>&lt;n&gt;</th></tr>'
        f"<tr><td class=text>{ESCAPED}</td><td>1.00</td></tr>"
        "<tr><td class=text>a&amp;b</td><td><i>i</i></td></tr></table></div>"
    )
    two_text_columns = _table(["a", "b", "c"], [["x", "y", "z"]], text_columns=2)
    assert two_text_columns == (
        '<div class="scroll"><table><tr><th class=text>a</th><th class=text>b</th><th>c</th>'
        "</tr><tr><td class=text>x</td><td class=text>y</td><td>z</td></tr></table></div>"
    )


def test_a_member_swatch_escapes_the_name():
    swatch = _swatch(HOSTILE, {HOSTILE: "#123456"})
    assert isinstance(swatch, Html)
    assert swatch == f'<span class="swatch" style="background:#123456"></span>{ESCAPED}'


def _data(stale: bool) -> dict:
    return {
        "source": "cache",
        "reason": HOSTILE,
        "newest_close": "2024-11-29",
        "age_days_now": 9,
        "age_days_at_run": 2,
        "refresh_on": True,
        "last_refresh": "2024-12-01 <ok>",
        "stale": stale,
    }


def test_the_data_facts_are_escaped_and_a_stale_close_is_red():
    fresh = _data_facts(_data(stale=False))
    assert fresh == [
        ["data", f"cache: {HOSTILE}"],
        ["newest close", "USD/CLP 2024-11-29 (9 days old now, 2 at the last success)"],
        ["last refresh", "2024-12-01 <ok>"],
    ]
    assert _table(["fact", "value"], fresh).count("&lt;script&gt;") == 1
    stale = _data_facts(_data(stale=True))
    assert stale[1] == [
        "newest close",
        '<span class="alert">USD/CLP 2024-11-29 (9 days old now, 2 at the last success)</span>',
    ]
    assert isinstance(stale[1][1], Html)
    assert stale[0] == fresh[0] and stale[2] == fresh[2]
