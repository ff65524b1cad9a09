"""What Gradio's line plot needs beyond the curve data itself.

`gr.LinePlot` builds its colour scale from the series present in the data when the chart is
first drawn (its domain is not recomputed when only the value changes): a series that
appears later (the eval loss after the first evaluation, a run added to a comparison) is
drawn without a stroke, i.e. invisibly. Every frame we send therefore names every series the
plot may ever show, the absent ones with a single empty row that the chart does not draw.

Only the plot's value is ever updated: when an update changes another property with it
(`colors_in_legend`, titles), the chart is drawn from the value it had before, so every
chart showed the previous update (issue 20). The legend is therefore drawn beside the chart
(`legend_html`), in the page's language.
"""

from __future__ import annotations

import html
import math

import gradio as gr
import pandas as pd

from studio.i18n import t
from studio.runs.curves import X_AXES

SCALES = ("linear", "log")

# A curve chart's axis titles would be its data's column names ("x", "value"), in English
# whatever the page's language, and they cannot follow the language (changing a chart's
# titles redraws it from its previous value). The caption beside the chart names the axes;
# CURVE_CSS hides the titles (the names stay in the lines' aria-labels, where the browser
# tests read them). A series with one point (the first evaluation) is a path of one point,
# which a line does not draw: a round cap draws it as a dot.
CURVE_CSS = """
.curve-chart .role-axis-title { display: none; }
.curve-chart .mark-line path { stroke-linecap: round; stroke-linejoin: round; }
.curve-chart .mark-line path[d$="Z"]:not([d*="L"]) { stroke-width: 7px; }
"""


# A curve whose values barely move (a flat loss: 8.74771 to 8.74779) would fill the chart's
# height, its noise drawn as a trend. Two points of this series, drawn transparent, keep the
# y axis at least MIN_SPAN of the values' size tall. Colour maps list it, so that the chart
# knows it from its first drawing; legends leave it out.
SPAN_SERIES = "~span"
SPAN_COLOR = "rgba(0,0,0,0)"
MIN_SPAN = 0.01


def curve_colors(colors: dict[str, str]) -> dict[str, str]:
    """A curve chart's colour map: its series' colours and the span series, transparent."""
    return {**colors, SPAN_SERIES: SPAN_COLOR}


def _span_rows(table: pd.DataFrame, x: str) -> pd.DataFrame | None:
    values = pd.to_numeric(table["value"], errors="coerce").dropna()
    xs = pd.to_numeric(table[x], errors="coerce").dropna()
    values = values[values.map(math.isfinite)]
    if values.empty or xs.empty:
        return None
    low, high = float(values.min()), float(values.max())
    middle = (low + high) / 2
    need = abs(middle) * MIN_SPAN
    if need <= 0 or high - low >= need:
        return None
    first = float(xs.min())
    return pd.DataFrame(
        {x: [first, first], "value": [middle - need / 2, middle + need / 2],
         "series": [SPAN_SERIES, SPAN_SERIES]}
    )  # fmt: skip


def with_every_series(table: pd.DataFrame, names, x: str) -> pd.DataFrame:
    if SPAN_SERIES in names and len(table):
        span = _span_rows(table, x)
        if span is not None:
            table = pd.concat([table, span], ignore_index=True)
    present = set(table["series"].tolist()) if len(table) else set()
    missing = [n for n in names if n not in present]
    if not missing:
        return table
    pad = pd.DataFrame({x: [math.nan] * len(missing), "value": math.nan, "series": missing})
    both = pd.concat([table, pad], ignore_index=True) if len(table) else pad
    return both.astype({x: "float64", "value": "float64", "series": "string"})


def legend_html(items) -> str:
    """A chart's legend as HTML: (label, colour) pairs, each a coloured line and its label."""
    spans = "".join(
        f'<span class="legend-item"><span class="legend-swatch" style="background:{color}">'
        f"</span>{html.escape(label)}</span>"
        for label, color in items
    )
    return f'<div class="chart-legend">{spans}</div>' if spans else ""


def x_axis_picker(loc, elem_id: str, **kwargs):
    """Step, tokens seen or seconds: the x axis of a curve (Train and Runs tabs)."""
    return loc.make(
        gr.Radio,
        i18n={
            "label": "runs.x",
            "choices": lambda lang: [(t(f"runs.x_{x}", lang), x) for x in X_AXES],
        },
        value="step",
        elem_id=elem_id,
        **kwargs,
    )


def scale_picker(loc, elem_id: str, **kwargs):
    """Linear or log (log10 values: the line plot has no log axis)."""
    return loc.make(
        gr.Radio,
        i18n={
            "label": "runs.scale",
            "choices": lambda lang: [(t(f"runs.scale_{s}", lang), s) for s in SCALES],
        },
        value="linear",
        elem_id=elem_id,
        **kwargs,
    )
