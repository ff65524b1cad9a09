"""The Export tab: a finished run as a merged model or an adapter, and merges of several
fine-tunes. The work is `studio.export`; results land in `workspace/models/` and appear in
every model picker."""

from __future__ import annotations

import gradio as gr

from studio.errors import StudioError
from studio.export import llama_cpp
from studio.export.export import DTYPES, MODES, export_run
from studio.export.gguf import DEFAULT_QUANTS, export_gguf, register_ollama
from studio.export.gguf import QUANTS as GGUF_QUANTS
from studio.export.merge import merge
from studio.export.ollama import ollama_binary
from studio.export.recipe import ADAPTER_METHODS, KINDS, MODEL_METHODS, MergeRecipe, RecipeError
from studio.i18n import t
from studio.runs.store import list_runs, open_run
from studio.safety import UnsafeInputError, safe_name
from studio.ui.errors import refusal
from studio.ui.pickers import keep_current

API_EXPORT = "export_run"
API_MERGE = "merge_models"
API_GGUF = "export_gguf"
API_OLLAMA = "export_ollama"


def finished_runs(ws) -> list[str]:
    """Runs with a final model, each followed by `<id>@best` when it kept a best
    checkpoint (evaluation while training)."""
    found = []
    for run in list_runs(ws):
        if (run.final_dir / "studio_run.json").is_file():
            found.append(run.id)
            if run.best() is not None:
                found.append(f"{run.id}@best")
    return found


def gguf_sources(ws) -> list[str]:
    """What can become a GGUF: finished runs (and their best checkpoints), then the full
    models of the workspace (merged exports, merges)."""
    models = [
        name
        for name, folder in ws.model_dirs(checkpoints=False).items()
        if not name.startswith("run:") and (folder / "config.json").is_file()
    ]
    return finished_runs(ws) + models


def gguf_text(done, lang: str) -> str:
    from studio.export.gguf_check import check_table

    head = t(
        "export.gguf_exported",
        lang,
        name=done.name,
        path=done.path,
        files=", ".join(done.files.values()),
        size=f"{done.bytes / 2**20:.1f}",
        seconds=done.seconds,
    )
    body = check_table(done.check, lang) if done.check else t("export.gguf_unchecked", lang)
    return f"{head}\n\n{body}"


def parse_weights(text: str, n: int) -> list[float]:
    parts = [p for p in (text or "").replace("、", ",").split(",") if p.strip()]
    if not parts:
        return [round(1 / n, 4)] * n
    try:
        weights = [float(p) for p in parts]
    except ValueError as exc:
        raise RecipeError(f"weights must be numbers separated by commas, got {text!r}") from exc
    if len(weights) != n:
        raise RecipeError(f"{n} sources need {n} weights, got {len(weights)}")
    return weights


def exported_text(done, lang: str) -> str:
    """What an export wrote, for the user (Markdown)."""
    return t(
        "export.exported",
        lang,
        name=done.name,
        path=done.path,
        size=f"{done.bytes / 2**20:.1f}",
        eos=", ".join(map(str, done.eos_token_ids)),
        seconds=done.seconds,
        memory=done.peak_rss_mb,
    )


def build(ctx, loc) -> None:
    ws = ctx.workspace
    runs = finished_runs(ws)
    with loc.make(gr.Tab, i18n={"label": "export.tab"}, id="export"):
        loc.make(gr.Markdown, i18n={"value": "export.intro"})
        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('export.export', lang)}"})
        with gr.Row():
            run_pick = loc.make(
                gr.Dropdown,
                i18n={"label": "export.run"},
                choices=runs,
                value=runs[0] if runs else None,
                allow_custom_value=True,  # runs finished after the page was built
                scale=4,
                elem_id="export-run",
            )
            mode = loc.make(
                gr.Radio,
                i18n={
                    "label": "export.mode",
                    "choices": lambda lang: [(t(f"export.mode_{m}", lang), m) for m in MODES],
                },
                value="merged",
                scale=3,
                elem_id="export-mode",
            )
            dtype = loc.make(
                gr.Dropdown,
                i18n={"label": "export.dtype"},
                choices=list(DTYPES),
                value="float32",
                scale=2,
                elem_id="export-dtype",
            )
            name = loc.make(
                gr.Textbox, i18n={"label": "export.name"}, scale=3, elem_id="export-name"
            )
        export_btn = loc.make(
            gr.Button, i18n={"value": "export.do_export"}, variant="primary", elem_id="export-do"
        )
        export_status = gr.Markdown(elem_id="export-status")

        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('export.gguf', lang)}"})
        loc.make(gr.Markdown, i18n={"value": "export.gguf_intro"})
        if llama_cpp.missing():
            loc.make(
                gr.Markdown,
                i18n={
                    "value": lambda lang: t(
                        "export.gguf_missing", lang, command=llama_cpp.INSTALL_HINT
                    )
                },  # fmt: skip
                elem_id="gguf-missing",
            )
        sources_now = gguf_sources(ws)
        with gr.Row():
            gguf_pick = loc.make(
                gr.Dropdown,
                i18n={"label": "export.gguf_source"},
                choices=sources_now,
                value=sources_now[0] if sources_now else None,
                allow_custom_value=True,
                scale=4,
                elem_id="gguf-source",
            )
            gguf_quants = loc.make(
                gr.CheckboxGroup,
                i18n={"label": "export.gguf_quants"},
                choices=list(GGUF_QUANTS),
                value=list(DEFAULT_QUANTS),
                scale=5,
                elem_id="gguf-quants",
            )
        with gr.Row():
            gguf_name = loc.make(
                gr.Textbox, i18n={"label": "export.name"}, scale=3, elem_id="gguf-name"
            )
            gguf_check = loc.make(
                gr.Checkbox, i18n={"label": "export.gguf_check"}, value=True, scale=2,
                elem_id="gguf-check",
            )  # fmt: skip
        with gr.Row():
            gguf_btn = loc.make(
                gr.Button, i18n={"value": "export.do_gguf"}, variant="primary",
                elem_id="gguf-do", scale=3,
            )  # fmt: skip
            ollama_btn = loc.make(
                gr.Button, i18n={"value": "export.ollama_register"}, elem_id="gguf-ollama",
                scale=2, visible=ollama_binary() is not None,
            )  # fmt: skip
        gguf_status = gr.Markdown(elem_id="gguf-status")
        gguf_done = gr.State("")

        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('export.merge', lang)}"})
        with gr.Row():
            kind = loc.make(
                gr.Radio,
                i18n={
                    "label": "export.kind",
                    "choices": lambda lang: [(t(f"export.kind_{k}", lang), k) for k in KINDS],
                },
                value="adapters",
                scale=3,
                elem_id="merge-kind",
            )
            method = loc.make(
                gr.Dropdown,
                i18n={"label": "export.method", "info": "export.method_info"},
                choices=list(ADAPTER_METHODS),
                value="linear",
                scale=2,
                elem_id="merge-method",
            )
            merge_dtype = loc.make(
                gr.Dropdown,
                i18n={"label": "export.dtype"},
                choices=list(DTYPES),
                value="float32",
                scale=2,
                elem_id="merge-dtype",
            )
        with gr.Row():
            sources = loc.make(
                gr.Dropdown,
                i18n={"label": "export.sources", "choices": ctx.model_choices},
                value=[],
                multiselect=True,
                allow_custom_value=True,
                scale=5,
                elem_id="merge-sources",
            )
            weights = loc.make(
                gr.Textbox,
                i18n={"label": "export.weights", "placeholder": "export.weights_hint"},
                scale=2,
                elem_id="merge-weights",
            )
        with gr.Row():
            base = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "export.base",
                    "info": "export.base_info",
                    "choices": ctx.model_choices,
                },
                value=None,
                allow_custom_value=True,
                scale=4,
                elem_id="merge-base",
            )
            density = loc.make(
                gr.Slider,
                i18n={"label": "export.density"},
                minimum=0.05,
                maximum=1.0,
                step=0.05,
                value=0.5,
                scale=2,
                elem_id="merge-density",
            )
            merge_name = loc.make(
                gr.Textbox, i18n={"label": "export.name"}, value="merged", scale=3,
                elem_id="merge-name",
            )  # fmt: skip
        merge_btn = loc.make(
            gr.Button, i18n={"value": "export.do_merge"}, variant="primary", elem_id="merge-do"
        )
        merge_status = gr.Markdown(elem_id="merge-status")
        recipe_view = loc.make(
            gr.Code, i18n={"label": "export.recipe"}, language="yaml", lines=8,
            elem_id="merge-recipe",
        )  # fmt: skip

    def do_export(run_id, mode_name, dtype_name, wanted, lang):
        try:  # a bad name is said first
            if (wanted or "").strip():
                safe_name(wanted.strip())
        except UnsafeInputError as exc:
            return refusal(exc, lang, escape=True)
        if not run_id:
            return t("export.pick_run", lang)
        try:
            run_name, _, at = run_id.partition("@")
            done = export_run(ws, open_run(ws, run_name), mode=mode_name, dtype=dtype_name,
                              name=(wanted or "").strip() or None, best=at == "best")  # fmt: skip
        except (StudioError, OSError) as exc:
            return refusal(exc, lang, escape=True)
        return exported_text(done, lang)

    export_btn.click(
        do_export, inputs=[run_pick, mode, dtype, name, ctx.lang], outputs=export_status,
        api_name=API_EXPORT,
    )  # fmt: skip
    keep_current(run_pick, lambda: finished_runs(ws))

    def do_gguf(spec, quants, wanted, check, lang):
        try:
            if (wanted or "").strip():
                safe_name(wanted.strip())
        except UnsafeInputError as exc:
            return refusal(exc, lang, escape=True), ""
        if not spec:
            return t("export.pick_run", lang), ""
        if spec not in gguf_sources(ws):  # never a path or name the browser made up
            return refusal(StudioError(f"No such run or model here: {spec}"), lang,
                           escape=True), ""  # fmt: skip
        try:
            done = export_gguf(ws, spec, quants=list(quants or []) or None,
                               name=(wanted or "").strip() or None, check=bool(check))  # fmt: skip
        except (StudioError, OSError) as exc:
            return refusal(exc, lang, escape=True), ""
        return gguf_text(done, lang), done.name

    gguf_btn.click(
        do_gguf, inputs=[gguf_pick, gguf_quants, gguf_name, gguf_check, ctx.lang],
        outputs=[gguf_status, gguf_done], api_name=API_GGUF,
    )  # fmt: skip
    keep_current(gguf_pick, lambda: gguf_sources(ws))

    def do_ollama(name, lang):
        if not name:
            return t("export.pick_gguf", lang)
        if ollama_binary() is None:
            return t("export.ollama_absent", lang)
        try:
            tag, _ = register_ollama(ws, name)
        except (StudioError, OSError) as exc:
            return refusal(exc, lang, escape=True)
        return t("export.ollama_done", lang, tag=tag)

    ollama_btn.click(do_ollama, inputs=[gguf_done, ctx.lang], outputs=gguf_status,
                     api_name=API_OLLAMA)  # fmt: skip
    kind.change(
        lambda k: gr.update(
            choices=list(ADAPTER_METHODS if k == "adapters" else MODEL_METHODS), value="linear"
        ),
        inputs=kind, outputs=method, api_visibility="private",
    )  # fmt: skip

    def do_merge(kind_name, method_name, dtype_name, chosen, weight_text, base_name,
                 density_value, wanted, lang):  # fmt: skip
        try:
            chosen = list(chosen or [])
            values = parse_weights(weight_text, len(chosen)) if chosen else []
            recipe = MergeRecipe.from_dict(
                {
                    "name": (wanted or "").strip() or "merged",
                    "kind": kind_name,
                    "method": method_name,
                    "base": base_name or None,
                    "sources": [
                        {"source": s, "weight": w} for s, w in zip(chosen, values, strict=True)
                    ],
                    "density": density_value,
                    "dtype": dtype_name,
                }
            )
            report = merge(ws, recipe)
        except (StudioError, OSError) as exc:
            return refusal(exc, lang, escape=True), ""
        return (
            t("export.merged", lang, name=report["name"], path=report["path"],
              seconds=report["seconds"], memory=report["peak_rss_mb"]),
            recipe.to_yaml(),
        )  # fmt: skip

    merge_btn.click(
        do_merge,
        inputs=[kind, method, merge_dtype, sources, weights, base, density, merge_name, ctx.lang],
        outputs=[merge_status, recipe_view],
        api_name=API_MERGE,
    )
    ctx.keep_models_current(sources)
    ctx.keep_models_current(base)
