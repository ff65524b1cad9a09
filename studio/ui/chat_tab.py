"""The Chat tab: talk to a model or checkpoint with a saved persona, streamed, stopping on
every end-of-turn id; a compare mode sends each message to a second model too. A reply
that runs into the limit without EOS, or types an end marker as text, is flagged with a
way to the label inspector. Conversations export as `messages` JSONL or become a dataset."""

from __future__ import annotations

import html
import json

import gradio as gr

from studio.chat import (
    ChatError,
    conversation_row,
    delete_persona,
    export_jsonl,
    personas,
    preference_pair,
    reply,
    save_as_dataset,
    save_persona,
)
from studio.compare import default_models
from studio.data.preference import save_pairs
from studio.data.store import DataError
from studio.errors import StudioError
from studio.generate import GenerationResult, GenerationSettings
from studio.i18n import t
from studio.safety import UnsafeInputError, safe_name
from studio.ui.errors import ShownError, error_text
from studio.ui.sampling import sampling_controls, settings_from

API_CHAT = "chat"
# Which of two models' replies to the same message is better (named, for scripts).
API_MARK = {"1": "chat_mark_1", "2": "chat_mark_2", "=": "chat_mark_tie"}
API_SAVE_PAIRS = "chat_save_preference"
DEFAULT_PAIRS_NAME = "chat-preferences"


def pairs_line(pairs: dict | None, lang: str, last: dict | None = None) -> str:
    """What was chosen last, and how many pairs (and ties) this session holds."""
    found = list((pairs or {}).values())
    ties = sum(bool(p.get("tie")) for p in found)
    line = t("chat.pref_count", lang, pairs=len(found) - ties, ties=ties)
    if last is None:
        return line
    said = (
        t("chat.pref_chose_tie", lang)
        if last.get("tie")
        else t("chat.pref_chose", lang, model=last["chosen_model"])
    )
    return f"{said} {line}"


def render_warnings(result: GenerationResult | None, model: str, lang: str) -> str:
    if result is None:
        return ""
    lines = [html.escape(t(f"chat.warn_{code}", lang, model=model)) for code in result.warnings]
    figures = html.escape(
        t(
            "chat.figures",
            lang,
            tokens=result.new_tokens,
            seconds=f"{result.seconds:.2f}",
            first=f"{result.first_token_seconds or 0:.2f}",
            stop=result.stop_token or t("chat.no_stop", lang),
        )
    )
    if not lines:
        return f'<div class="chat-ok">{figures}</div>'
    warn = "".join(f'<div class="diag diag-warning">⚠ {line}</div>' for line in lines)
    return f"{warn}<div>{figures}</div>"


def build(ctx, loc) -> None:
    ws = ctx.workspace
    first_personas = personas(ws)
    models_default = default_models(ws)
    with loc.make(gr.Tab, i18n={"label": "chat.tab"}, id="chat"):
        loc.make(gr.Markdown, i18n={"value": "chat.intro"})
        with gr.Row():
            model_a = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "chat.model",
                    "choices": lambda lang: ctx.model_choices(lang, checkpoints=True, gguf=True),
                },
                value=models_default[-1],
                allow_custom_value=True,
                scale=3,
                elem_id="chat-model",
            )
            model_b = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "chat.compare_with",
                    "info": "chat.compare_with_info",
                    "choices": lambda lang: ctx.model_choices(lang, checkpoints=True, gguf=True),
                },
                value=None,
                allow_custom_value=True,
                scale=3,
                elem_id="chat-model-b",
            )
        with gr.Row():
            persona = loc.make(
                gr.Dropdown,
                i18n={"label": "chat.persona"},
                choices=list(first_personas),
                value=next(iter(first_personas)),
                allow_custom_value=True,
                scale=2,
                elem_id="chat-persona",
            )
            system = loc.make(
                gr.Textbox,
                i18n={"label": "chat.system"},
                value=next(iter(first_personas.values())),
                lines=2,
                scale=5,
                elem_id="chat-system",
            )
        with loc.make(gr.Accordion, i18n={"label": "chat.personas"}, open=False), gr.Row():
            persona_name = loc.make(
                gr.Textbox, i18n={"label": "chat.persona_name"}, scale=3, elem_id="chat-pname"
            )
            save_p = loc.make(gr.Button, i18n={"value": "chat.save_persona"}, scale=1)
            delete_p = loc.make(gr.Button, i18n={"value": "chat.delete_persona"}, scale=1)
        with loc.make(gr.Accordion, i18n={"label": "chat.sampling"}, open=False):
            with gr.Row():
                max_new = loc.make(
                    gr.Number,
                    i18n={"label": "chat.max_new_tokens"},
                    value=160,
                    minimum=1,
                    maximum=8192,
                    precision=0,
                    elem_id="chat-max-new",
                )
                greedy = loc.make(
                    gr.Checkbox, i18n={"label": "chat.greedy"}, value=False, elem_id="chat-greedy"
                )
            chat_defaults = GenerationSettings(temperature=0.7, top_p=0.9, repetition_penalty=1.1)
            controls = sampling_controls(loc, chat_defaults, top_k=True)
        with gr.Row():
            with gr.Column():
                chat_a = gr.Chatbot(
                    label=models_default[-1],
                    height=420,
                    elem_id="chat-a",
                    group_consecutive_messages=False,
                )
                warn_a = gr.HTML(elem_id="chat-warn-a")
            with gr.Column(visible=False) as col_b:
                chat_b = gr.Chatbot(
                    label="", height=420, elem_id="chat-b", group_consecutive_messages=False
                )
                warn_b = gr.HTML(elem_id="chat-warn-b")
        with gr.Row():
            message = loc.make(
                gr.Textbox,
                i18n={"placeholder": "chat.placeholder", "label": "chat.message"},
                show_label=False,
                lines=2,
                scale=6,
                elem_id="chat-message",
            )
            send = loc.make(
                gr.Button,
                i18n={"value": "chat.send"},
                variant="primary",
                scale=1,
                elem_id="chat-send",
            )
            stop = loc.make(gr.Button, i18n={"value": "chat.stop"}, scale=1, elem_id="chat-stop")
        with gr.Row():
            clear = loc.make(gr.Button, i18n={"value": "chat.clear"}, elem_id="chat-clear")
            inspect_btn = loc.make(
                gr.Button,
                i18n={"value": "chat.open_inspector"},
                visible=False,
                elem_id="chat-inspect",
            )
            export_btn = loc.make(gr.Button, i18n={"value": "chat.export"}, elem_id="chat-export")
            dataset_name = loc.make(
                gr.Textbox,
                i18n={"label": "chat.dataset_name"},
                value="chats",
                scale=1,
                elem_id="chat-dataset-name",
            )
            save_ds = loc.make(
                gr.Button, i18n={"value": "chat.save_dataset"}, elem_id="chat-save-ds"
            )
        with gr.Row(visible=False, equal_height=True, elem_id="chat-pref") as pref_row:
            loc.make(gr.Markdown, i18n={"value": "chat.pref_question"}, elem_id="chat-pref-q")
            better_1 = loc.make(gr.Button, i18n={"value": "chat.pref_1"}, elem_id="chat-pref-1")
            better_2 = loc.make(gr.Button, i18n={"value": "chat.pref_2"}, elem_id="chat-pref-2")
            tie_btn = loc.make(gr.Button, i18n={"value": "chat.pref_tie"}, elem_id="chat-pref-tie")
            pairs_name = loc.make(
                gr.Textbox,
                i18n={"label": "chat.pref_name"},
                value=DEFAULT_PAIRS_NAME,
                elem_id="chat-pref-name",
            )
            save_pairs_btn = loc.make(
                gr.Button, i18n={"value": "chat.pref_save"}, elem_id="chat-pref-save"
            )
        pref_status = gr.Markdown(elem_id="chat-pref-status")
        chat_pairs = gr.State(None)  # this session's pairs: {turn key: row}
        with gr.Row():
            export_file = loc.make(
                gr.File,
                i18n={"label": "chat.export_file"},
                interactive=False,
                visible=False,
                elem_id="chat-file",
            )
            chat_status = gr.Markdown(elem_id="chat-status")

    # --- personas ---------------------------------------------------------------------
    def pick_persona(name):
        found = personas(ws)
        return gr.update(value=found[name]) if name in found else gr.update()

    def do_save_persona(name, text, lang):
        try:
            found = save_persona(ws, name, text)
        except ChatError as exc:
            raise ShownError(error_text(exc, lang)) from None
        clean = " ".join(name.split())
        gr.Info(t("chat.persona_saved", lang, name=clean))
        return gr.update(choices=list(found), value=clean)

    def do_delete_persona(name, lang):
        try:
            found = delete_persona(ws, name)
        except ChatError as exc:
            raise ShownError(error_text(exc, lang)) from None
        first = next(iter(found))
        return gr.update(choices=list(found), value=first), found[first]

    persona.change(pick_persona, inputs=persona, outputs=system, api_visibility="private")
    save_p.click(
        do_save_persona,
        inputs=[persona_name, system, ctx.lang],
        outputs=persona,
        api_visibility="private",
    )
    delete_p.click(
        do_delete_persona,
        inputs=[persona, ctx.lang],
        outputs=[persona, system],
        api_visibility="private",
    )

    # --- chatting ---------------------------------------------------------------------
    def respond(
        spec_a,
        spec_b,
        text,
        hist_a,
        hist_b,
        system_text,
        max_new_tokens,
        greedy_on,
        temp,
        top,
        k,
        rep,
        seed_value,
        lang,
    ):
        if not (text or "").strip():
            raise ShownError(t("chat.empty_message", lang))
        try:
            settings = settings_from(max_new_tokens, greedy_on, temp, top, k, rep, seed_value)
        except StudioError as exc:
            raise ShownError(error_text(exc, lang)) from None
        # one side per model: [model, its conversation, the warnings under it]
        sides = [[spec_a, list(hist_a or []), ""], [spec_b or None, list(hist_b or []), ""]]
        flagged = False
        for side in sides:
            spec, history = side[0], side[1]
            if not spec:
                continue
            before = list(history)
            history += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            try:
                with ctx.use(spec) as loaded:
                    for out in reply(loaded, before, text, settings, system=system_text):
                        if isinstance(out, GenerationResult):
                            history[-1]["content"] = out.text
                            side[2] = render_warnings(out, spec, lang)
                            flagged = flagged or bool(out.warnings)
                        else:
                            history[-1]["content"] = out
                        yield outputs_of(sides, flagged, message="")
            except StudioError as exc:
                del history[-2:]  # the failed turn is not kept; the message stays typed
                side[2] = (
                    f'<div class="diag diag-error">{html.escape(t("chat.failed", lang, error=error_text(exc, lang)))}</div>'
                )
                yield outputs_of(sides, flagged, message=text)
                return

    def outputs_of(sides, flagged, message):
        (_, hist_a, html_a), (_, hist_b, html_b) = sides
        return hist_a, hist_b, html_a, html_b, message, gr.update(visible=flagged)

    chat_inputs = [
        model_a,
        model_b,
        message,
        chat_a,
        chat_b,
        system,
        max_new,
        greedy,
        *controls.inputs(),
        ctx.lang,
    ]
    chat_outputs = [chat_a, chat_b, warn_a, warn_b, message, inspect_btn]
    sent = send.click(respond, inputs=chat_inputs, outputs=chat_outputs, api_name=API_CHAT)
    submitted = message.submit(
        respond, inputs=chat_inputs, outputs=chat_outputs, api_visibility="private"
    )
    stop.click(None, cancels=[sent, submitted], api_visibility="private")
    clear.click(
        lambda: ([], [], "", "", gr.update(visible=False)),
        outputs=[chat_a, chat_b, warn_a, warn_b, inspect_btn],
        api_visibility="private",
    )
    model_a.change(
        lambda spec: (gr.update(label=spec, value=[]), ""),
        inputs=model_a,
        outputs=[chat_a, warn_a],
        api_visibility="private",
    )
    model_b.change(
        lambda spec: (
            gr.update(visible=bool(spec)),
            gr.update(label=spec or "", value=[]),
            "",
            gr.update(visible=bool(spec)),
        ),
        inputs=model_b,
        outputs=[col_b, chat_b, warn_b, pref_row],
        api_visibility="private",
    )
    if ctx.tabs is not None:
        inspect_btn.click(
            lambda: gr.Tabs(selected="inspect"), outputs=ctx.tabs, api_visibility="private"
        )

    # --- keeping the conversation -----------------------------------------------------
    def rows_of(hist_a, hist_b, system_text, lang):
        rows = []
        for history in (hist_a, hist_b):
            try:
                rows.append(conversation_row(history, system_text))
            except ChatError:
                continue
        if not rows:
            raise ShownError(t("chat.nothing_to_export", lang))
        return rows

    def do_export(hist_a, hist_b, system_text, lang):
        path = export_jsonl(rows_of(hist_a, hist_b, system_text, lang))
        return gr.update(value=str(path), visible=True)

    def do_save_dataset(hist_a, hist_b, system_text, name, lang):
        try:
            version = save_as_dataset(ws, rows_of(hist_a, hist_b, system_text, lang), name)
        except UnsafeInputError as exc:
            raise ShownError(
                t("chat.bad_dataset_name", lang, error=error_text(exc, lang))
            ) from None
        except DataError as exc:  # e.g. the disk is full; earlier versions are unchanged
            raise ShownError(error_text(exc, lang)) from None
        return t("chat.dataset_saved", lang, name=version.name, version=version.version)

    export_btn.click(
        do_export,
        inputs=[chat_a, chat_b, system, ctx.lang],
        outputs=export_file,
        api_name="chat_export",
    )
    save_ds.click(
        do_save_dataset,
        inputs=[chat_a, chat_b, system, dataset_name, ctx.lang],
        outputs=chat_status,
        api_name="chat_save_dataset",
    )

    # --- which reply is better: preference pairs --------------------------------------
    def do_mark(choice, hist_a, hist_b, spec_a, spec_b, system_text, pairs, lang):
        try:
            row = preference_pair(hist_a, hist_b, spec_a, spec_b, choice, system_text)
        except ChatError as exc:
            raise ShownError(error_text(exc, lang)) from None
        # one mark per turn and pair of models: marking it again replaces the first
        key = json.dumps([row["prompt"], sorted([spec_a, spec_b])], ensure_ascii=False)
        pairs = dict(pairs or {}) | {key: row}
        return pairs, pairs_line(pairs, lang, last=row)

    for button, choice in ((better_1, "1"), (better_2, "2"), (tie_btn, "=")):
        button.click(
            lambda a, b, sa, sb, sys_text, pairs, lang, _choice=choice: do_mark(
                _choice, a, b, sa, sb, sys_text, pairs, lang
            ),
            inputs=[chat_a, chat_b, model_a, model_b, system, chat_pairs, ctx.lang],
            outputs=[chat_pairs, pref_status],
            api_name=API_MARK[choice],
            trigger_mode="once",
        )

    def do_save_pairs(pairs, name, lang):
        try:  # a name from the browser is a name, never a path
            name = safe_name((name or "").strip()[:60])
        except UnsafeInputError as exc:
            raise ShownError(
                t("chat.bad_dataset_name", lang, error=error_text(exc, lang))
            ) from None
        found = list((pairs or {}).values())
        rows = [p for p in found if not p.get("tie")]
        if not rows:
            raise ShownError(t("chat.pref_nothing", lang))
        counts = {"marked": len(found), "pairs": len(rows), "ties": len(found) - len(rows)}
        try:
            version = save_pairs(ws, name, rows, source="chat tab", counts=counts)
        except (StudioError, OSError) as exc:
            raise ShownError(error_text(exc, lang)) from None
        # the pairs are in the dataset now: the next ones start a new list
        return None, t(
            "chat.pref_saved", lang, name=version.name, version=version.version, **counts
        )

    save_pairs_btn.click(
        do_save_pairs,
        inputs=[chat_pairs, pairs_name, ctx.lang],
        outputs=[chat_pairs, pref_status],
        api_name=API_SAVE_PAIRS,
    )
    ctx.keep_models_current(model_a, checkpoints=True, gguf=True)
    ctx.keep_models_current(model_b, checkpoints=True, gguf=True)
