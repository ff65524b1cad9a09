"""The Model tab: choose the base model, see what matters before training, generate."""

from __future__ import annotations

import html

import gradio as gr

from studio.errors import StudioError
from studio.generate import GenerationSettings, generate
from studio.i18n import t
from studio.models import hub
from studio.models.info import describe
from studio.models.load import ModelLoadError
from studio.paths import EMBEDDED_MODEL_NAME
from studio.ui.errors import ShownError, error_text
from studio.ui.progress import CANCELS, Background, pull_line
from studio.ui.sampling import sampling_controls, settings_from

API_LOAD = "load_model"
API_GENERATE = "generate"
API_PULL_LIST = "model_pull_list"
API_PULL = "model_pull"


def _yes(value: bool, lang: str) -> str:
    return t("model.answer_yes" if value else "model.answer_no", lang)


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", "\\n")


def render_overview(info: dict, lang: str) -> str:
    def row(key, value):
        return f"| {t('model.' + key, lang)} | {value} |"

    gen_eos = ", ".join(f"`{_md_cell(e['token'])}` ({e['id']})" for e in info["generation_eos_ids"])
    disk = f"{info['disk_bytes'] / 2**20:.1f} MiB" if info["disk_bytes"] else "—"
    rows = [
        f"| {t('model.field', lang)} | {t('model.value', lang)} |",
        "|---|---|",
        row("architecture", f"{info['architecture']} (`{info['model_type']}`)"),
        row("parameters", f"{info['parameters']:,} ({info['parameters'] / 1e6:.2f} M)"),
        row(
            "shape",
            f"{info['layers']} × {info['hidden_size']} "
            f"({info['attention_heads']} / {info['kv_heads']})",
        ),
        row("vocab", f"{info['vocab_size']:,}"),
        row("context", f"{info['context_length']:,}" if info["context_length"] else "—"),
        row("precision", f"{info['dtype']}, {info['device']}"),
        row("disk", disk),
        row("tied", _yes(info["tied_embeddings"], lang)),
        row("adds_bos", _yes(info["adds_bos"], lang)),
        row("adds_eos", _yes(info["adds_eos"], lang)),
        row("gen_eos", gen_eos or "—"),
    ]
    return "\n".join(rows)


def render_special_tokens(info: dict, lang: str) -> str:
    rows = [
        f"| {t('model.col_role', lang)} | {t('model.col_token', lang)} | {t('model.col_id', lang)} |",
        "|---|---|---|",
    ]
    for e in info["special_tokens"]:
        token = f"`{_md_cell(e['token'])}`" if e["token"] is not None else "—"
        rows.append(f"| {e['role']} | {token} | {e['id'] if e['id'] is not None else '—'} |")
    return "\n".join(rows)


def render_notes(info: dict, lang: str) -> str:
    if not info["notes"]:
        return t("model.notes_none", lang)
    return "\n\n".join(t(f"model.note_{n['code']}", lang, **n["params"]) for n in info["notes"])


def render_template_stats(info: dict, lang: str) -> str:
    chat = info["chat_template"]
    if chat is None:
        return t("model.note_no_chat_template", lang)
    stats = t(
        "model.chat_template_stats",
        lang,
        tokens=chat["num_tokens"],
        markers=_yes(chat["has_generation_markers"], lang),
    )
    family = info.get("family")
    if not family:
        return stats
    ends = ", ".join(f"`{e['token']}` ({e['id']})" for e in family["end_tokens"]) or "—"
    line = t(
        "model.family",
        lang,
        family=family["family"],
        ends=ends,
        spans=t(f"inspect.spans_{family['spans']}", lang),
    )
    return f"{stats}  \n{line}"


def render_loaded(info: dict, lang: str) -> str:
    return t(
        "model.loaded",
        lang,
        name=info["name"],
        seconds=info["load_seconds"],
        device=info["device"],
        dtype=info["dtype"],
    )


def render_generation(result, lang: str) -> str:
    stats = t(
        "model.stats",
        lang,
        new_tokens=result.new_tokens,
        seconds=result.seconds,
        tps=f"{result.tokens_per_second:.1f}",
        prompt_tokens=result.prompt_tokens,
    )
    if result.stop_reason == "eos":
        stop = t("model.stop_eos", lang, token=f"`{result.stop_token}`")
    else:
        stop = t("model.stop_length", lang)
    return f"{stats}  \n{stop}"


def build(ctx, loc) -> None:
    """Lay out the tab inside the caller's `gr.Tabs` and wire its events."""
    defaults = GenerationSettings()

    with loc.make(gr.Tab, i18n={"label": "model.tab"}, id="model"):
        loc.make(gr.Markdown, i18n={"value": "model.intro"})
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                source = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "model.source",
                        "info": "model.source_info",
                        "choices": ctx.model_choices,
                    },
                    value=EMBEDDED_MODEL_NAME,
                    allow_custom_value=True,
                    filterable=True,
                    elem_id="model-source",
                )
                trust = loc.make(
                    gr.Checkbox,
                    i18n={
                        "label": "model.trust_remote_code",
                        "info": "model.trust_remote_code_info",
                    },
                    value=False,
                    elem_id="trust-remote-code",
                )
                load_btn = loc.make(
                    gr.Button,
                    i18n={"value": "model.load"},
                    variant="primary",
                    elem_id="load-model",
                )
                # Rendered by show() from the loaded model's facts, in the current language.
                status = gr.Markdown(t("model.not_loaded", loc.lang), elem_id="model-status")
                with loc.make(gr.Accordion, i18n={"label": "model.pull"}, open=False):
                    loc.make(gr.Markdown, i18n={"value": "model.pull_intro"})
                    with gr.Row():
                        repo = loc.make(
                            gr.Textbox,
                            i18n={"label": "model.pull_repo"},
                            placeholder="Qwen/Qwen2.5-0.5B-Instruct",
                            elem_id="pull-repo",
                            scale=3,
                        )
                        revision = loc.make(
                            gr.Textbox,
                            i18n={"label": "model.pull_revision"},
                            placeholder="main",
                            elem_id="pull-revision",
                            scale=1,
                        )
                    allow_pickle = loc.make(
                        gr.Checkbox,
                        i18n={"label": "model.pull_allow_pickle"},
                        value=False,
                        elem_id="pull-allow-pickle",
                    )
                    with gr.Row():
                        list_btn = loc.make(
                            gr.Button, i18n={"value": "model.pull_list"}, elem_id="pull-list"
                        )
                        pull_btn = loc.make(
                            gr.Button,
                            i18n={"value": "model.pull_start"},
                            variant="primary",
                            elem_id="pull-start",
                        )
                        stop_pull_btn = loc.make(
                            gr.Button, i18n={"value": "model.pull_stop"}, elem_id="pull-stop"
                        )
                    pull_status = gr.Markdown(elem_id="pull-status")
            with gr.Column(scale=4, min_width=360):
                loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('model.notes', lang)}"})
                notes = gr.Markdown(elem_id="model-notes")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                loc.make(
                    gr.Markdown, i18n={"value": lambda lang: f"### {t('model.overview', lang)}"}
                )
                overview = gr.Markdown(elem_id="model-overview")
                loc.make(
                    gr.Markdown,
                    i18n={"value": lambda lang: f"### {t('model.special_tokens', lang)}"},
                )
                tokens = gr.Markdown(elem_id="model-special-tokens")
            with gr.Column(scale=4, min_width=360):
                template = loc.make(
                    gr.Textbox,
                    i18n={"label": "model.chat_template"},
                    lines=9,
                    max_lines=18,
                    interactive=False,
                    buttons=["copy"],
                    elem_id="chat-template",
                )
                template_stats = gr.Markdown(elem_id="chat-template-stats")

        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('model.generate', lang)}"})
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                prompt = loc.make(
                    gr.Textbox,
                    i18n={"label": "model.prompt", "placeholder": "model.prompt_placeholder"},
                    value="富士山は",
                    lines=3,
                    elem_id="prompt",
                )
                chat = loc.make(
                    gr.Checkbox, i18n={"label": "model.chat_mode"}, value=False, elem_id="chat"
                )
                system = loc.make(
                    gr.Textbox,
                    i18n={"label": "model.system_prompt"},
                    value="",
                    lines=2,
                    visible=False,
                    elem_id="system-prompt",
                )
                with loc.make(gr.Accordion, i18n={"label": "model.sampling"}, open=False):
                    max_new = loc.make(
                        gr.Slider,
                        i18n={"label": "model.max_new_tokens"},
                        minimum=1,
                        maximum=512,
                        step=1,
                        value=defaults.max_new_tokens,
                    )
                    controls = sampling_controls(loc, defaults)
                    greedy = loc.make(
                        gr.Checkbox, i18n={"label": "model.greedy"}, value=defaults.greedy
                    )
                gen_btn = loc.make(
                    gr.Button,
                    i18n={"value": "model.run_generate"},
                    variant="primary",
                    elem_id="generate",
                )
            with gr.Column(scale=4, min_width=360):
                output = loc.make(
                    gr.Textbox,
                    i18n={"label": "model.output"},
                    lines=8,
                    interactive=False,
                    buttons=["copy"],
                    elem_id="generated",
                )
                gen_stats = gr.Markdown(elem_id="generation-stats")
        # Inside the tab: a State placed directly in gr.Tabs confuses Gradio's tab list
        # (the next tab's button appears twice).
        info_state = gr.State(None)

    info_outputs = [status, overview, tokens, template, template_stats, notes]

    def show(info, lang):
        if info is None:
            return [t("model.not_loaded", lang), "", "", "", "", ""]
        chat_text = info["chat_template"]["text"] if info["chat_template"] else ""
        return [
            render_loaded(info, lang),
            render_overview(info, lang),
            render_special_tokens(info, lang),
            chat_text,
            render_template_stats(info, lang),
            render_notes(info, lang),
        ]

    def load_model(model: str, trust_remote_code: bool, lang: str):
        try:
            loaded = ctx.load(model, trust_remote_code=trust_remote_code)
        except ModelLoadError as exc:
            raise ShownError(t("model.load_failed", lang, error=error_text(exc, lang))) from None
        info = describe(loaded)
        return [info, *show(info, lang)]

    def run_generate(
        model: str,
        trust_remote_code: bool,
        prompt: str,
        chat: bool,
        system: str,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        repetition_penalty: float,
        seed: int,
        greedy: bool,
        lang: str,
    ):
        try:
            settings = settings_from(
                max_new_tokens, greedy, temperature, top_p, repetition_penalty, seed
            )
            with ctx.use(model, trust_remote_code=trust_remote_code) as loaded:
                result = generate(loaded, prompt, settings, chat=chat, system=system or None)
        except StudioError as exc:
            raise ShownError(
                t("model.generate_failed", lang, error=error_text(exc, lang))
            ) from None
        return result.text, render_generation(result, lang)

    def files_table(found, lang) -> str:
        head = t("model.pull_listing", lang, repo=found.repo, revision=found.revision[:12],
                 size=f"{found.total_bytes / 2**20:,.1f}")  # fmt: skip
        rows = [
            f"| `{html.escape(f.name)}` | {f.size / 2**20:,.1f} MiB | "
            + (t("model.pull_fetched", lang) if f.fetch else t("model.pull_skipped", lang))
            + " |"
            for f in found.files
        ]
        return "\n".join([head, "", "| | | |", "|---|---|---|", *rows])

    def list_files(repo_id, rev, pickle_ok, lang):
        found = hub.listing(repo_id, (rev or "").strip() or None, allow_pickle=pickle_ok)
        return files_table(found, lang)

    def pull_model(request: gr.Request, repo_id, rev, pickle_ok, lang):
        found = hub.listing(repo_id, (rev or "").strip() or None, allow_pickle=pickle_ok)
        table = files_table(found, lang)
        task = Background(
            lambda progress, cancel: hub.pull(found, progress=progress, cancel=cancel),
            request,
            "pull",
        )
        for progress in task.updates():
            yield f"{table}\n\n{html.escape(pull_line(progress, lang))}", gr.skip()
        try:
            task.result()
        except hub.PullStopped:
            yield f"{table}\n\n{t('model.pull_stopped', lang, repo=found.repo)}", gr.skip()
            return
        yield (
            f"{table}\n\n{t('model.pull_done', lang, repo=found.repo)}",
            gr.update(choices=ctx.model_choices(lang), value=found.repo),
        )

    def stop_pull(request: gr.Request) -> None:
        CANCELS.cancel(request, "pull")

    list_btn.click(
        list_files,
        inputs=[repo, revision, allow_pickle, ctx.lang],
        outputs=pull_status,
        api_name=API_PULL_LIST,
    )
    pull_btn.click(
        pull_model,
        inputs=[repo, revision, allow_pickle, ctx.lang],
        outputs=[pull_status, source],
        api_name=API_PULL,
    )
    stop_pull_btn.click(stop_pull, api_visibility="private", queue=False)

    load_btn.click(
        load_model,
        inputs=[source, trust, ctx.lang],
        outputs=[info_state, *info_outputs],
        api_name=API_LOAD,
    )
    gen_inputs = [
        source,
        trust,
        prompt,
        chat,
        system,
        max_new,
        *controls.inputs(),
        greedy,
        ctx.lang,
    ]
    gen_btn.click(
        run_generate, inputs=gen_inputs, outputs=[output, gen_stats], api_name=API_GENERATE
    )
    prompt.submit(
        run_generate, inputs=gen_inputs, outputs=[output, gen_stats], api_visibility="private"
    )
    chat.change(
        lambda on: gr.update(visible=on), inputs=chat, outputs=system, api_visibility="private"
    )
    ctx.on_language.append((show, [info_state, ctx.lang], info_outputs))
    ctx.on_ready.append((load_model, [source, trust, ctx.lang], [info_state, *info_outputs]))
    ctx.keep_models_current(source)
