"""What the curve charts are sent: every series named from the first drawing, and a flat
curve kept flat."""

from __future__ import annotations

import math

import pandas as pd

from studio.ui.plots import SPAN_SERIES, with_every_series

NAMES = {"loss": "#000", "eval_loss": "#f00", SPAN_SERIES: "rgba(0,0,0,0)"}


def curve(values, series="loss"):
    return pd.DataFrame({"x": [float(i + 1) for i in range(len(values))], "value": values,
                         "series": series})  # fmt: skip


def drawn(table, name):
    rows = table[table["series"] == name]
    return rows[rows["value"].notna()]


def test_a_flat_curve_gets_an_invisible_span_so_noise_is_not_drawn_as_a_trend():
    table = with_every_series(curve([8.74771, 8.74775, 8.74779]), NAMES, "x")
    span = drawn(table, SPAN_SERIES)
    assert len(span) == 2
    low, high = span["value"].min(), span["value"].max()
    assert math.isclose(high - low, 0.0874775, rel_tol=1e-3)  # 1 % of the values' size
    assert low < 8.74771 and high > 8.74779  # the curve sits in the middle
    assert set(span["x"]) == {1.0}


def test_a_curve_that_moves_and_a_missing_series_are_left_as_they_are():
    moving = with_every_series(curve([9.0, 7.5, 6.1]), NAMES, "x")
    assert drawn(moving, SPAN_SERIES).empty
    assert drawn(moving, "loss")["value"].tolist() == [9.0, 7.5, 6.1]
    # every series the chart may show is named, absent ones by one empty row
    assert set(moving["series"]) == set(NAMES)
    assert drawn(moving, "eval_loss").empty
    empty = with_every_series(curve([]), NAMES, "x")
    assert drawn(empty, SPAN_SERIES).empty and set(empty["series"]) == set(NAMES)
    # a chart whose colours do not list the span series never gets one
    assert drawn(with_every_series(curve([1.0, 1.0001]), {"loss": "#000"}, "x"), SPAN_SERIES).empty
