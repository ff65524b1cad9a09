"""The Evaluate tab: suites x models (or every checkpoint of a run), scored with standard
errors, a per-item heatmap, score against step and CSV export. The work is
`studio.evaluate`; models come from the shared pool (`ctx.use`), so a run's checkpoints load
their base once and switch adapters."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.errors import StudioError
from studio.evaluate import harness, results
from studio.evaluate.runner import demo_plan, evaluate, sweep_models
from studio.evaluate.suites import import_suite, import_text, suite_choices
from studio.i18n import t
from studio.paths import EMBEDDED_MODEL_NAME
from studio.runs.store import list_runs
from studio.ui.errors import ShownError
from studio.ui.pickers import keep_current

API_RUN = "evaluate"
API_DEMO = "evaluate_demo"
API_SHOW = "evaluate_show"
API_CSV = "evaluate_export_csv"
API_UPLOAD = "evaluate_upload"
API_CREATE = "evaluate_create"
FAILURES = (StudioError, OSError)


def all_suites(ws) -> list[str]:
    return suite_choices(ws) + harness.task_choices(ws)


def harness_note(lang: str) -> str:
    ok, version = harness.available()
    return t("eval.harness_ok", lang, version=version) if ok else t("eval.harness_missing", lang)


def metric_names(lang: str) -> dict[str, str]:
    names = {}
    for key in (
        "exact_match",
        "char_f1",
        "acc",
        "acc_norm",
        "perplexity",
        "bits_per_char",
        "nll_per_token",
    ):
        names[key] = t(f"eval.metric_{key}", lang)
    for variant in ("full", "full_norm", "after", "after_norm"):
        for key in (f"mrr_{variant}", f"acc1_{variant}"):
            names[key] = t(f"eval.metric_{key}", lang)
    return names


def results_table(session: dict | None, lang: str) -> pd.DataFrame:
    fixed = {c: t(f"eval.col_{c}", lang) for c in ("suite", "model", "step", "n")}
    if not session or not session.get("results"):
        return pd.DataFrame(columns=[fixed[c] for c in ("suite", "model", "n")])
    frame = results.table(session["results"], metric_names(lang))
    if all(r.get("step") is None for r in session["results"]):
        frame = frame.drop(columns="step")  # no checkpoint sweep: an empty column
    return frame.rename(columns=fixed)


def noise_notes(session: dict | None, lang: str) -> str:
    if not session or not session.get("results"):
        return ""
    found = results.comparisons(session["results"])
    lines = [f"**{t('eval.noise_title', lang)}**"]
    for c in found:
        if c["difference"] is None or c["stderr"] is None:
            continue
        key = "eval.noise_within" if c["within_noise"] else "eval.noise_beyond"
        metric = metric_names(lang).get(c["metric"], c["metric"])
        lines.append(
            "- "
            + t(
                key,
                lang,
                suite=c["suite"],
                model=c["model"],
                baseline=c["baseline"],
                diff=c["difference"],
                se=c["stderr"],
                metric=metric,
                n=c["n"],
            )
        )
    if len(lines) == 1:
        n = max(len(r["items"]) for r in session["results"])
        width = 100 * 1.96 * 0.5 / max(1, n) ** 0.5  # the widest case, p = 0.5
        lines.append("- " + t("eval.noise_single", lang, n=n, width=width))
    for error in session.get("errors") or []:
        where = f"{error['model']} · {error['suite']}" if error.get("suite") else error["model"]
        lines.append(f"- ⚠️ {t('eval.errors', lang)}: {where}: {error['message']}")
    return "\n".join(lines)


def summary_line(session: dict | None, lang: str, ws) -> str:
    if not session or not session.get("results"):
        return t("eval.nothing", lang)
    seconds = sum(r.get("seconds") or 0 for r in session["results"])
    models = len({r["model_label"] for r in session["results"]})
    suites = len({r["suite_label"] for r in session["results"]})
    path = results.results_dir(ws) / f"{session['id']}.json"
    return t("eval.summary", lang, models=models, suites=suites, seconds=seconds, file=path)


def figures(session: dict | None) -> tuple[str | None, str | None]:
    if not session or not session.get("results"):
        return None, None
    folder = Path(tempfile.mkdtemp(prefix="eval-"))
    heat = results.heatmap_png(session["results"], folder / f"{session['id']}-items.png")
    steps = results.steps_png(session["results"], folder / f"{session['id']}-steps.png")
    return (str(heat) if heat else None), (str(steps) if steps else None)


def build(ctx, loc) -> None:
    ws = ctx.workspace
    with loc.make(gr.Tab, i18n={"label": "eval.tab"}, id="evaluate"):
        loc.make(gr.Markdown, i18n={"value": "eval.intro"})
        with gr.Row(equal_height=True):
            demo_btn = loc.make(
                gr.Button,
                i18n={"value": "eval.demo"},
                variant="primary",
                scale=2,
                elem_id="eval-demo",
            )
            loc.make(gr.Markdown, i18n={"value": "eval.demo_info"}, elem_id="eval-demo-info")
        with gr.Row():
            with gr.Column(scale=3, min_width=320):
                suites = loc.make(
                    gr.Dropdown,
                    i18n={"label": "eval.suites", "info": "eval.suites_info"},
                    choices=all_suites(ws),
                    value=[],
                    multiselect=True,
                    allow_custom_value=True,  # suites added after the page was built; checked
                    elem_id="eval-suites",
                )
                with loc.make(gr.Accordion, i18n={"label": "eval.add_suite"}, open=False):
                    loc.make(gr.Markdown, i18n={"value": "eval.add_suite_help"})
                    suite_name = loc.make(
                        gr.Textbox, i18n={"label": "eval.suite_name"}, elem_id="eval-suite-name"
                    )
                    upload = loc.make(
                        gr.File,
                        i18n={"label": "eval.upload"},
                        file_types=[".jsonl", ".json"],
                        file_count="single",
                        height=110,
                        elem_id="eval-upload",
                    )
                    pasted = loc.make(
                        gr.Textbox, i18n={"label": "eval.paste"}, lines=4, elem_id="eval-paste"
                    )
                    create_btn = loc.make(
                        gr.Button, i18n={"value": "eval.create"}, elem_id="eval-create"
                    )
                    added = gr.Markdown(elem_id="eval-added")
            with gr.Column(scale=3, min_width=320):
                models = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "eval.models",
                        "info": "eval.models_info",
                        "choices": lambda lang: ctx.model_choices(lang, checkpoints=True),
                    },
                    value=[EMBEDDED_MODEL_NAME],
                    multiselect=True,
                    allow_custom_value=True,
                    elem_id="eval-models",
                )
                sweep = loc.make(
                    gr.Dropdown,
                    i18n={"label": "eval.sweep", "info": "eval.sweep_info"},
                    choices=[""] + [r.id for r in list_runs(ws)],
                    value="",
                    allow_custom_value=True,
                    elem_id="eval-sweep",
                )
                limit = loc.make(
                    gr.Number,
                    i18n={"label": "eval.limit"},
                    value=0,
                    minimum=0,
                    precision=0,
                    elem_id="eval-limit",
                )
        run_btn = loc.make(gr.Button, i18n={"value": "eval.run"}, elem_id="eval-run")
        loc.make(gr.Markdown, i18n={"value": harness_note}, elem_id="eval-harness")
        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('eval.results', lang)}"})
        status = gr.Markdown(elem_id="eval-status")
        table = gr.Dataframe(
            value=results_table(None, loc.lang), interactive=False, wrap=True, elem_id="eval-table"
        )
        noise = gr.Markdown(elem_id="eval-noise")
        with gr.Row(equal_height=False):
            heatmap = loc.make(
                gr.Image,
                i18n={"label": "eval.heatmap"},
                type="filepath",
                interactive=False,
                scale=3,
                elem_id="eval-heatmap",
            )
            steps = loc.make(
                gr.Image,
                i18n={"label": "eval.steps"},
                type="filepath",
                interactive=False,
                scale=2,
                elem_id="eval-steps",
            )
        with gr.Row():
            previous = loc.make(
                gr.Dropdown,
                i18n={"label": "eval.previous"},
                choices=results.session_choices(ws),
                value=None,
                allow_custom_value=True,
                scale=4,
                elem_id="eval-previous",
            )
            show_btn = loc.make(
                gr.Button, i18n={"value": "eval.load"}, scale=1, elem_id="eval-show"
            )
            csv_btn = loc.make(
                gr.Button, i18n={"value": "eval.export_csv"}, scale=2, elem_id="eval-csv"
            )
            export = loc.make(
                gr.File,
                i18n={"label": "eval.export"},
                file_count="multiple",
                interactive=False,
                scale=3,
                elem_id="eval-export",
            )
        current = gr.State(None)  # the session shown (its id)

    def fail(lang, exc) -> ShownError:
        return ShownError(t("eval.error", lang, message=exc))

    def shown(session: dict | None, lang: str, extra: str = ""):
        heat, plot = figures(session)
        notes = noise_notes(session, lang)
        return (
            summary_line(session, lang, ws) + (f"\n\n{extra}" if extra else ""),
            results_table(session, lang),
            notes,
            heat,
            gr.update(value=plot, visible=plot is not None),
            session["id"] if session else None,
            gr.update(
                choices=results.session_choices(ws), value=session["id"] if session else None
            ),
        )

    outputs = [status, table, noise, heatmap, steps, current, previous]

    def reporter(progress):
        return lambda fraction, message: progress(fraction, desc=message)

    def run(suite_specs, model_specs, sweep_run, first_n, lang, progress=gr.Progress()):  # noqa: B008
        try:
            entries = list(model_specs or [])
            if sweep_run:
                entries += sweep_models(ws, sweep_run)
            session = evaluate(
                ws,
                list(suite_specs or []),
                entries,
                ctx.use,
                limit=int(first_n) if first_n else None,
                progress=reporter(progress),
            )
        except FAILURES as exc:
            raise fail(lang, exc) from None
        return shown(session, lang)

    def demo(lang, progress=gr.Progress()):  # noqa: B008
        try:
            suite_specs, entries = demo_plan(ws)
            session = evaluate(ws, suite_specs, entries, ctx.use, progress=reporter(progress))
        except FAILURES as exc:
            raise fail(lang, exc) from None
        extra = t("eval.demo_no_finetune", lang) if len(entries) == 1 else ""
        picked = list(dict.fromkeys(r["suite_label"] for r in session["results"]))
        return (
            *shown(session, lang, extra),
            gr.update(choices=all_suites(ws), value=picked),
            gr.update(
                choices=ctx.model_choices(lang, checkpoints=True), value=[e.spec for e in entries]
            ),
        )

    def show(session_id, lang):
        if not session_id:
            raise ShownError(t("eval.nothing", lang))
        try:
            session = results.load_session(ws, session_id)
        except FAILURES as exc:
            raise fail(lang, exc) from None
        return shown(session, lang)

    def redraw(session_id, lang):
        """The tables and notes are rendered text: draw them again in the new language."""
        if not session_id:
            return (t("eval.nothing", lang), results_table(None, lang), "", gr.skip(), gr.skip())
        try:
            session = results.load_session(ws, session_id)
        except FAILURES:
            return (gr.skip(),) * 5
        return (
            summary_line(session, lang, ws),
            results_table(session, lang),
            noise_notes(session, lang),
            gr.skip(),
            gr.skip(),
        )

    def export_csv(session_id, lang):
        if not session_id:
            raise ShownError(t("eval.nothing", lang))
        try:
            session = results.load_session(ws, session_id)
        except FAILURES as exc:
            raise fail(lang, exc) from None
        folder = Path(tempfile.mkdtemp(prefix="eval-"))
        scores = folder / f"{session['id']}-scores.csv"
        items = folder / f"{session['id']}-items.csv"
        scores.write_text(results.scores_csv(session["results"], session["id"]), encoding="utf-8")
        items.write_text(results.items_csv(session["results"]), encoding="utf-8")
        return [str(scores), str(items)]

    def added_suite(version, current_suites, lang):
        label = f"{version.name}/{version.version}"
        kind = t(f"eval.kind_{version.format}", lang)
        message = t(
            "eval.added",
            lang,
            name=version.name,
            version=version.version,
            kind=kind,
            rows=version.rows,
        )
        keep = [s for s in current_suites or [] if s.split("/")[0] != version.name]
        return gr.update(choices=all_suites(ws), value=[*keep, label]), message

    def add_upload(path, name, current_suites, lang):
        if not path:
            return gr.update(), ""
        src = Path(path)
        try:
            version = import_suite(ws, src, name=(name or "").strip() or None, source=src.name)
        except FAILURES as exc:
            raise fail(lang, exc) from None
        return added_suite(version, current_suites, lang)

    def add_pasted(text, name, current_suites, lang):
        try:
            version = import_text(ws, text, name=(name or "").strip() or "pasted")
        except FAILURES as exc:
            raise fail(lang, exc) from None
        return added_suite(version, current_suites, lang)

    run_btn.click(
        run,
        inputs=[suites, models, sweep, limit, ctx.lang],
        outputs=outputs,
        api_name=API_RUN,
        concurrency_limit=1,
        concurrency_id="evaluate",
    )
    demo_btn.click(
        demo,
        inputs=ctx.lang,
        outputs=[*outputs, suites, models],
        api_name=API_DEMO,
        concurrency_limit=1,
        concurrency_id="evaluate",
    )
    show_btn.click(show, inputs=[previous, ctx.lang], outputs=outputs, api_name=API_SHOW)
    csv_btn.click(export_csv, inputs=[current, ctx.lang], outputs=export, api_name=API_CSV)
    upload.upload(
        add_upload,
        inputs=[upload, suite_name, suites, ctx.lang],
        outputs=[suites, added],
        api_name=API_UPLOAD,
    )
    create_btn.click(
        add_pasted,
        inputs=[pasted, suite_name, suites, ctx.lang],
        outputs=[suites, added],
        api_name=API_CREATE,
    )

    ctx.keep_models_current(models, checkpoints=True)
    keep_current(suites, lambda: all_suites(ws))
    keep_current(sweep, lambda: [""] + [r.id for r in list_runs(ws)])
    keep_current(previous, lambda: results.session_choices(ws))
    ctx.on_language.append((redraw, [current, ctx.lang], [status, table, noise, heatmap, steps]))
