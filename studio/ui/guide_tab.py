"""Start tab: the guided first run (studio/guide.py), one accordion per step.

Each step has one button that does it with the demo's settings, a Skip button and a button
that opens the step's own tab. The step just done and the next one stay open; the strip at
the top shows every step's state, read from the workspace, so work done in the other tabs
counts here too.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass

import gradio as gr

from studio import guide
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import chat_tab, compare_tab, eval_tab, export_tab, train_tab
from studio.ui.errors import error_text

log = logging.getLogger(__name__)
FINAL_STATES = {"completed", "failed", "stopped", "interrupted"}


def title(step: str, lang: str) -> str:
    return t(f"guide.step_{step}", lang)


def render_progress(states: dict[str, str], upcoming: str | None, lang: str) -> str:
    """The strip of steps with their states, and what comes next."""
    icons = {guide.DONE: "✓", guide.SKIPPED: "↷", guide.RUNNING: "▶", guide.TODO: "○"}
    items = "".join(
        f'<li class="guide-step guide-{states[s]}" data-step="{s}" data-state="{states[s]}">'
        f"<span>{icons[states[s]]}</span> {n}. {html.escape(title(s, lang))}</li>"
        for n, s in enumerate(guide.STEPS, 1)
    )
    note = (
        t("guide.next_is", lang, n=guide.STEPS.index(upcoming) + 1, title=title(upcoming, lang))
        if upcoming
        else t("guide.all_done", lang)
    )
    return f'<ol class="guide-steps">{items}</ol><p class="guide-next">{html.escape(note)}</p>'


def accordion_updates(states: dict[str, str], upcoming: str | None, lang: str,
                      keep_open: tuple[str, ...] = ()) -> list:  # fmt: skip
    """Each step's label with its state; the next step is opened (and `keep_open` stays
    open), the others are left as the user set them."""
    updates = []
    for n, step in enumerate(guide.STEPS, 1):
        label = f"{n}. {title(step, lang)} · {t('guide.state_' + states[step], lang)}"
        opened = step == upcoming or step in keep_open
        updates.append(gr.update(label=label, open=True) if opened else gr.update(label=label))
    return updates


def overview(ws, lang: str, *, keep_open: tuple[str, ...] = ()) -> list:
    """The progress strip and every accordion's update, from one reading of the states."""
    states = guide.states(ws)
    upcoming = guide.first_open(states)
    return [
        render_progress(states, upcoming, lang),
        *accordion_updates(states, upcoming, lang, keep_open),
    ]


def _inline(text: str) -> str:
    """The locale strings' **bold** and `code`, as HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="guide-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# --- what each step shows -------------------------------------------------------------


def show_sample(ws, lang: str) -> str:
    s = guide.look_at_sample(ws)
    examples = "".join(f"<li>{html.escape(text)}</li>" for text in s.examples)
    summary = t("guide.sample_summary", lang, version=s.version, rows=f"{s.rows:,}",
                chars=s.mean_chars)  # fmt: skip
    return f"<p>{_inline(summary)}</p><ol class='guide-examples'>{examples}</ol>"


def show_clean(ws, lang: str) -> str:
    report = guide.clean_sample(ws).report
    summary = t(
        "guide.clean_summary",
        lang,
        version=report["version"],
        rows_in=f"{report['rows_in']:,}",
        rows_out=f"{report['rows_out']:,}",
        removed=f"{report['removed']:,}",
        seconds=report["seconds"],
    )
    top = sorted((s for s in report["steps"] if s.get("removed")), key=lambda s: -s["removed"])
    rows = [[s["step"], f"{s['removed']:,}"] for s in top[:6]]
    headers = [t("data_clean.col_step", lang), t("data_clean.col_removed", lang)]
    return f"<p>{_inline(summary)}</p><p>{html.escape(t('guide.clean_top', lang))}</p>" + _table(
        headers, rows
    )


def show_inspect(ws, lang: str) -> str:
    checked = guide.inspect_demo(ws)
    return train_tab.render_check(checked, lang) + train_tab.render_estimate(checked.estimate, lang)


def show_compare(ws, ctx, lang: str) -> str:
    return compare_tab.render_grid(guide.compare_demo(ws, ctx.use), lang)


def show_chat(ws, ctx, lang: str, message: str) -> str:
    model, result = guide.chat_demo(ws, ctx.use, message or guide.CHAT_MESSAGE)
    text = result.text if result else ""
    return (
        f"<p><b>{html.escape(t('guide.chat_reply', lang, model=model))}</b></p>"
        f'<div class="guide-reply">{html.escape(text)}</div>'
        + chat_tab.render_warnings(result, model, lang)
    )


def show_evaluate(ws, ctx, lang: str) -> str:
    session = guide.evaluate_demo(ws, ctx.use)
    frame = eval_tab.results_table(session, lang)
    return (
        _table(list(frame.columns), frame.values.tolist())
        + f"<p>{_inline(eval_tab.noise_notes(session, lang))}</p>"
        + f"<p>{_inline(t('guide.eval_summary', lang, session=session['id']))}</p>"
    )


def show_export(ws, lang: str) -> str:
    return f"<p>{_inline(export_tab.exported_text(guide.export_demo(ws), lang))}</p>"


@dataclass
class Section:
    accordion: gr.Accordion
    run: gr.Button
    skip: gr.Button
    open: gr.Button
    result: gr.HTML


def build(ctx, loc) -> None:
    ws = ctx.workspace
    lang0 = loc.lang
    sections: dict[str, Section] = {}
    with loc.make(gr.Tab, i18n={"label": "guide.tab"}, id="guide", elem_id="guide-tab"):
        loc.make(gr.Markdown, i18n={"value": "guide.intro"})
        strip, *opened = overview(ws, lang0)
        progress = gr.HTML(strip, elem_id="guide-progress")
        message = None
        for step, first in zip(guide.STEPS, opened, strict=True):
            with gr.Accordion(
                first["label"], open=bool(first.get("open")), elem_id=f"guide-{step}"
            ) as accordion:
                loc.make(gr.Markdown, i18n={"value": f"guide.about_{step}"})
                if step == "chat":
                    message = loc.make(
                        gr.Textbox,
                        i18n={"label": "guide.chat_message"},
                        value=guide.CHAT_MESSAGE,
                        lines=1,
                        elem_id="guide-chat-message",
                    )
                with gr.Row():
                    run = loc.make(gr.Button, i18n={"value": "guide.run"}, variant="primary",
                                   size="sm", scale=0, min_width=160, elem_id=f"guide-{step}-run")  # fmt: skip
                    skip = loc.make(gr.Button, i18n={"value": "guide.skip"}, size="sm", scale=0, min_width=100,
                                    elem_id=f"guide-{step}-skip")  # fmt: skip
                    jump = loc.make(gr.Button, i18n={"value": "guide.open"}, size="sm", scale=0, min_width=140,
                                    elem_id=f"guide-{step}-open")  # fmt: skip
                result = gr.HTML(elem_id=f"guide-{step}-result")
            sections[step] = Section(accordion, run, skip, jump, result)
        timer = gr.Timer(2.0, active=False)

    accordions = [sections[s].accordion for s in guide.STEPS]

    def failed(exc: Exception, lang: str) -> str:
        log.warning("guide step failed: %s", exc, exc_info=True)
        return f'<div class="diag diag-error">{_inline(t("guide.failed", lang, error=error_text(exc, lang)))}</div>'

    work = {
        "sample": lambda lang: show_sample(ws, lang),
        "clean": lambda lang: show_clean(ws, lang),
        "inspect": lambda lang: show_inspect(ws, lang),
        "compare": lambda lang: show_compare(ws, ctx, lang),
        "chat": lambda lang, text: show_chat(ws, ctx, lang, text),
        "evaluate": lambda lang: show_evaluate(ws, ctx, lang),
        "export": lambda lang: show_export(ws, lang),
    }

    def doer(step: str):
        def do(*args):
            *extra, lang = args
            try:
                shown = work[step](lang, *extra)
            except (StudioError, OSError) as exc:  # the user sees why, never a traceback
                shown = failed(exc, lang)
            return shown, *overview(ws, lang, keep_open=(step,))

        return do

    for step in work:
        sections[step].run.click(
            doer(step),
            inputs=[message, ctx.lang] if step == "chat" else ctx.lang,
            outputs=[sections[step].result, progress, *accordions],
            api_name=f"guide_{step}",
        )

    # Training runs in its own process: the button starts it, the timer follows it.
    def do_train(lang):
        try:
            run = guide.train_demo(ws)
        except (StudioError, OSError) as exc:
            return (failed(exc, lang), *overview(ws, lang, keep_open=("train",)),
                    gr.Timer(active=False))  # fmt: skip
        return (train_tab.render_status(run, lang), *overview(ws, lang, keep_open=("train",)),
                gr.Timer(active=True))  # fmt: skip

    def follow(lang):
        run = guide.guide_run(ws)
        if run is None:
            return (
                gr.update(),
                gr.update(),
                *[gr.update()] * len(accordions),
                gr.Timer(active=False),
            )
        shown = train_tab.render_status(run, lang)
        state = run.state
        if state not in FINAL_STATES:
            return shown, gr.update(), *[gr.update()] * len(accordions), gr.Timer(active=True)
        if guide.training_finished(ws, run) != "completed":
            shown += f"<p>{html.escape(t('guide.train_ended', lang, state=state))}</p>"
        return shown, *overview(ws, lang, keep_open=("train",)), gr.Timer(active=False)

    train_outputs = [sections["train"].result, progress, *accordions, timer]
    sections["train"].run.click(do_train, inputs=ctx.lang, outputs=train_outputs,
                                api_name="guide_train")  # fmt: skip
    timer.tick(follow, inputs=ctx.lang, outputs=train_outputs, api_visibility="private")

    for step in guide.STEPS:

        def do_skip(lang, step=step):
            guide.mark(ws, step, guide.SKIPPED)
            return f"<p>{html.escape(t('guide.skipped_note', lang))}</p>", *overview(ws, lang)

        sections[step].skip.click(
            do_skip,
            inputs=ctx.lang,
            outputs=[sections[step].result, progress, *accordions],
            api_visibility="private",
        )
        if ctx.tabs is not None:
            sections[step].open.click(
                lambda tab=guide.TAB_OF[step]: gr.Tabs(selected=tab),
                outputs=ctx.tabs,
                api_visibility="private",
            )

    def refresh(lang):
        """On page load and language change: states may have moved in other tabs; a demo run
        still training is followed again."""
        run = guide.guide_run(ws)
        live = run is not None and run.state in {"queued", "running"}
        return *overview(ws, lang), gr.Timer(active=live)

    refresh_outputs = [progress, *accordions, timer]
    ctx.on_ready.append((refresh, [ctx.lang], refresh_outputs))
    ctx.on_language.append((refresh, [ctx.lang], refresh_outputs))
