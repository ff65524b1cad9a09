"""Data tab, synthesis section: SFT pairs generated from the chosen corpus by a local model.

The work is in `studio.synth` (the job runs in its own process, `spawn_job`); this module
lays out the settings, starts, stops and resumes jobs, and shows a job's progress and its
report (counts by rejection reason, with samples) while it runs and after.
"""

from __future__ import annotations

import html

import gradio as gr

from studio.errors import StudioError
from studio.generate import GenerationSettings
from studio.i18n import t
from studio.runs.launcher import stop as stop_process
from studio.runs.store import ACTIVE
from studio.synth.checks import REASONS
from studio.synth.generators import BACKENDS
from studio.synth.job import (
    OUTPUTS,
    SynthSettings,
    list_jobs,
    new_job,
    open_job,
    progress_of,
    spawn_job,
)
from studio.synth.passages import PassageSettings
from studio.synth.templates import load_template, parse_template, template_names, template_text
from studio.ui.errors import refusal
from studio.ui.progress import duration

API_START, API_STOP, API_RESUME, API_STATUS = (
    "synth_start",
    "synth_stop",
    "synth_resume",
    "synth_status",
)
DEFAULT_TEMPLATE = "qa-ja"
REFRESH_S = 2.0  # the status poll while a job runs

CSS = (
    "<style>"
    ".sy-table{border-collapse:collapse;margin:4px 0 10px}"
    ".sy-table td,.sy-table th{border-top:1px solid var(--border-color-primary);padding:4px 8px;"
    "text-align:left;vertical-align:top}"
    ".sy-sample{border-left:3px solid var(--border-color-primary);padding:2px 8px;margin:6px 0;"
    "white-space:pre-wrap;font-size:0.9em}"
    ".sy-where{color:var(--body-text-color-subdued);font-size:0.85em}"
    "</style>"
)


def template_choices(lang: str) -> list[tuple[str, str]]:
    found = [load_template(n) for n in template_names()]
    return [(f"{x.name} — {x.description.get(lang, '')}", x.name) for x in found]


def job_choices(ws) -> list[str]:
    return [j.id for j in list_jobs(ws)]


def status_line(job_id: str, status: dict, lang: str) -> str:
    """What the job is doing (or how it ended), its throughput and ETA, and what to do."""
    state = status["state"]
    rejected = sum((status.get("rejected") or {}).values())
    lines = [
        t(
            "data_synth.progress",
            lang,
            job=job_id,
            state=t(f"data_synth.state_{state}", lang),
            done=f"{status.get('passages_done', 0):,}",
            total=f"{status.get('passages_total', 0):,}" if status.get("passages_total") else "…",
            accepted=f"{status.get('accepted', 0):,}",
            rejected=f"{rejected:,}",
        )
    ]
    speed = []
    if status.get("tokens_per_s"):
        speed.append(
            t(
                "data_synth.speed",
                lang,
                tokens=f"{status['tokens_per_s']:,}",
                passages=status["passages_per_s"],
            )
        )
    if state == "running" and status.get("eta_s"):
        speed.append(t("data_synth.eta", lang, eta=duration(status["eta_s"])))
    if speed:
        lines.append(" · ".join(speed))
    if status.get("backend_why"):
        why = t(f"data_synth.why_{status['backend_why']}", lang)
        lines.append(t("data_synth.backend_line", lang, why=why))
    if state == "completed":
        lines.append(
            t("data_synth.wrote", lang, version=status["version"])
            if status.get("version")
            else t("data_synth.none_kept", lang)
        )
    elif state in ("stopped", "failed", "interrupted"):
        lines.append(ending(status, lang))
        lines.append(t("data_synth.resume_hint", lang))
    return "  \n".join(lines)


def ending(status: dict, lang: str) -> str:
    """Why a job ended without completing, in the page's language."""
    from studio.i18n import catalog

    reason = str(status.get("reason") or "")
    if reason.startswith("killed by "):
        return "⚠️ " + t("data_synth.end_signal", lang, signal=reason.removeprefix("killed by "))
    if reason.startswith("exit status "):
        return "⚠️ " + t("data_synth.end_exit", lang, code=reason.removeprefix("exit status "))
    if f"data_synth.end_{reason}" in catalog():
        text = t(f"data_synth.end_{reason}", lang, message=status.get("message") or "")
        return text if reason == "stopped" else "⚠️ " + text
    if f"errors.{reason}" in catalog():  # a StudioError's code, with its parameters
        return "⚠️ " + t(f"errors.{reason}", lang, **(status.get("params") or {}))
    return "⚠️ " + str(status.get("message") or reason)


def _sample(s: dict, lang: str) -> str:
    where = t(
        "data_synth.passage_at", lang, doc=s["doc_id"], start=s["start"], passage=s["passage"]
    )
    turns = "\n".join(html.escape(x) for x in s.get("turns") or [])
    return f'<div class="sy-sample"><div class="sy-where">{html.escape(where)}</div>{turns}</div>'


def render_report(status: dict, report: dict | None, lang: str) -> str:
    """Counts by reason (with what each means), then samples of kept and rejected pairs."""
    if not status.get("passages_done"):
        return ""
    rejected = status.get("rejected") or {}
    kept = status.get("accepted", 0)
    pairs = kept + sum(rejected.values())
    head = (
        f"<tr><th>{html.escape(t('data_synth.report_reason', lang))}</th>"
        f"<th>{html.escape(t('data_synth.report_count', lang))}</th>"
        f"<th>{html.escape(t('data_synth.report_meaning', lang))}</th></tr>"
    )
    rows = [
        f"<tr><td>{html.escape(t('data_synth.report_kept', lang))}</td><td>{kept:,}</td><td></td></tr>"
    ]
    for reason in REASONS:
        if rejected.get(reason):
            rows.append(
                f"<tr><td><code>{reason}</code></td><td>{rejected[reason]:,}</td>"
                f"<td>{html.escape(t(f'data_synth.reason_{reason}', lang))}</td></tr>"
            )
    share = t(
        "data_synth.report_share",
        lang,
        accepted=f"{kept:,}",
        pairs=f"{pairs:,}",
        share=f"{kept / pairs:.0%}" if pairs else "0%",
    )
    parts = [
        CSS,
        f"<p>{html.escape(share)}</p>",
        f'<table class="sy-table">{head}{"".join(rows)}</table>',
    ]
    if report:
        if report.get("accepted_samples"):
            parts.append(f"<h4>{html.escape(t('data_synth.samples_kept', lang))}</h4>")
            parts += [_sample(s, lang) for s in report["accepted_samples"]]
        for reason, samples in (report.get("samples") or {}).items():
            title = t("data_synth.samples_rejected", lang, reason=reason)
            parts.append(f"<h4>{html.escape(title)}</h4>")
            parts += [_sample(s, lang) for s in samples]
    return "".join(parts)


def build_section(data) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    loc.make(gr.Markdown, i18n={"value": "data_synth.intro"})
    with gr.Row(equal_height=True):
        model = loc.make(
            gr.Dropdown,
            i18n={
                "label": "data_synth.model",
                "info": "data_synth.model_info",
                "choices": ctx.model_choices,
            },
            value=None,
            allow_custom_value=True,
            scale=3,
            elem_id="synth-model",
        )
        template = loc.make(
            gr.Dropdown,
            i18n={
                "label": "data_synth.template",
                "info": "data_synth.template_info",
                "choices": template_choices,
            },
            value=DEFAULT_TEMPLATE,
            scale=3,
            elem_id="synth-template",
        )
        persona = loc.make(
            gr.Textbox,
            i18n={"label": "data_synth.persona", "info": "data_synth.persona_info"},
            scale=2,
            elem_id="synth-persona",
        )
        limit = loc.make(
            gr.Number,
            i18n={"label": "data_synth.limit", "info": "data_synth.limit_info"},
            value=100,
            minimum=0,
            precision=0,
            scale=1,
            elem_id="synth-limit",
        )
    ctx.keep_models_current(model)
    with loc.make(gr.Accordion, i18n={"label": "data_synth.edit"}, open=False):
        text = loc.make(
            gr.Code,
            i18n={"label": "data_synth.template_text"},
            value=template_text(DEFAULT_TEMPLATE),
            language="yaml",
            lines=16,
            elem_id="synth-template-text",
        )
    defaults = PassageSettings()
    generation = GenerationSettings()
    with loc.make(gr.Accordion, i18n={"label": "data_synth.advanced"}, open=False):
        with gr.Row():
            unit = loc.make(
                gr.Radio,
                i18n={
                    "label": "data_synth.unit",
                    "choices": lambda lang: [
                        (t("data_synth.unit_chars", lang), "chars"),
                        (t("data_synth.unit_tokens", lang), "tokens"),
                    ],
                },
                value="chars",
                elem_id="synth-unit",
            )
            size = loc.make(
                gr.Number,
                i18n={"label": "data_synth.size"},
                value=defaults.size,
                precision=0,
                elem_id="synth-size",
            )
            overlap = loc.make(
                gr.Number,
                i18n={"label": "data_synth.overlap"},
                value=defaults.overlap,
                precision=0,
                elem_id="synth-overlap",
            )
            batch = loc.make(
                gr.Number,
                i18n={"label": "data_synth.batch"},
                value=8,
                precision=0,
                elem_id="synth-batch",
            )
            new_tokens = loc.make(
                gr.Number,
                i18n={"label": "data_synth.max_new_tokens"},
                value=256,
                precision=0,
                elem_id="synth-max-new-tokens",
            )
        with gr.Row():
            backend = loc.make(
                gr.Radio,
                i18n={"label": "data_synth.backend", "info": "data_synth.backend_info"},
                choices=list(BACKENDS),
                value="auto",
                elem_id="synth-backend",
            )
            output = loc.make(
                gr.Radio,
                i18n={"label": "data_synth.output"},
                choices=list(OUTPUTS),
                value="messages",
                elem_id="synth-output",
            )
            name = loc.make(
                gr.Textbox,
                i18n={"label": "data_synth.name", "info": "data_synth.name_info"},
                elem_id="synth-name",
            )
    with gr.Row(equal_height=True):
        start_btn = loc.make(
            gr.Button, i18n={"value": "data_synth.start"}, variant="primary", elem_id="synth-start"
        )
        stop_btn = loc.make(gr.Button, i18n={"value": "data_synth.stop"}, elem_id="synth-stop")
        resume_btn = loc.make(
            gr.Button, i18n={"value": "data_synth.resume"}, elem_id="synth-resume"
        )
        jobs = job_choices(ws)
        job = loc.make(
            gr.Dropdown,
            i18n={"label": "data_synth.job", "info": "data_synth.job_info"},
            choices=jobs,
            value=jobs[0] if jobs else None,
            allow_custom_value=True,
            scale=2,
            elem_id="synth-job",
        )
    keep = lambda: gr.update(choices=job_choices(ws))  # noqa: E731
    job.focus(keep, outputs=job, api_visibility="private", show_progress="hidden")
    status = gr.Markdown(elem_id="synth-status")
    report = gr.HTML(elem_id="synth-report")
    timer = gr.Timer(REFRESH_S)
    watching = gr.State(None)  # the job this page saw running

    template.change(
        lambda n: template_text(n) if n else gr.update(),
        inputs=template,
        outputs=text,
        api_visibility="private",
    )

    def start(
        spec, mdl, yaml_text, who, most, cut, n, over, per_batch, tokens, bk, form, out, lang
    ):
        try:
            ctx.resolve(mdl or "")  # a model name from the browser, confined when exposed
            if not spec:
                return gr.update(), refusal(t("data_synth.no_version", lang), lang)
            settings = SynthSettings(
                source=spec,
                model=mdl or "",
                template=parse_template(yaml_text or "", "template").to_dict(),
                persona=who or "",
                passages=PassageSettings(unit=cut, size=int(n or 0), overlap=int(over or 0)),
                limit=int(most) if most else None,
                generation=GenerationSettings(
                    max_new_tokens=int(tokens or 0),
                    temperature=generation.temperature,
                    top_p=0.9,
                ),
                batch_size=int(per_batch or 0),
                backend=bk,
                output=form,
                name=out or "",
            )
            created = new_job(ws, settings)
            spawn_job(created, ws)
        except (StudioError, OSError) as exc:
            return gr.update(), refusal(exc, lang)
        return (
            gr.update(choices=job_choices(ws), value=created.id),
            t("data_synth.started", lang, job=created.id),
        )

    start_btn.click(
        start,
        inputs=[
            data.version,
            model,
            text,
            persona,
            limit,
            unit,
            size,
            overlap,
            batch,
            new_tokens,
            backend,
            output,
            name,
            ctx.lang,
        ],  # fmt: skip
        outputs=[job, status],
        api_name=API_START,
    )

    def stop(job_id, lang):
        if not job_id:
            return refusal(t("data_synth.no_job", lang), lang)
        try:
            said = stop_process(open_job(ws, job_id))
        except StudioError as exc:
            return refusal(exc, lang)
        key = {"stopping": "stopping", "killed": "killed"}.get(said, "not_running")
        return t(f"data_synth.{key}", lang, job=job_id)

    stop_btn.click(stop, inputs=[job, ctx.lang], outputs=status, api_name=API_STOP)

    def resume(job_id, lang):
        if not job_id:
            return refusal(t("data_synth.no_job", lang), lang)
        try:
            found = open_job(ws, job_id)
            spawn_job(found, ws, resume=True)
        except (StudioError, OSError) as exc:
            return refusal(exc, lang)
        return t("data_synth.started", lang, job=job_id)

    resume_btn.click(resume, inputs=[job, ctx.lang], outputs=status, api_name=API_RESUME)

    def view(job_id, lang):
        """(status line, report) of a job."""
        if not job_id:
            return "", ""
        try:
            found = open_job(ws, job_id)
        except StudioError as exc:
            return refusal(exc, lang), ""
        current = progress_of(found)
        return status_line(found.id, current, lang), render_report(current, found.report(), lang)

    job.change(view, inputs=[job, ctx.lang], outputs=[status, report], api_name=API_STATUS)

    def tick(job_id, watching, lang):
        """While the chosen job runs: its progress. When a job this page watched running
        has ended: its last word, and its new version for the Data tab's picker (once)."""
        nothing = gr.update(), gr.update(), gr.update(), watching
        if not job_id:
            return nothing
        try:
            current = open_job(ws, job_id).status()
        except StudioError:
            return nothing
        if current["state"] in ACTIVE:
            return *view(job_id, lang), gr.update(), job_id
        if watching != job_id:
            return nothing
        written = current.get("version")
        return *view(job_id, lang), written or gr.update(), None

    timer.tick(
        tick,
        inputs=[job, watching, ctx.lang],
        outputs=[status, report, data.created, watching],
        api_visibility="private",
        show_progress="hidden",
    )
    ctx.on_language.append((view, [job, ctx.lang], [status, report]))
