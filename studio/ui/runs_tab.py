"""The Runs tab: every run's history, and several runs compared in one view.

Everything comes from the run directories (`studio.runs.history`), and the curves are drawn
by the same `studio.runs.curves.frame` as the Train tab's live curve.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.errors import StudioError
from studio.fsutil import file_size
from studio.i18n import t
from studio.runs import curves, history
from studio.runs.store import ACTIVE, STATES, RunError, open_run
from studio.ui.errors import ShownError, error_text, refusal
from studio.ui.pickers import keep_current
from studio.ui.plots import (
    curve_colors,
    legend_html,
    scale_picker,
    with_every_series,
    x_axis_picker,
)
from studio.ui.run_status import explain

API_HISTORY = "runs_history"
API_COMPARE = "runs_compare"
API_PNG = "runs_export_png"
API_CSV = "runs_export_csv"
API_RENAME = "runs_rename"
API_NOTE = "runs_note"
API_DELETE = "runs_delete"
REFRESH_S = 1.0
PALETTE = (
    "#0f766e", "#dc2626", "#2563eb", "#d97706", "#7c3aed",
    "#059669", "#db2777", "#4b5563", "#0891b2", "#65a30d",
)  # fmt: skip
# 20 runs at once, and the span series that keeps a flat curve flat (ui/plots.py)
SLOT_COLORS = curve_colors({f"#{i + 1}": color for i, color in enumerate(PALETTE * 2)})
METRIC_CHOICES = (
    "loss",
    "eval_loss",
    "score",
    "learning_rate",
    "grad_norm",
    "tokens_per_s",
    "reward_margin",
    "reward_accuracy",
    "reward_chosen",
    "reward_rejected",
)
TABLE_COLUMNS = (
    "run",
    "title",
    "state",
    "message",
    "base_model",
    "method",
    "params",
    "dataset",
    "final_loss",
    "best_eval_loss",
    "best_score",
    "steps",
    "tokens",
    "duration_s",
    "peak_memory_mb",
    "backend",
    "note",
)
SUMMARY_COLUMNS = (
    "line",
    "run",
    "method",
    "params",
    "final_loss",
    "final_eval_loss",
    "best_eval_loss",
    "best_score",
    "steps",
    "tokens",
    "duration_s",
    "peak_memory_mb",
)


def table(rows: list[dict], columns, lang: str) -> pd.DataFrame:
    """Summaries as a table with localized headers and readable numbers."""
    data = []
    for row in rows:
        out = {}
        for c in columns:
            value = row.get(c)
            if c == "state":
                value = t(f"train.state_{value}", lang)
            elif c == "message":
                value = explain(row, lang)
            elif isinstance(value, float):
                value = round(value, 4 if "loss" in c else 1)
            out[t(f"runs.col_{c}", lang)] = "" if value is None else value
        data.append(out)
    return pd.DataFrame(data, columns=[t(f"runs.col_{c}", lang) for c in columns])


def diff_table(runs, lang: str) -> pd.DataFrame:
    rows = history.config_diff(runs)
    columns = [t("runs.col_field", lang), *[r.id for r in runs]]
    data = [[d["field"], *[_cell(d[r.id]) for r in runs]] for d in rows]
    return pd.DataFrame(data, columns=columns)


def _cell(value) -> str:
    return "" if value is None else str(value)


def build(ctx, loc) -> None:
    ws = ctx.workspace
    with loc.make(gr.Tab, i18n={"label": "runs.tab"}, id="runs"):
        loc.make(gr.Markdown, i18n={"value": "runs.intro"})
        with gr.Row():
            text = loc.make(
                gr.Textbox, i18n={"label": "runs.filter"}, value="", scale=3, elem_id="runs-filter"
            )
            states = loc.make(
                gr.CheckboxGroup,
                i18n={
                    "label": "runs.states",
                    "choices": lambda lang: [(t(f"train.state_{s}", lang), s) for s in STATES],
                },
                value=[],
                scale=4,
                elem_id="runs-states",
            )
            sort = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "runs.sort",
                    "choices": lambda lang: [
                        (t(f"runs.col_{k}", lang), k) for k in history.SORT_KEYS
                    ],
                },
                value="created",
                scale=2,
                elem_id="runs-sort",
            )
            refresh_btn = loc.make(
                gr.Button, i18n={"value": "runs.refresh"}, scale=1, elem_id="runs-refresh"
            )
        history_table = gr.Dataframe(interactive=False, wrap=True, elem_id="runs-table")
        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('runs.compare', lang)}"})
        with gr.Row():
            selected = loc.make(
                gr.Dropdown,
                i18n={"label": "runs.select"},
                choices=history.run_choices(ws),
                value=[],
                multiselect=True,
                allow_custom_value=True,  # runs made after the page was built; ids are checked
                scale=4,
                elem_id="runs-select",
            )
            metric = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "runs.metric",
                    "choices": lambda lang: [
                        (t(f"runs.metric_{m}", lang), m) for m in METRIC_CHOICES
                    ],
                },
                value="loss",
                scale=2,
                elem_id="runs-metric",
            )
            x_axis = x_axis_picker(loc, "runs-x", scale=2)
            scale = scale_picker(loc, "runs-scale", scale=2)
            smoothing = loc.make(
                gr.Slider,
                i18n={"label": "runs.smoothing"},
                minimum=0.0,
                maximum=0.99,
                step=0.01,
                value=0.0,
                scale=2,
                elem_id="runs-smoothing",
            )
        caption = gr.HTML(elem_id="runs-caption")
        plot = gr.LinePlot(
            x="x",
            y="value",
            color="series",
            color_map=SLOT_COLORS,
            value=with_every_series(curves.frame({}, x="x"), SLOT_COLORS, "x"),
            colors_in_legend=[],
            show_label=False,
            elem_classes=["curve-chart"],
            height=360,
            elem_id="runs-curve",
            label="",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                loc.make(
                    gr.Markdown, i18n={"value": lambda lang: f"#### {t('runs.summary', lang)}"}
                )
                summary = gr.Dataframe(interactive=False, wrap=True, elem_id="runs-summary")
            with gr.Column(scale=2):
                loc.make(gr.Markdown, i18n={"value": lambda lang: f"#### {t('runs.diff', lang)}"})
                diff = gr.Dataframe(interactive=False, wrap=True, elem_id="runs-diff")
        with gr.Row():
            png_btn = loc.make(gr.Button, i18n={"value": "runs.export_png"}, elem_id="runs-png")
            csv_btn = loc.make(gr.Button, i18n={"value": "runs.export_csv"}, elem_id="runs-csv")
            export = loc.make(
                gr.File, i18n={"label": "runs.export"}, interactive=False, elem_id="runs-export"
            )
        with loc.make(gr.Accordion, i18n={"label": "runs.manage"}, open=False):
            with gr.Row():
                target = loc.make(
                    gr.Dropdown,
                    i18n={"label": "runs.target"},
                    choices=history.run_choices(ws),
                    value=None,
                    allow_custom_value=True,
                    scale=3,
                    elem_id="runs-target",
                )
                title = loc.make(
                    gr.Textbox, i18n={"label": "runs.title"}, scale=3, elem_id="runs-title"
                )
                rename_btn = loc.make(
                    gr.Button, i18n={"value": "runs.rename"}, scale=1, elem_id="runs-rename"
                )
            with gr.Row():
                note = loc.make(
                    gr.Textbox, i18n={"label": "runs.note"}, lines=2, scale=6, elem_id="runs-note"
                )
                note_btn = loc.make(
                    gr.Button, i18n={"value": "runs.save_note"}, scale=1, elem_id="runs-save-note"
                )
            with gr.Row():
                confirm = loc.make(
                    gr.Textbox,
                    i18n={"label": "runs.confirm", "info": "runs.confirm_info"},
                    scale=6,
                    elem_id="runs-confirm",
                )
                delete_btn = loc.make(
                    gr.Button,
                    i18n={"value": "runs.delete"},
                    variant="stop",
                    scale=1,
                    elem_id="runs-delete",
                )
            manage_message = gr.Markdown(elem_id="runs-manage-message")
        timer = gr.Timer(REFRESH_S)
        seen = gr.State(None)  # inside the Tab: a State directly in Tabs adds a tab button

    def show_history(filter_text, state_filter, sort_key, lang):
        try:
            rows = history.history(
                ws, text=filter_text or "", states=state_filter or None, sort=sort_key or "created"
            )
        except StudioError as exc:
            raise ShownError(error_text(exc, lang)) from exc
        return table(rows, TABLE_COLUMNS, lang)

    history_inputs = [text, states, sort, ctx.lang]
    refresh_btn.click(
        show_history, inputs=history_inputs, outputs=history_table, api_name=API_HISTORY
    )
    for trigger in (text.submit, states.change, sort.change):
        trigger(
            show_history,
            inputs=history_inputs,
            outputs=history_table,
            api_visibility="private",
        )

    def opened(run_ids) -> list:
        found = []
        for run_id in run_ids or []:
            try:
                found.append(open_run(ws, run_id))
            except RunError:
                continue  # deleted meanwhile
        return found

    def compare(run_ids, metric_name, x, scale_name, weight, lang):
        runs = opened(run_ids)
        frame = history.comparison(
            runs, metric=metric_name, x=x, smoothing=weight or 0.0, log=scale_name == "log"
        )
        caption = t(
            "runs.caption",
            lang,
            metric=("log10 " if scale_name == "log" else "")
            + t(f"runs.metric_{metric_name}", lang),
            x=t(f"runs.x_{x}", lang),
            scale=t(f"runs.scale_{scale_name}", lang),
        )
        summaries = [history.summarize(r) for r in runs]
        # The line plot colours only the series it knew when first drawn, so lines get fixed
        # slot names (#1, #2, ...) with fixed colours; the figures table says which is which.
        slots = {history.run_label(r): f"#{i + 1}" for i, r in enumerate(runs)}
        frame["series"] = frame["series"].map(slots).astype("string")
        for i, row in enumerate(summaries):
            row["line"] = f"#{i + 1}"
        # Only the value changes (ui/plots.py): the x column always has the same name, and
        # the legend is drawn beside the chart.
        drawn = set(frame["series"])
        legend = legend_html(
            (f"{slot} {label}", SLOT_COLORS[slot]) for label, slot in slots.items() if slot in drawn
        )
        frame = with_every_series(frame.rename(columns={x: "x"}), SLOT_COLORS, "x")
        return (
            f"<p><b>{html.escape(caption)}</b></p>{legend}" if runs else "",
            frame,
            table(summaries, SUMMARY_COLUMNS, lang),
            diff_table(runs, lang),
        )

    compare_inputs = [selected, metric, x_axis, scale, smoothing, ctx.lang]
    compare_outputs = [caption, plot, summary, diff]
    selected.change(compare, inputs=compare_inputs, outputs=compare_outputs, api_name=API_COMPARE)
    for control in (metric, x_axis, scale, smoothing):
        control.change(
            compare, inputs=compare_inputs, outputs=compare_outputs, api_visibility="private"
        )

    def live(run_ids, metric_name, x, scale_name, weight, lang, last):
        """While a selected run trains, redraw when its files grew (within a second)."""
        runs = opened(run_ids)
        key = [[r.id, file_size(r.metrics_path)] for r in runs] + [
            metric_name,
            x,
            scale_name,
            weight,
        ]
        if key == last or not any(r.state in ACTIVE for r in runs):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), key
        return (*compare(run_ids, metric_name, x, scale_name, weight, lang), key)

    timer.tick(
        live,
        inputs=[*compare_inputs, seen],
        outputs=[*compare_outputs, seen],
        api_visibility="private",
        show_progress="hidden",
    )

    def export_png(run_ids, metric_name, x, scale_name, weight):
        runs = opened(run_ids)
        if not runs:
            raise ShownError("select runs first")
        frame = history.comparison(
            runs, metric=metric_name, x=x, smoothing=weight or 0.0, log=scale_name == "log"
        )
        path = Path(tempfile.mkdtemp(prefix="runs-")) / f"compare-{metric_name}.png"
        return str(history.to_png(frame, path, x=x, metric=metric_name, log=scale_name == "log"))

    def export_csv(run_ids):
        runs = opened(run_ids)
        if not runs:
            raise ShownError("select runs first")
        path = Path(tempfile.mkdtemp(prefix="runs-")) / "runs.csv"
        path.write_text(history.to_csv(runs), encoding="utf-8")
        return str(path)

    png_btn.click(export_png, inputs=compare_inputs[:5], outputs=export, api_name=API_PNG)
    csv_btn.click(export_csv, inputs=selected, outputs=export, api_name=API_CSV)

    def pick(run_id):
        if not run_id:
            return "", ""
        info = open_run(ws, run_id).info()
        return info.get("title") or "", info.get("note") or ""

    target.change(pick, inputs=target, outputs=[title, note], api_visibility="private")

    def managed(action):
        def handler(run_id, value, lang, *rest):
            if not run_id:
                return t("runs.pick_first", lang), gr.update(), gr.update(), gr.update()
            try:
                run = open_run(ws, run_id)
                if action == "rename":
                    history.set_title(run, value)
                    done = t("runs.renamed", lang, run=run_id)
                elif action == "note":
                    history.set_note(run, value)
                    done = t("runs.noted", lang, run=run_id)
                else:
                    history.delete(run, confirm=(value or "").strip())
                    done = t("runs.deleted", lang, run=run_id)
            except StudioError as exc:
                return refusal(exc, lang), gr.update(), gr.update(), gr.update()
            choices = history.run_choices(ws)
            kept = [c for c in (rest[0] if rest else []) or [] if c != run_id or action != "delete"]
            return (
                done,
                gr.update(choices=choices, value=None if action == "delete" else run_id),
                gr.update(choices=choices, value=kept),
                show_history("", [], "created", lang),
            )

        return handler

    manage_outputs = [manage_message, target, selected, history_table]
    rename_btn.click(
        managed("rename"),
        inputs=[target, title, ctx.lang, selected],
        outputs=manage_outputs,
        api_name=API_RENAME,
    )
    note_btn.click(
        managed("note"),
        inputs=[target, note, ctx.lang, selected],
        outputs=manage_outputs,
        api_name=API_NOTE,
    )
    delete_btn.click(
        managed("delete"),
        inputs=[target, confirm, ctx.lang, selected],
        outputs=manage_outputs,
        api_name=API_DELETE,
    )

    for picker in (selected, target):
        keep_current(picker, lambda: history.run_choices(ws))
    ctx.on_ready.append((show_history, history_inputs, [history_table]))
    # Tables and the caption are rendered text: draw them again in the new language.
    ctx.on_language.append((show_history, history_inputs, [history_table]))
    ctx.on_language.append((compare, compare_inputs, compare_outputs))
