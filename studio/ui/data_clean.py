"""Data tab, cleaning section: edit a pipeline of filters, run it, judge the report.

The work is in `studio.data.clean` (pipeline, YAML, run, report) and `studio.data.filters`;
this module only lays out the components and converts between them and those functions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.data.clean import (
    DEFAULT_PRESET,
    TABLE_HEADERS,
    CleanResult,
    MostRemoved,
    list_presets,
    load_pipeline,
    pipeline_from_rows,
    pipeline_to_rows,
    pipeline_words,
    preset,
    run_pipeline,
)
from studio.data.filters import FILTERS, PipelineError, read_word_list
from studio.data.store import DataError
from studio.fsutil import atomic_write_text
from studio.i18n import t
from studio.ui.errors import ShownError, error_text

API_CLEAN = "data_clean"


def preset_names() -> list[str]:
    return [p["name"] for p in list_presets() if "error" not in p]


def rows_frame(rows, lang: str) -> pd.DataFrame:
    """The editable pipeline table (rows, or the table on the page with the user's edits),
    its headers in `lang`; rows are read back by position."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.values.tolist()
    return pd.DataFrame(rows, columns=[t(f"data_clean.col_{c}", lang) for c in TABLE_HEADERS])


def filters_help(lang: str) -> str:
    """A Markdown list of every filter with its settings and defaults."""
    lines = []
    for spec in FILTERS.values():
        kind = t("data_clean.rewrites" if spec.rewrites else "data_clean.drops", lang)
        lines.append(f"- **{spec.name}** ({kind}): {spec.help}")
        for p in spec.params:
            default = p.default if p.kind != "words" else "[]"
            lines.append(f"    - `{p.name}` = `{default}`: {p.help}")
    return "\n".join(lines)


def steps_frame(report: dict | None, lang: str) -> pd.DataFrame:
    cols = ["step", "removed", "bytes", "rewritten", "seconds"]
    headers = [t(f"data_clean.col_{c}", lang) for c in cols]
    rows = []
    for s in (report or {}).get("steps", []):
        rows.append(
            [
                s["step"],
                "" if s["rewrites"] else s["removed"],
                "" if s["rewrites"] else s["removed_bytes"],
                s["rewritten"] if s["rewrites"] else "",
                s["seconds"],
            ]
        )
    return pd.DataFrame(rows, columns=headers)


def samples_frame(report: dict | None, step: str | None, lang: str) -> pd.DataFrame:
    headers = [t(f"data_clean.col_{c}", lang) for c in ("row", "id", "text")]
    for s in (report or {}).get("steps", []):
        if s["step"] == step:
            rows = [[x["row"], x.get("id") or "", x["text"]] for x in s["samples"]]
            return pd.DataFrame(rows, columns=headers)
    return pd.DataFrame([], columns=headers)


def histogram_frames(report: dict | None, lang: str):
    """(before, after) bar-plot frames and the common y limit."""
    x, y = "bucket", "documents"
    hist = (report or {}).get("histogram", [])
    before = pd.DataFrame({x: [h["bucket"] for h in hist], y: [h["before"] for h in hist]})
    after = pd.DataFrame({x: [h["bucket"] for h in hist], y: [h["after"] for h in hist]})
    top = max([h["before"] for h in hist] + [1])
    return before, after, [0, top * 1.05]


def _file_path(file) -> Path | None:
    if file is None:
        return None
    return Path(getattr(file, "name", None) or str(file))


def build_section(data) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    start = preset(DEFAULT_PRESET)
    loc.make(gr.Markdown, i18n={"value": "data_clean.intro"})
    report_state = gr.State(None)
    with gr.Row(equal_height=True):
        preset_pick = loc.make(
            gr.Dropdown,
            i18n={"label": "data_clean.preset", "info": "data_clean.preset_info"},
            choices=preset_names(),
            value=DEFAULT_PRESET,
            scale=1,
            elem_id="clean-preset",
        )
        yaml_upload = loc.make(
            gr.File,
            i18n={"label": "data_clean.yaml_upload"},
            file_types=[".yaml", ".yml"],
            scale=1,
            elem_id="clean-yaml-upload",
        )
        with gr.Column(scale=1):
            save_btn = loc.make(
                gr.Button, i18n={"value": "data_clean.yaml_save"}, elem_id="clean-yaml-save"
            )
            yaml_file = loc.make(
                gr.File,
                i18n={"label": "data_clean.yaml_file"},
                interactive=False,
                elem_id="clean-yaml-file",
            )
    steps = loc.make(
        gr.Dataframe,
        i18n={"label": "data_clean.steps"},
        value=rows_frame(pipeline_to_rows(start), loc.lang),
        datatype=["bool", "str", "str"],
        interactive=True,
        wrap=True,
        column_widths=["8%", "22%", "70%"],
        elem_id="clean-steps",
    )
    with loc.make(gr.Accordion, i18n={"label": "data_clean.filters_help"}, open=False):
        loc.make(gr.Markdown, i18n={"value": filters_help})
    with gr.Row():
        ng_words = loc.make(
            gr.Textbox,
            i18n={"label": "data_clean.ng_words", "info": "data_clean.ng_words_info"},
            value=pipeline_words(start),
            lines=6,
            max_lines=20,
            scale=2,
            elem_id="clean-ng-words",
        )
        ng_file = loc.make(
            gr.File,
            i18n={"label": "data_clean.ng_file"},
            file_types=[".txt"],
            scale=1,
            elem_id="clean-ng-file",
        )
    with gr.Row(equal_height=True):
        num_proc = loc.make(
            gr.Number,
            i18n={"label": "data_clean.num_proc", "info": "data_clean.num_proc_info"},
            value=0,
            minimum=0,
            maximum=64,
            precision=0,
            scale=1,
            elem_id="clean-num-proc",
        )
        dry_run = loc.make(
            gr.Checkbox, i18n={"label": "data_clean.dry_run"}, value=False, elem_id="clean-dry-run"
        )
        run_btn = loc.make(
            gr.Button,
            i18n={"value": "data_clean.run"},
            variant="primary",
            scale=2,
            elem_id="clean-run",
        )
    status = gr.Markdown(elem_id="clean-status")
    refused_state = gr.State(None)  # [spec, pipeline fingerprint] refused as removing most
    report_table = loc.make(
        gr.Dataframe,
        i18n={"label": "data_clean.report"},
        value=steps_frame(None, loc.lang),
        interactive=False,
        elem_id="clean-report",
    )
    sample_pick = loc.make(
        gr.Dropdown,
        i18n={"label": "data_clean.sample_step", "info": "data_clean.sample_step_info"},
        choices=[],
        value=None,
        elem_id="clean-sample-step",
    )
    samples = gr.Dataframe(
        value=samples_frame(None, None, loc.lang),
        interactive=False,
        wrap=True,
        elem_id="clean-samples",
    )
    with gr.Row():
        hist_before = loc.make(
            gr.BarPlot,
            i18n={
                "label": "data_clean.hist_before",
                "x_title": "data_clean.hist_x",
                "y_title": "data_clean.hist_y",
            },
            x="bucket",
            y="documents",
            sort=None,
            elem_id="clean-hist-before",
        )
        hist_after = loc.make(
            gr.BarPlot,
            i18n={
                "label": "data_clean.hist_after",
                "x_title": "data_clean.hist_x",
                "y_title": "data_clean.hist_y",
            },
            x="bucket",
            y="documents",
            sort=None,
            elem_id="clean-hist-after",
        )

    def load_preset(name, lang):
        try:
            p = preset(name or DEFAULT_PRESET)
        except PipelineError as exc:
            raise ShownError(
                t("data_clean.bad_pipeline", lang, error=error_text(exc, lang))
            ) from None
        return rows_frame(pipeline_to_rows(p), lang), pipeline_words(p)

    def load_yaml(file, lang):
        path = _file_path(file)
        if path is None:
            return gr.update(), gr.update(), gr.update()
        try:
            p = load_pipeline(path)
        except PipelineError as exc:
            raise ShownError(
                t("data_clean.bad_file", lang, file=path.name, error=error_text(exc, lang))
            ) from None
        note = t("data_clean.yaml_loaded", lang, file=path.name, count=len(p.steps))
        return rows_frame(pipeline_to_rows(p), lang), pipeline_words(p), note

    def load_ng(file, lang):
        path = _file_path(file)
        if path is None:
            return gr.update(), gr.update()
        try:
            words = read_word_list(path)
        except PipelineError as exc:
            raise ShownError(
                t("data_clean.bad_file", lang, file=path.name, error=error_text(exc, lang))
            ) from None
        return "\n".join(words), t("data_clean.ng_loaded", lang, file=path.name, count=len(words))

    def current(rows, words, lang):
        try:
            return pipeline_from_rows(rows, words)
        except PipelineError as exc:
            raise ShownError(
                t("data_clean.bad_pipeline", lang, error=error_text(exc, lang))
            ) from None

    def save_yaml(rows, words, name, lang):
        p = current(rows, words, lang)
        p.name = p.name or f"{name or 'custom'}-edited"
        folder = Path(tempfile.mkdtemp(prefix="clean-pipeline-"))
        path = folder / "cleaning-pipeline.yaml"
        atomic_write_text(path, p.to_yaml())
        return str(path)

    def run(spec, rows, words, procs, dry, lang, refused, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        if not spec:
            raise ShownError(t("data_clean.no_version", lang))
        pipeline = current(rows, words, lang)
        # The same clean pressed again after a "would remove most rows" answer saves it.
        asked = [spec, pipeline.fingerprint()]
        warning = ""
        try:
            result = run_pipeline(ws, spec, pipeline, num_proc=int(procs or 0), dry_run=dry,
                                  allow_most_removed=refused == asked)  # fmt: skip
        except MostRemoved as exc:
            result, refused = CleanResult(None, exc.report), asked
            warning = t("data_clean.most_removed", lang, removed=f"{exc.report['removed']:,}",
                        rows=f"{exc.report['rows_in']:,}", share=f"{exc.share:.0%}",
                        step=exc.top_step)  # fmt: skip
        except (DataError, PipelineError) as exc:
            raise ShownError(t("data_clean.failed", lang, error=error_text(exc, lang))) from None
        else:
            refused = None
        r = result.report
        figures = dict(
            source=r["source"],
            rows_in=f"{r['rows_in']:,}",
            rows_out=f"{r['rows_out']:,}",
            removed=f"{r['removed']:,}",
            bytes=f"{r['bytes_removed']:,}",
            seconds=r["seconds"],
            procs=r["num_proc"],
        )
        if result.version is not None:
            message = t("data_clean.done", lang, version=result.version.spec, **figures)
        elif warning:
            message = f"⚠️ {warning}"
        else:
            message = t("data_clean.done_dry", lang, **figures)
        dropping = [s["step"] for s in r["steps"] if not s["rewrites"]]
        first = next(
            (s["step"] for s in r["steps"] if s["removed"]), dropping[0] if dropping else None
        )
        before, after, ylim = histogram_frames(r, lang)
        return (
            message,
            steps_frame(r, lang),
            r,
            gr.update(choices=dropping, value=first),
            samples_frame(r, first, lang),
            # buckets in length order (a categorical axis sorts them as text otherwise)
            gr.update(value=before, y_lim=ylim, sort=list(before["bucket"])),
            gr.update(value=after, y_lim=ylim, sort=list(after["bucket"])),
            result.version.spec if result.version is not None else gr.update(),
            refused,
        )

    preset_pick.change(
        load_preset,
        inputs=[preset_pick, ctx.lang],
        outputs=[steps, ng_words],
        api_visibility="private",
    )
    yaml_upload.upload(
        load_yaml,
        inputs=[yaml_upload, ctx.lang],
        outputs=[steps, ng_words, status],
        api_visibility="private",
    )
    ng_file.upload(
        load_ng, inputs=[ng_file, ctx.lang], outputs=[ng_words, status], api_visibility="private"
    )
    save_btn.click(
        save_yaml,
        inputs=[steps, ng_words, preset_pick, ctx.lang],
        outputs=yaml_file,
        api_visibility="private",
    )
    run_btn.click(
        run,
        inputs=[data.version, steps, ng_words, num_proc, dry_run, ctx.lang, refused_state],
        outputs=[
            status,
            report_table,
            report_state,
            sample_pick,
            samples,
            hist_before,
            hist_after,
            data.created,
            refused_state,
        ],
        api_name=API_CLEAN,
    )
    sample_pick.change(
        lambda report, step, lang: samples_frame(report, step, lang),
        inputs=[report_state, sample_pick, ctx.lang],
        outputs=samples,
        api_visibility="private",
    )
    ctx.on_language.append(
        (
            lambda report, step, table, lang: (
                steps_frame(report, lang),
                samples_frame(report, step, lang),
                rows_frame(table, lang),  # the user's edits stay
            ),
            [report_state, sample_pick, steps, ctx.lang],
            [report_table, samples, steps],
        )
    )
