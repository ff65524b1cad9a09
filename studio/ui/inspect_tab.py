"""The Inspect tab: which tokens carry loss, and the diagnostics of a whole dataset.

All work is done by `studio.labels` (the same code the trainer uses); this module only lays
out components and turns results into HTML.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import gradio as gr

from studio.data.records import PREFERENCE_FORMATS, RecordError, dataset_file, import_file
from studio.data.registry import find_version
from studio.errors import InputError, StudioError
from studio.i18n import t
from studio.labels.encode import EncodingSettings
from studio.labels.fixes import apply_settings, repair_dataset
from studio.labels.inspect import (
    inspect_rows,
    load_target,
    rows_at,
    scan_dataset,
    suggest_fixes,
)
from studio.labels.profiles import (
    DEFAULT_PROFILE,
    ProfileError,
    list_profiles,
    load_profile,
    save_profile,
)
from studio.labels.view import histogram_svg, legend_counts, render_sequence, trained_text
from studio.models.load import resolve_source
from studio.paths import EMBEDDED_MODEL_NAME
from studio.safety import UnsafeInputError
from studio.tokens.build import Cancelled
from studio.ui.diagnostics import render_diagnostics
from studio.ui.errors import ShownError, error_text
from studio.ui.pickers import dataset_choices, keep_current
from studio.ui.progress import CANCELS, Background, progress_text, store_line

API_SCAN = "inspect_scan"
API_ROW = "inspect_row"
API_UPLOAD = "inspect_upload"
API_FIX = "inspect_apply_fixes"
API_REPAIR = "inspect_repair_data"
MAX_ROWS_SHOWN = 8
SETTING_FIELDS = (
    "stage",
    "loss",
    "max_length",
    "truncation_side",
    "packing",
    "add_eos",
    "add_special_tokens",
    "pad_token",
    "response_template",
    "mask_pad_token_id",
    "chat_template",
)


def _choices(prefix: str, values: tuple[str, ...]):
    return lambda lang: [(t(f"inspect.{prefix}_{v}", lang), v) for v in values]


class Targets:
    """Tokenizers by model name, loaded once (no weights)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, object] = {}

    def get(self, ctx, spec: str):
        source = resolve_source(
            spec, named_dirs=ctx.workspace.model_dirs(), local_roots=ctx.local_roots
        )
        with self._lock:
            if source.ref not in self._cache:
                self._cache = {source.ref: load_target(source)}
            return self._cache[source.ref]


def settings_from(values) -> EncodingSettings:
    data = dict(zip(SETTING_FIELDS, values, strict=True))
    data["max_length"] = int(data["max_length"] or 0)
    for name in ("pad_token", "response_template", "chat_template"):
        data[name] = (data[name] or "").strip("\n") or None
        if name != "chat_template" and data[name]:
            data[name] = data[name].strip()
    return EncodingSettings.from_dict(data)


def settings_values(settings: EncodingSettings) -> list:
    return [
        getattr(settings, name) if getattr(settings, name) is not None else ""
        for name in SETTING_FIELDS
    ]


def render_summary(report, lang: str) -> str:
    d = report.to_dict()
    lengths = d["lengths"] or {"p50": 0, "p99": 0, "max": 0}
    text = t(
        "inspect.summary",
        lang,
        rows=d["rows"],
        seconds=f"{d['seconds']:.2f}",
        sequences=d["sequences"],
        tokens=f"{d['tokens']:,}",
        trained_ratio=f"{100 * d['trained_ratio']:.1f}",
        truncated=d["truncated_rows"],
        truncated_share=f"{100 * d['truncated_share']:.1f}",
        p50=lengths["p50"],
        p99=lengths["p99"],
        max=lengths["max"],
        max_length=d["max_length"],
    )
    if report.spans:
        text += "\n\n" + t(
            "inspect.spans_line", lang, method=t(f"inspect.spans_{report.spans}", lang)
        )
    if report.store:
        text += "\n\n" + store_line(report.store, lang)
    if report.blocked:
        text += "\n\n**" + t("inspect.blocked", lang) + "**"
    return text


def render_inspection(inspection, tokenizer, lang: str, compact: bool) -> tuple[str, str]:
    views, texts = [], []
    for n, seq in enumerate(inspection.sequences, 1):
        counts = legend_counts(seq)
        rows = ", ".join(str(s.row) for s in seq.segments)
        head = t(
            "inspect.sequence_head",
            lang,
            n=n,
            rows=rows,
            tokens=len(seq.input_ids),
            trained=counts["trained"],
            masked=counts["masked"],
            pad=counts["pad"],
        )
        views.append(f"<h4>{html.escape(head)}</h4>")
        views.append(
            render_sequence(seq, tokenizer, inspection.tokens.special_ids, compact=compact)
        )
        spans = trained_text(seq, tokenizer)
        body = "\n──\n".join(spans) if spans else t("inspect.span_empty", lang)
        texts.append(f"<h4>{html.escape(head)}</h4>")
        texts.append(f'<div class="trained-text">{html.escape(body)}</div>')
    return "".join(views), "".join(texts)


def render_pairs(examples, target, settings, lang: str, compact: bool) -> tuple[str, str]:
    """Preference rows: the prompt once and each reply with its trained tokens (exactly what
    trl trains on), and the replies' trained text."""
    from studio.labels.encode import resolve_tokens
    from studio.labels.pairs import encode_pairs, shown_parts

    tok = resolve_tokens(target.tokenizer, settings)
    views, texts = [], []
    for pair in encode_pairs(examples, tok, settings):
        head = t(
            "inspect.pair_head",
            lang,
            row=pair.row,
            prompt=len(pair.prompt_ids),
            sides=" / ".join(
                f"{t(f'inspect.pair_{side}', lang)} {len(ids)}"
                for side, ids in pair.sides().items()
            ),
        )
        if pair.reason:
            head += " · " + t("inspect.pair_left_out", lang, reason=pair.reason)
        views.append(f"<h4>{html.escape(head)}</h4>")
        texts.append(f"<h4>{html.escape(head)}</h4>")
        for name, shown in shown_parts(pair):
            label = html.escape(t(f"inspect.pair_{name}", lang))
            views.append(f'<div class="pair-part pair-{name}"><b>{label}</b>')
            views.append(render_sequence(shown, target.tokenizer, tok.special_ids, compact=compact))
            views.append("</div>")
            if name != "prompt":
                body = target.tokenizer.decode(shown.input_ids)
                texts.append(f"<b>{label}</b>")
                texts.append(f'<div class="trained-text">{html.escape(body)}</div>')
    return "".join(views), "".join(texts)


def build(ctx, loc) -> None:
    ws = ctx.workspace
    targets = Targets()

    initial_datasets = dataset_choices(ws)
    chat = [c for c in initial_datasets if c.startswith("sample-chat")]
    with loc.make(gr.Tab, i18n={"label": "inspect.tab"}, id="inspect"):
        loc.make(gr.Markdown, i18n={"value": "inspect.intro"})
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                dataset = loc.make(
                    gr.Dropdown,
                    i18n={"label": "inspect.dataset", "info": "inspect.dataset_info"},
                    choices=initial_datasets,
                    value=(chat or initial_datasets or [None])[0],
                    elem_id="inspect-dataset",
                )
                upload = loc.make(
                    gr.File,
                    i18n={"label": "inspect.upload"},
                    file_types=[".jsonl", ".json"],
                    file_count="single",
                    height=160,
                    elem_id="inspect-upload",
                )
                upload_status = gr.Markdown(elem_id="inspect-upload-status")
            with gr.Column(scale=3, min_width=320):
                model = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "inspect.model",
                        "info": "inspect.model_info",
                        "choices": ctx.model_choices,
                    },
                    value=EMBEDDED_MODEL_NAME,
                    allow_custom_value=True,
                    filterable=True,
                    elem_id="inspect-model",
                )
                ctx.keep_models_current(model)
                keep_current(dataset, lambda: dataset_choices(ws))  # imports made elsewhere
                profile = loc.make(
                    gr.Dropdown,
                    i18n={"label": "inspect.profile", "info": "inspect.profile_info"},
                    choices=list_profiles(ws),
                    value=DEFAULT_PROFILE,
                    elem_id="inspect-profile",
                )
        defaults = EncodingSettings()
        with loc.make(gr.Accordion, i18n={"label": "inspect.settings"}, open=False):
            with gr.Row():
                stage = loc.make(
                    gr.Radio,
                    i18n={
                        "label": "inspect.stage",
                        "choices": _choices("stage", ("sft", "pretrain")),
                    },
                    value=defaults.stage,
                    elem_id="inspect-stage",
                )
                loss = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "inspect.loss",
                        "choices": _choices("loss", ("auto", "completion", "assistant", "all")),
                    },
                    value=defaults.loss,
                    elem_id="inspect-loss",
                )
                max_length = loc.make(
                    gr.Number,
                    i18n={"label": "inspect.max_length"},
                    value=defaults.max_length,
                    precision=0,
                    minimum=8,
                    elem_id="inspect-max-length",
                )
                truncation = loc.make(
                    gr.Radio,
                    i18n={
                        "label": "inspect.truncation_side",
                        "choices": _choices("truncation", ("right", "left")),
                    },
                    value=defaults.truncation_side,
                    elem_id="inspect-truncation",
                )
            with gr.Row():
                packing = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "inspect.packing",
                        "choices": _choices("packing", ("off", "isolated", "concatenated")),
                    },
                    value=defaults.packing,
                    elem_id="inspect-packing",
                )
                special = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "inspect.add_special_tokens",
                        "choices": _choices("special", ("auto", "yes", "no")),
                    },
                    value=defaults.add_special_tokens,
                    elem_id="inspect-special",
                )
                pad_token = loc.make(
                    gr.Textbox,
                    i18n={"label": "inspect.pad_token"},
                    value="",
                    elem_id="inspect-pad-token",
                )
                response_template = loc.make(
                    gr.Textbox,
                    i18n={"label": "inspect.response_template"},
                    value="",
                    elem_id="inspect-response-template",
                )
            with gr.Row():
                add_eos = loc.make(
                    gr.Checkbox,
                    i18n={"label": "inspect.add_eos"},
                    value=defaults.add_eos,
                    elem_id="inspect-add-eos",
                )
                mask_pad = loc.make(
                    gr.Checkbox,
                    i18n={"label": "inspect.mask_pad_token_id"},
                    value=defaults.mask_pad_token_id,
                    elem_id="inspect-mask-pad",
                )
            chat_template = loc.make(
                gr.Code,
                i18n={"label": "inspect.chat_template"},
                value="",
                language="jinja2",
                lines=4,
                elem_id="inspect-chat-template",
            )
        with gr.Row():
            scan_btn = loc.make(
                gr.Button,
                i18n={"value": "inspect.scan"},
                variant="primary",
                scale=4,
                elem_id="inspect-scan",
            )
            cancel_btn = loc.make(
                gr.Button, i18n={"value": "tokens.cancel_scan"}, scale=1, elem_id="inspect-cancel"
            )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                summary = gr.Markdown(elem_id="inspect-summary")
                loc.make(
                    gr.Markdown, i18n={"value": lambda lang: f"#### {t('inspect.histogram', lang)}"}
                )
                histogram = gr.HTML(elem_id="inspect-histogram")
            with gr.Column(scale=4, min_width=360):
                loc.make(
                    gr.Markdown,
                    i18n={"value": lambda lang: f"#### {t('inspect.diagnostics', lang)}"},
                )
                diagnostics = gr.HTML(elem_id="inspect-diagnostics")
                with gr.Row():
                    code_pick = loc.make(
                        gr.Dropdown,
                        i18n={"label": "inspect.pick_code"},
                        choices=[],
                        elem_id="inspect-code",
                    )
                code_rows = gr.Markdown(elem_id="inspect-code-rows")
                with gr.Row():
                    fix_btn = loc.make(
                        gr.Button, i18n={"value": "inspect.apply_fixes"}, elem_id="inspect-fix"
                    )
                    repair_btn = loc.make(
                        gr.Button, i18n={"value": "inspect.repair_data"}, elem_id="inspect-repair"
                    )
                fix_status = gr.Markdown(elem_id="inspect-fix-status")
        with gr.Row():
            row = loc.make(
                gr.Number,
                i18n={"label": "inspect.row"},
                value=0,
                precision=0,
                minimum=0,
                elem_id="inspect-row",
            )
            n_rows = loc.make(
                gr.Slider,
                i18n={"label": "inspect.rows_shown"},
                minimum=1,
                maximum=MAX_ROWS_SHOWN,
                step=1,
                value=1,
                elem_id="inspect-n-rows",
            )
            compact = loc.make(
                gr.Checkbox,
                i18n={"label": "inspect.compact"},
                value=False,
                elem_id="inspect-compact",
            )
            show_btn = loc.make(
                gr.Button, i18n={"value": "inspect.show_row"}, elem_id="inspect-show"
            )
        loc.make(gr.HTML, i18n={"value": lambda lang: f"<div>{t('inspect.legend', lang)}</div>"})
        # Two stacked views rather than nested tabs (nested gr.Tabs duplicate the outer
        # tab button in Gradio 6.31).
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                loc.make(
                    gr.Markdown,
                    i18n={"value": lambda lang: f"#### {t('inspect.token_view', lang)}"},
                )
                token_view = gr.HTML(elem_id="inspect-tokens")
            with gr.Column(scale=2, min_width=280):
                loc.make(
                    gr.Markdown,
                    i18n={"value": lambda lang: f"#### {t('inspect.trained_view', lang)}"},
                )
                trained_view = gr.HTML(elem_id="inspect-trained")
        report_state = gr.State(None)  # inside the tab, see model_tab

    setting_inputs = [
        stage,
        loss,
        max_length,
        truncation,
        packing,
        add_eos,
        special,
        pad_token,
        response_template,
        mask_pad,
        chat_template,
    ]

    def fail(lang, exc):
        message = error_text(exc, lang) if isinstance(exc, Exception) else exc
        return ShownError(t("inspect.error", lang, message=message))

    def resolve(dataset_spec, model_spec, values, lang):
        if not dataset_spec:
            raise fail(lang, "no dataset chosen")
        try:
            version = find_version(ws, dataset_spec)
            settings = settings_from(values)
            target = targets.get(ctx, model_spec)
        except StudioError as exc:
            raise fail(lang, exc) from None
        return version, settings, target

    def scan_report(dataset_spec, model_spec, values, lang, progress=None, cancel=None):
        version, settings, target = resolve(dataset_spec, model_spec, values, lang)
        try:
            if version.format in PREFERENCE_FORMATS:
                from studio.labels.pairs import scan_pairs

                return scan_pairs(ws, [version.spec], target, settings)
            return scan_dataset(
                ws, [version.spec], target, settings, progress=progress, cancel=cancel
            )
        except StudioError as exc:
            raise fail(lang, exc) from None

    def scan_outputs_of(dataset_spec, model_spec, report, settings_values, lang):
        codes = [d.code for d in report.diagnostics]
        state = {"dataset": dataset_spec, "model": model_spec, "report": report}
        return (
            state,
            render_summary(report, lang),
            histogram_svg(report.histogram(), settings_from(settings_values).max_length),
            render_diagnostics(report.diagnostics, report.rows, lang),
            gr.update(choices=codes, value=None),
            "",
        )

    def run_scan(request: gr.Request, dataset_spec, model_spec, *rest):
        """Encode (once) and check the whole dataset, showing the progress; Cancel stops it."""
        *values, lang = rest
        task = Background(
            lambda progress, cancel: scan_report(
                dataset_spec, model_spec, values, lang, progress, cancel
            ),
            request,
            "inspect",
        )
        for progress in task.updates():
            yield (gr.skip(), progress_text(progress, lang), *[gr.skip()] * 4)
        try:
            report = task.result()
        except Cancelled:
            yield (None, t("tokens.cancelled", lang), "", "", gr.update(choices=[]), "")
            return
        yield scan_outputs_of(dataset_spec, model_spec, report, values, lang)

    def show_rows(dataset_spec, model_spec, start, count, compact_on, *rest):
        *values, lang = rest
        version, settings, target = resolve(dataset_spec, model_spec, values, lang)
        start = max(int(start or 0), 0)
        count = min(max(int(count or 1), 1), MAX_ROWS_SHOWN)
        try:
            rows = rows_at(dataset_file(version), start, count)
            if not rows:
                raise InputError(f"the dataset has no row {start}")
            if version.format in PREFERENCE_FORMATS:
                return render_pairs(rows, target, settings, lang, bool(compact_on))
            inspection = inspect_rows(rows, target, settings)
        except StudioError as exc:
            raise fail(lang, exc) from None
        return render_inspection(inspection, target.tokenizer, lang, bool(compact_on))

    def pick_code(state, code, lang):
        if not state or not code:
            return "", gr.update()
        found = next((d for d in state["report"].diagnostics if d.code == code), None)
        if found is None:
            return "", gr.update()
        shown = found.rows[:50]
        text = t(
            "inspect.rows_of_code",
            lang,
            code=code,
            shown=len(shown),
            count=found.count,
            rows=", ".join(map(str, shown)),
        )
        return text, shown[0] if shown else 0

    def pending_fixes(kind, state, dataset_spec, model_spec, values, lang):
        """The fixes of one kind for the last scan (scanning first if there was none)."""
        version, settings, target = resolve(dataset_spec, model_spec, values, lang)
        if not state:
            report = scan_report(dataset_spec, model_spec, values, lang)
            state = {"dataset": dataset_spec, "model": model_spec, "report": report}
        fixes = suggest_fixes(state["report"], target, settings, dataset_file(version))
        return version, settings, [f for f in fixes if f.kind == kind]

    def apply_fixes(state, dataset_spec, model_spec, profile_name, *rest):
        *values, lang = rest
        _, settings, fixes = pending_fixes(
            "settings", state, dataset_spec, model_spec, values, lang
        )
        if not fixes:
            return t("inspect.no_settings_fix", lang), gr.update(), *[gr.update()] * len(values)
        fixed = apply_settings(settings, fixes)
        base = profile_name if profile_name and profile_name != DEFAULT_PROFILE else "inspect"
        name = save_profile(
            ws,
            f"{base}-fixed",
            fixed,
            based_on=profile_name or DEFAULT_PROFILE,
            fixes=[f.action for f in fixes],
        )
        actions = "; ".join(t(f"inspect.action_{f.action}", lang, **f.params) for f in fixes)
        return (
            t("inspect.fixed_profile", lang, name=name, actions=actions),
            gr.update(choices=list_profiles(ws), value=name),
            *settings_values(fixed),
        )

    def repair(state, dataset_spec, model_spec, *rest):
        *values, lang = rest
        version, _, fixes = pending_fixes("data", state, dataset_spec, model_spec, values, lang)
        if not fixes:
            return t("inspect.no_data_fix", lang), gr.update()
        fix = fixes[0]
        try:
            new = repair_dataset(
                ws,
                version,
                fix.params["literals"],
                drop_unanswered=fix.params["drop_unanswered"],
                trailing=fix.params.get("trailing", []),
            )
        except (StudioError, OSError) as exc:
            raise fail(lang, exc) from None
        spec = f"{new.name}/{new.version}"
        message = t(
            "inspect.repaired",
            lang,
            name=new.name,
            version=new.version,
            rows=new.rows,
            parent=version.version,
        )
        return message, gr.update(choices=dataset_choices(ws), value=spec)

    def choose_profile(name, lang):
        try:
            return settings_values(load_profile(ws, name or DEFAULT_PROFILE))
        except (ProfileError, UnsafeInputError) as exc:
            raise fail(lang, exc) from None

    def add_upload(path, lang):
        if not path:
            return gr.update(), ""
        src = Path(path)
        try:
            version = import_file(ws, src, operation="upload", source=src.name)
        except (RecordError, UnsafeInputError, OSError) as exc:
            raise fail(lang, exc) from None
        spec = f"{version.name}/{version.version}"
        message = t(
            "inspect.uploaded", lang, name=version.name, version=version.version, rows=version.rows
        )
        return gr.update(choices=dataset_choices(ws), value=spec), message

    scan_outputs = [report_state, summary, histogram, diagnostics, code_pick, code_rows]
    scan_btn.click(
        run_scan,
        inputs=[dataset, model, *setting_inputs, ctx.lang],
        outputs=scan_outputs,
        api_name=API_SCAN,
    )

    def cancel_scan(request: gr.Request) -> None:
        CANCELS.cancel(request, "inspect")

    cancel_btn.click(cancel_scan, api_visibility="private", queue=False)
    show_inputs = [dataset, model, row, n_rows, compact, *setting_inputs, ctx.lang]
    show_btn.click(
        show_rows, inputs=show_inputs, outputs=[token_view, trained_view], api_name=API_ROW
    )
    row.submit(
        show_rows, inputs=show_inputs, outputs=[token_view, trained_view], api_visibility="private"
    )
    compact.change(
        show_rows, inputs=show_inputs, outputs=[token_view, trained_view], api_visibility="private"
    )
    code_pick.change(
        pick_code,
        inputs=[report_state, code_pick, ctx.lang],
        outputs=[code_rows, row],
        api_visibility="private",
    ).then(
        show_rows, inputs=show_inputs, outputs=[token_view, trained_view], api_visibility="private"
    )
    fix_btn.click(
        apply_fixes,
        inputs=[report_state, dataset, model, profile, *setting_inputs, ctx.lang],
        outputs=[fix_status, profile, *setting_inputs],
        api_name=API_FIX,
    )
    repair_btn.click(
        repair,
        inputs=[report_state, dataset, model, *setting_inputs, ctx.lang],
        outputs=[fix_status, dataset],
        api_name=API_REPAIR,
    )
    profile.input(
        choose_profile, inputs=[profile, ctx.lang], outputs=setting_inputs, api_visibility="private"
    )
    upload.upload(
        add_upload, inputs=[upload, ctx.lang], outputs=[dataset, upload_status], api_name=API_UPLOAD
    )

    def refresh_lists():
        return (
            gr.update(choices=dataset_choices(ws)),
            gr.update(choices=list_profiles(ws)),
        )

    ctx.on_ready.append((refresh_lists, [], [dataset, profile]))
