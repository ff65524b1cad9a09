"""The Compare tab: the base, a run's checkpoints and exported models answer the same
prompts with the same settings and seed, in a grid (prompts x models) that shows how each
reply ended and whether it loops. The work is `studio.compare`; models come from the
shared pool, so checkpoints of one base load it once."""

from __future__ import annotations

import html
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
    parse_prompts,
    read_prompts,
)
from studio.errors import StudioError
from studio.evaluate import EvalError
from studio.evaluate.runner import sweep_models
from studio.i18n import t
from studio.runs.store import list_runs
from studio.ui.errors import ShownError, error_text
from studio.ui.pickers import keep_current
from studio.ui.sampling import sampling_controls, settings_from

API_COMPARE = "compare_models"
DEMO_SYSTEM = next(iter(DEFAULT_PERSONAS.values()))


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
                    "choices": lambda lang: ctx.model_choices(lang, checkpoints=True),
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
        with gr.Row():
            pool_view = gr.Markdown(elem_id="compare-pool")
            unload_btn = loc.make(
                gr.Button, i18n={"value": "compare.unload"}, scale=0, elem_id="compare-unload"
            )
        result_state = gr.State(None)

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
        return gr.update(choices=ctx.model_choices(lang, checkpoints=True), value=merged)

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
    ctx.keep_models_current(models, checkpoints=True)
    ctx.on_ready.append((lambda lang: render_pool(ctx.pool, lang), [ctx.lang], [pool_view]))
