"""The Compare tab: the base, a run's checkpoints and exported models answer the same
prompts with the same settings and seed, in a grid (prompts x models) that shows how each
reply ended and whether it loops. The work is `studio.compare`; models come from the
shared pool, so checkpoints of one base load it once."""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.chat import DEFAULT_PERSONAS
from studio.compare import (
    DEMO_PROMPTS,
    Comparison,
    PromptsError,
    compare_iter,
    default_models,
    mark_counts,
    parse_prompts,
    preference_mark,
    read_prompts,
)
from studio.data.preference import pairs_from_marks, save_pairs
from studio.errors import StudioError
from studio.evaluate import EvalError
from studio.evaluate.runner import sweep_models
from studio.i18n import t
from studio.runs.store import list_runs
from studio.safety import UnsafeInputError, safe_name
from studio.ui.errors import ShownError, error_text
from studio.ui.keys import keyboard_js
from studio.ui.pickers import keep_current
from studio.ui.sampling import sampling_controls, settings_from

API_COMPARE = "compare_models"
DEMO_SYSTEM = next(iter(DEFAULT_PERSONAS.values()))
# Marking the grid's rows: reply 1 better, reply 2 better, a tie (named, for scripts); skip
# and back are the page's own.
API_MARK = {"1": "compare_mark_1", "2": "compare_mark_2", "=": "compare_mark_tie"}
API_SAVE_PAIRS = "compare_save_preference"
DEFAULT_PAIRS_NAME = "preferences"

# Keyboard, as the Data tab's quality labeller does it (ui/data_quality.py): a listener on
# the document that, while the marking panel is visible and the focus is not in a text
# field, turns 1, 2, =, s and b into clicks on the panel's buttons. It is installed when a
# comparison is started (the panel has nothing to mark before).
PANEL_ID = "compare-pref-panel"
KEY_BUTTONS = {
    "1": "compare-pref-1",
    "2": "compare-pref-2",
    "=": "compare-pref-tie",
    "s": "compare-pref-skip",
    "b": "compare-pref-back",
}
KEYBOARD_JS = keyboard_js("__tsumugiCompareKeys", KEY_BUTTONS, PANEL_ID, result="[]")


def run_with_checkpoints(ws, run_id: str) -> list[str]:
    """A run's base model, its intermediate checkpoints in step order and its final model
    (the same list the Evaluate tab's checkpoint sweep scores)."""
    return [entry.spec for entry in sweep_models(ws, run_id)]


def summary_frame(result: Comparison | None, lang: str) -> pd.DataFrame:
    columns = ["model", "replies", "eos", "repetitive", "mean_tokens", "mean_distinct_2"]
    headers = [t(f"compare.col_{c}", lang) for c in columns] + [t("compare.col_seconds", lang)]
    rows = [[r[c] for c in columns] + [r["seconds"]] for r in result.summary()] if result else []
    return pd.DataFrame(rows, columns=headers)


def _badge(kind: str, text: str, title: str = "") -> str:
    return f'<span class="cmp-badge cmp-{kind}" title="{html.escape(title)}">{text}</span>'


def render_grid(result: Comparison | None, lang: str) -> str:
    if result is None:
        return f'<div class="cmp-empty">{html.escape(t("compare.empty", lang))}</div>'
    head = "".join(f"<th>{html.escape(m)}</th>" for m in result.models)
    rows = []
    for i, prompt in enumerate(result.prompts):
        cells = []
        for model in result.models:
            c = result.cell(model, i)
            if c is None:
                cells.append(
                    f'<td class="cmp-pending">{html.escape(t("compare.pending", lang))}</td>'
                )
                continue
            if c.error:
                cells.append(f'<td class="cmp-error">{html.escape(c.error)}</td>')
                continue
            badges = [
                _badge("eos", t("compare.badge_eos", lang), t("compare.badge_eos_tip", lang))
                if c.stop_reason == "eos"
                else _badge("len", t("compare.badge_len", lang), t("compare.badge_len_tip", lang))
            ]
            if c.repetitive:
                tip = t("compare.badge_rep_tip", lang, text=c.longest_repeat[:40])
                badges.append(
                    _badge("rep", t("compare.badge_rep", lang, share=f"{c.repeat_share:.0%}"), tip)
                )
            if "literal_eos" in c.warnings:
                badges.append(
                    _badge(
                        "lit", t("compare.badge_literal", lang), t("chat.warn_literal_eos", lang)
                    )
                )
            figures = t(
                "compare.figures",
                lang,
                tokens=c.new_tokens,
                seconds=f"{c.seconds:.2f}",
                distinct=f"{c.distinct_2:.2f}",
            )
            cells.append(
                f'<td><div class="cmp-text">{html.escape(c.text.strip()) or "∅"}</div>'
                f'<div class="cmp-meta">{"".join(badges)} <span>{figures}</span></div></td>'
            )
        rows.append(f'<tr><th class="cmp-prompt">{html.escape(prompt)}</th>{"".join(cells)}</tr>')
    return (
        '<div class="cmp-scroll"><table class="cmp-grid"><thead><tr>'
        f"<th>{html.escape(t('compare.col_prompt', lang))}</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_pool(pool, lang: str) -> str:
    held = pool.loaded()
    if not held:
        return t("compare.pool_empty", lang)
    lines = [
        t(
            "compare.pool_item",
            lang,
            model=item["model"],
            device=item["device"],
            mb=f"{item['bytes'] / 2**20:.1f}",
            adapters=", ".join(item["adapters"]) or "-",
        )
        for item in held
    ]
    return t("compare.pool_title", lang) + "\n" + "\n".join(f"- {line}" for line in lines)


# --- marking rows: preference pairs ------------------------------------------------------
def grid_key(result: Comparison) -> str:
    """What the marks were given to: the grid's models, prompts and settings (marks of an
    earlier grid are not carried over to a new one)."""
    return json.dumps(
        [result.models, result.prompts, result.settings, result.chat, result.system],
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )


def marks_of(result: Comparison | None, state: dict | None) -> dict[int, dict]:
    """Row index -> the mark given to it, for this grid."""
    if result is None or not state or state.get("key") != grid_key(result):
        return {}
    return {int(i): mark for i, mark in state.get("marks", {}).items()}


def next_row(total: int, marks: dict, after: int) -> int:
    """The first unmarked row after `after` (wrapping), else the one after it."""
    for i in [*range(after + 1, total), *range(0, after + 1)]:
        if i not in marks:
            return i
    return min(after + 1, max(total - 1, 0))


def _row_index(result: Comparison, row) -> int:
    index = int(row) - 1 if isinstance(row, int | float) else 0
    return min(max(index, 0), max(len(result.prompts) - 1, 0))


def _mark_text(mark: dict | None, lang: str) -> str:
    if mark is None:
        return t("compare.pref_unmarked", lang)
    if mark.get("tie"):
        return t("compare.pref_marked_tie", lang)
    if mark.get("skip"):
        return t("compare.pref_marked_skip", lang)
    return t("compare.pref_marked", lang, model=mark["chosen"])


def render_pref_row(result: Comparison | None, state, first, second, row, lang: str) -> str:
    """The row being marked: its prompt and the two replies side by side, and its mark."""
    if result is None:
        return f'<div class="cmp-empty">{html.escape(t("compare.pref_none", lang))}</div>'
    index = _row_index(result, row)
    marks = marks_of(result, state)
    sides = []
    for number, model in (("1", first), ("2", second)):
        cell = result.cell(model, index) if model else None
        if cell is None:
            body = f'<div class="cmp-pending">{html.escape(t("compare.pending", lang))}</div>'
        elif cell.error:
            body = f'<div class="cmp-error">{html.escape(cell.error)}</div>'
        else:
            body = f'<div class="cmp-text">{html.escape(cell.text.strip()) or "∅"}</div>'
        head = html.escape(t("compare.pref_reply", lang, number=number, model=model or "-"))
        sides.append(
            f'<td style="width:50%"><div class="cmp-meta" style="margin:0 0 4px">{head}</div>'
            f"{body}</td>"
        )
    title = t("compare.pref_row_title", lang, row=index + 1, total=len(result.prompts))
    return (
        f'<div class="cmp-meta">{html.escape(title)} · '
        f"{html.escape(_mark_text(marks.get(index), lang))}</div>"
        f'<table class="cmp-grid"><thead><tr><th colspan="2" class="cmp-prompt">'
        f"{html.escape(result.prompts[index])}</th></tr></thead>"
        f"<tbody><tr>{''.join(sides)}</tr></tbody></table>"
    )


def render_pref_progress(result: Comparison | None, state, lang: str) -> str:
    if result is None:
        return ""
    counts = mark_counts(list(marks_of(result, state).values()))
    text = t("compare.pref_progress", lang, total=len(result.prompts), **counts)
    if counts["marked"] == len(result.prompts):
        text += " " + t("compare.pref_all_marked", lang)
    return text


def mark_row(choice, result, state, first, second, row, lang):
    """Mark the row on view and move to the next unmarked one: (state, row, view, progress)."""
    if result is None:
        raise ShownError(t("compare.pref_no_result", lang))
    index = _row_index(result, row)
    try:
        mark = preference_mark(result.to_dict(), index, choice, first or "", second or "")
    except StudioError as exc:
        raise ShownError(error_text(exc, lang)) from None
    marks = marks_of(result, state) | {index: mark}
    state = {"key": grid_key(result), "marks": {str(i): m for i, m in marks.items()}}
    shown = next_row(len(result.prompts), marks, index) + 1
    return (
        state,
        shown,
        render_pref_row(result, state, first, second, shown, lang),
        render_pref_progress(result, state, lang),
    )


def save_marked(ws, result, state, name, lang):
    """Write the marked rows as a version of dataset `name` (form `preference`)."""
    try:  # a name from the browser is a name, never a path
        name = safe_name((name or "").strip()[:60])
    except UnsafeInputError as exc:
        raise ShownError(t("compare.pref_bad_name", lang, error=error_text(exc, lang))) from None
    if result is None:
        raise ShownError(t("compare.pref_no_result", lang))
    marks = [m for _, m in sorted(marks_of(result, state).items())]
    comparison = result.to_dict()
    try:
        rows, counts = pairs_from_marks(comparison, marks)
        if not rows:
            raise ShownError(t("compare.pref_nothing", lang, **counts))
        version = save_pairs(
            ws,
            name,
            rows,
            source="compare tab",
            settings={
                "models": result.models,
                "chat": result.chat,
                "system": result.system,
                "generation": result.settings,
            },
            counts=counts,
        )
    except (StudioError, OSError) as exc:
        raise ShownError(error_text(exc, lang)) from None
    return t("compare.pref_saved", lang, name=version.name, version=version.version, **counts)


def build(ctx, loc) -> None:
    ws = ctx.workspace
    with loc.make(gr.Tab, i18n={"label": "compare.tab"}, id="compare"):
        loc.make(gr.Markdown, i18n={"value": "compare.intro"})
        with gr.Row():
            models = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "compare.models",
                    "info": "compare.models_info",
                    "choices": lambda lang: ctx.model_choices(lang, checkpoints=True, gguf=True),
                },
                value=default_models(ws),
                multiselect=True,
                allow_custom_value=True,
                scale=5,
                elem_id="compare-models",
            )
            run_pick = loc.make(
                gr.Dropdown,
                i18n={"label": "compare.add_run", "info": "compare.add_run_info"},
                choices=[r.id for r in list_runs(ws)],
                value=None,
                allow_custom_value=True,
                scale=3,
                elem_id="compare-add-run",
            )
        with gr.Row():
            prompts = loc.make(
                gr.Textbox,
                i18n={"label": "compare.prompts", "info": "compare.prompts_info"},
                value=DEMO_PROMPTS,
                lines=5,
                max_lines=20,
                scale=5,
                elem_id="compare-prompts",
            )
            prompts_file = loc.make(
                gr.File,
                i18n={"label": "compare.prompts_file"},
                file_types=[".txt", ".jsonl"],
                type="filepath",
                scale=2,
                elem_id="compare-prompts-file",
            )
        with gr.Row():
            chat = loc.make(
                gr.Checkbox, i18n={"label": "compare.chat"}, value=True, elem_id="compare-chat"
            )
            system = loc.make(
                gr.Textbox,
                i18n={"label": "compare.system"},
                value=DEMO_SYSTEM,
                scale=4,
                elem_id="compare-system",
            )
            max_new = loc.make(
                gr.Number,
                i18n={"label": "compare.max_new_tokens"},
                value=64,
                minimum=1,
                maximum=8192,
                precision=0,
                elem_id="compare-max-new",
            )
            greedy = loc.make(
                gr.Checkbox, i18n={"label": "compare.greedy"}, value=True, elem_id="compare-greedy"
            )
        with loc.make(gr.Accordion, i18n={"label": "compare.sampling"}, open=False):
            controls = sampling_controls(loc)
        with gr.Row():
            run_btn = loc.make(
                gr.Button,
                i18n={"value": "compare.run"},
                variant="primary",
                scale=3,
                elem_id="compare-run",
            )
            stop_btn = loc.make(
                gr.Button, i18n={"value": "compare.stop"}, scale=1, elem_id="compare-stop"
            )
        status = gr.Markdown(elem_id="compare-status")
        grid = gr.HTML(render_grid(None, loc.lang), elem_id="compare-grid")
        summary = loc.make(
            gr.Dataframe,
            i18n={"label": "compare.summary"},
            value=summary_frame(None, loc.lang),
            interactive=False,
            elem_id="compare-summary",
        )
        with gr.Row():
            csv_file = loc.make(
                gr.File, i18n={"label": "compare.csv"}, interactive=False, elem_id="compare-csv"
            )
            md_file = loc.make(
                gr.File,
                i18n={"label": "compare.markdown"},
                interactive=False,
                elem_id="compare-md",
            )
        with loc.make(
            gr.Accordion, i18n={"label": "compare.pref_section"}, open=True, elem_id="compare-pref"
        ):
            loc.make(gr.Markdown, i18n={"value": "compare.pref_intro"})
            with gr.Row():
                first_pick = loc.make(
                    gr.Dropdown,
                    i18n={"label": "compare.pref_first"},
                    choices=[],
                    value=None,
                    allow_custom_value=True,  # checked against the grid's models
                    scale=3,
                    elem_id="compare-pref-first",
                )
                second_pick = loc.make(
                    gr.Dropdown,
                    i18n={"label": "compare.pref_second"},
                    choices=[],
                    value=None,
                    allow_custom_value=True,
                    scale=3,
                    elem_id="compare-pref-second",
                )
                row_pick = loc.make(
                    gr.Number,
                    i18n={"label": "compare.pref_row"},
                    value=1,
                    minimum=1,
                    precision=0,
                    scale=1,
                    elem_id="compare-pref-row",
                )
            with gr.Group(elem_id=PANEL_ID):
                row_view = gr.HTML(
                    render_pref_row(None, None, None, None, 1, loc.lang),
                    elem_id="compare-pref-view",
                )
                with gr.Row():
                    better_1 = loc.make(
                        gr.Button, i18n={"value": "compare.pref_better_1"}, elem_id="compare-pref-1"
                    )
                    better_2 = loc.make(
                        gr.Button, i18n={"value": "compare.pref_better_2"}, elem_id="compare-pref-2"
                    )
                    tie_btn = loc.make(
                        gr.Button, i18n={"value": "compare.pref_tie"}, elem_id="compare-pref-tie"
                    )
                    skip_btn = loc.make(
                        gr.Button, i18n={"value": "compare.pref_skip"}, elem_id="compare-pref-skip"
                    )
                    back_btn = loc.make(
                        gr.Button, i18n={"value": "compare.pref_back"}, elem_id="compare-pref-back"
                    )
            pref_progress = gr.Markdown(elem_id="compare-pref-progress")
            with gr.Row(equal_height=True):
                pairs_name = loc.make(
                    gr.Textbox,
                    i18n={"label": "compare.pref_name"},
                    value=DEFAULT_PAIRS_NAME,
                    scale=3,
                    elem_id="compare-pref-name",
                )
                save_pairs_btn = loc.make(
                    gr.Button,
                    i18n={"value": "compare.pref_save"},
                    variant="primary",
                    scale=1,
                    elem_id="compare-pref-save",
                )
            pref_status = gr.Markdown(elem_id="compare-pref-status")
        with gr.Row():
            pool_view = gr.Markdown(elem_id="compare-pool")
            unload_btn = loc.make(
                gr.Button, i18n={"value": "compare.unload"}, scale=0, elem_id="compare-unload"
            )
        result_state = gr.State(None)
        pref_state = gr.State(None)  # {"key": the grid's, "marks": {row: mark}}

    def add_run(run_id, current, lang):
        if not run_id:
            return gr.update()
        try:
            names = run_with_checkpoints(ws, run_id)
        except EvalError as exc:  # no such run
            raise ShownError(
                t("compare.no_run", lang, run=run_id, error=error_text(exc, lang))
            ) from None
        merged = list(dict.fromkeys([*(current or []), *names]))
        return gr.update(choices=ctx.model_choices(lang, checkpoints=True, gguf=True), value=merged)

    def load_prompts(path, lang):
        if not path:
            return gr.update()
        try:
            return "\n".join(read_prompts(Path(path)))
        except PromptsError as exc:
            raise ShownError(t("compare.bad_prompts", lang, error=error_text(exc, lang))) from None

    def run(
        chosen,
        prompt_text,
        chat_on,
        system_text,
        max_new_tokens,
        greedy_on,
        temp,
        top,
        rep,
        seed_value,
        lang,
    ):
        chosen = [m for m in (chosen or []) if m]
        if not chosen:
            raise ShownError(t("compare.no_models", lang))
        try:
            prompt_list = parse_prompts(prompt_text or "", source=t("compare.prompts", lang))
            settings = settings_from(max_new_tokens, greedy_on, temp, top, rep, seed_value)
        except StudioError as exc:
            raise ShownError(error_text(exc, lang)) from None
        total = len(chosen) * len(prompt_list)

        result = None
        for result in compare_iter(
            ctx.use,
            chosen,
            prompt_list,
            settings,
            chat=bool(chat_on),
            system=(system_text or None) if chat_on else None,
        ):
            done = len(result.cells)
            yield (
                render_grid(result, lang),
                summary_frame(result, lang),
                t("compare.progress", lang, done=done, total=total),
                None,
                None,
                result,
                render_pool(ctx.pool, lang),
            )
        folder = Path(tempfile.mkdtemp(prefix="compare-"))
        csv_path, md_path = folder / "compare.csv", folder / "compare.md"
        csv_path.write_text(result.to_csv(), encoding="utf-8")
        md_path.write_text(result.to_markdown(), encoding="utf-8")
        failed = sum(c.error is not None for c in result.cells)
        yield (
            render_grid(result, lang),
            summary_frame(result, lang),
            t("compare.done", lang, total=total, failed=failed),
            str(csv_path),
            str(md_path),
            result,
            render_pool(ctx.pool, lang),
        )

    inputs = [
        models,
        prompts,
        chat,
        system,
        max_new,
        greedy,
        *controls.inputs(),
        ctx.lang,
    ]
    outputs = [grid, summary, status, csv_file, md_file, result_state, pool_view]
    event = run_btn.click(run, inputs=inputs, outputs=outputs, api_name=API_COMPARE)
    stop_btn.click(None, cancels=[event], api_visibility="private")
    run_pick.change(
        add_run, inputs=[run_pick, models, ctx.lang], outputs=models, api_visibility="private"
    )
    keep_current(run_pick, lambda: [r.id for r in list_runs(ws)])
    prompts_file.upload(
        load_prompts, inputs=[prompts_file, ctx.lang], outputs=prompts, api_visibility="private"
    )
    unload_btn.click(
        lambda lang: (ctx.pool.unload(), render_pool(ctx.pool, lang))[1],
        inputs=ctx.lang,
        outputs=pool_view,
        api_name="unload_models",
    )
    ctx.on_language.append(
        (
            lambda result, lang: (render_grid(result, lang), summary_frame(result, lang)),
            [result_state, ctx.lang],
            [grid, summary],
        )
    )

    # --- marking the grid's rows ----------------------------------------------------------
    def after_run(result, state, first, second, lang):
        """A grid is done: its models in the two pickers (the first two unless chosen), the
        first unmarked row on view."""
        if result is None:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        models = result.models
        first = first if first in models else models[0]
        second = second if second in models and second != first else None
        second = second or next((m for m in models if m != first), None)
        row = next_row(len(result.prompts), marks_of(result, state), -1) + 1
        return (
            gr.update(choices=models, value=first),
            gr.update(choices=models, value=second),
            row,
            render_pref_row(result, state, first, second, row, lang),
            render_pref_progress(result, state, lang),
        )

    event.then(
        after_run,
        inputs=[result_state, pref_state, first_pick, second_pick, ctx.lang],
        outputs=[first_pick, second_pick, row_pick, row_view, pref_progress],
        api_visibility="private",
    )
    run_btn.click(None, js=KEYBOARD_JS, api_visibility="private")  # the keys, installed once
    view_inputs = [result_state, pref_state, first_pick, second_pick, row_pick, ctx.lang]
    mark_inputs = [result_state, pref_state, first_pick, second_pick, row_pick, ctx.lang]
    mark_outputs = [pref_state, row_pick, row_view, pref_progress]
    for button, choice in ((better_1, "1"), (better_2, "2"), (tie_btn, "="), (skip_btn, "skip")):
        visibility = {"api_name": API_MARK[choice]} if choice in API_MARK else {
            "api_visibility": "private"
        }  # fmt: skip
        button.click(
            lambda result, state, first, second, row, lang, _choice=choice: mark_row(
                _choice, result, state, first, second, row, lang
            ),
            inputs=mark_inputs,
            outputs=mark_outputs,
            trigger_mode="once",  # a second key press never marks a row not yet seen
            **visibility,
        )

    def back(result, state, first, second, row, lang):
        if result is None:
            return gr.update(), gr.update()
        shown = max(_row_index(result, row), 1)  # one row up (1-based: the index)
        return shown, render_pref_row(result, state, first, second, shown, lang)

    back_btn.click(
        back,
        inputs=view_inputs,
        outputs=[row_pick, row_view],
        api_visibility="private",
        trigger_mode="once",
    )
    for picker in (first_pick, second_pick, row_pick):
        picker.input(
            lambda result, state, first, second, row, lang: render_pref_row(
                result, state, first, second, row, lang
            ),
            inputs=view_inputs,
            outputs=row_view,
            api_visibility="private",
            show_progress="hidden",
        )
    save_pairs_btn.click(
        lambda result, state, name, lang: save_marked(ws, result, state, name, lang),
        inputs=[result_state, pref_state, pairs_name, ctx.lang],
        outputs=pref_status,
        api_name=API_SAVE_PAIRS,
    )
    ctx.on_language.append(
        (
            lambda result, state, first, second, row, lang: (
                render_pref_row(result, state, first, second, row, lang),
                render_pref_progress(result, state, lang),
            ),
            view_inputs,
            [row_view, pref_progress],
        )
    )
    ctx.keep_models_current(models, checkpoints=True, gguf=True)
    ctx.on_ready.append((lambda lang: render_pool(ctx.pool, lang), [ctx.lang], [pool_view]))
