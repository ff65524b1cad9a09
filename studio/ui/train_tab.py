"""The Train tab: pick data, model and preset, check, start, stop, resume, watch.

The form produces a `RunConfig` (the preset's, with the form's values on top); checking,
starting and following a run are `studio.train.start` and `studio.runs` functions, the same
ones `python -m studio train` calls. Everything shown is read from the run directory, so a
reload or an app restart loses nothing.
"""

from __future__ import annotations

import html
import shlex

import gradio as gr

from studio.errors import StudioError
from studio.fsutil import file_size
from studio.i18n import t
from studio.labels.profiles import list_profiles, load_profile
from studio.memo import Recent
from studio.runs import curves, history, launcher
from studio.runs.store import ACTIVE, RunError, list_runs, open_run, reconcile, reconcile_run
from studio.tokens.build import Cancelled
from studio.train import presets
from studio.train.config import (
    ATTENTIONS,
    FUSED_LOSSES,
    METHODS,
    PRECISIONS,
    PREFERENCE_LOSSES,
    TRACKERS,
    RunConfig,
    is_integer_field,
    setting_help,
)
from studio.train.start import Blocked, TooLarge, equivalent_command, preflight, start
from studio.ui.diagnostics import render_diagnostics
from studio.ui.errors import refusal
from studio.ui.pickers import dataset_choices, keep_current
from studio.ui.plots import (
    curve_colors,
    legend_html,
    scale_picker,
    with_every_series,
    x_axis_picker,
)
from studio.ui.progress import CANCELS, Background, progress_html, store_line
from studio.ui.run_status import explain

API_CHECK = "train_check"
API_START = "train_start"
API_STOP = "train_stop"
API_RESUME = "train_resume"
API_STATUS = "train_status"
DEFAULT_PRESET = "cpu-demo-sft"
PRESET_PROFILE = "(preset)"
REFRESH_S = 1.0
CURVE_COLORS = curve_colors({
    "loss (raw)": "#b6c2cf",
    "loss": "#0f766e",
    "eval_loss": "#dc2626",
    "score": "#9333ea",
    "score_low": "#d8b4fe",
    "score_high": "#d8b4fe",
    "learning_rate": "#2563eb",
    "grad_norm": "#d97706",
    "tokens_per_s": "#7c3aed",
    "reward_chosen": "#16a34a",
    "reward_rejected": "#dc2626",
    "reward_margin": "#0f766e",
    "eval_reward_margin": "#9333ea",
    "reward_accuracy": "#0f766e",
    "eval_reward_accuracy": "#9333ea",
})  # fmt: skip
# What the live curve can show: the losses together (train raw + smoothed, eval on the same
# axes), or one of the other logged figures.
VIEWS = {
    "loss": ("loss", "eval_loss"),
    "score": ("score", "score_low", "score_high"),
    "learning_rate": ("learning_rate",),
    "grad_norm": ("grad_norm",),
    "tokens_per_s": ("tokens_per_s",),
    # Preference runs: the rewards of the chosen and rejected replies and their margin, and
    # the share of pairs ranked right.
    "rewards": ("reward_chosen", "reward_rejected", "reward_margin", "eval_reward_margin"),
    "reward_accuracy": ("reward_accuracy", "eval_reward_accuracy"),
}


def series_label(name: str, lang: str) -> str:
    """A curve's name in the page's language."""
    return t("runs.metric_loss_raw" if name == "loss (raw)" else f"runs.metric_{name}", lang)


def empty_curve():
    return with_every_series(curves.frame({}, x="x"), CURVE_COLORS, "x")


def live_curve(records: list[dict], view: str, x: str, scale: str, smoothing: float):
    """One run's curve for the Train tab: `curves.frame`, the dashboard's plotting path."""
    table = curves.frame(
        {"run": records},
        metrics=VIEWS.get(view, VIEWS["loss"]),
        x=x if x in curves.X_AXES else "step",
        smoothing=smoothing or 0.0,
        log=scale == "log",
    )
    return with_every_series(table.rename(columns={table.columns[0]: "x"}), CURVE_COLORS, "x")


# Form fields, in the order of the inputs list: (config path, component key).
FIELDS = (
    "method",
    "training.learning_rate",
    "training.num_train_epochs",
    "training.max_steps",
    "training.per_device_train_batch_size",
    "training.gradient_accumulation_steps",
    "encoding.max_length",
    "encoding.packing",
    "lora.r",
    "lora.lora_alpha",
    "lora.lora_dropout",
    "lora.use_rslora",
    "lora.use_dora",
    "galore.rank",
    "galore.update_proj_gap",
    "galore.scale",
    "training.precision",
    "training.lr_scheduler_type",
    "training.warmup_steps",
    "training.weight_decay",
    "training.gradient_checkpointing",
    "training.save_steps",
    "training.eval_steps",
    "validation_split",
    "training.seed",
    "gpu_memory_gib",
    "allow_blocked",
    "allow_over_memory",
    "training.report_to",
    "evaluation.suites",
    "evaluation.metric_for_best_model",
    "evaluation.early_stopping_patience",
    "evaluation.early_stopping_threshold",
    "training.attention",
    "training.fused_loss",
    "preference.loss",
    "preference.beta",
)
# Whole-number fields (their inputs round to integers), as the config's annotations say.
INTEGER_FIELDS = {path for path in FIELDS if is_integer_field(path)}


def _get(config: RunConfig, path: str):
    node = config
    for part in path.split("."):
        node = getattr(node, part)
    return node


def config_from_form(ws, preset: str, dataset: str, model: str, profile: str, values) -> RunConfig:
    """The preset's config with the form's choices on top."""
    config, _ = presets.load(preset)
    data = config.to_dict()
    if profile and profile != PRESET_PROFILE:
        # The profile's settings; the form's visible fields (max length, packing) still win.
        data["encoding"] = load_profile(ws, profile).to_dict()
    data["dataset"] = dataset or data["dataset"]
    data["model"] = model or data["model"]
    filled = {
        path: value for path, value in zip(FIELDS, values, strict=True) if value not in (None, "")
    }
    return RunConfig.from_dict(data).with_overrides(filled)  # as `--set` applies them


def form_values(config: RunConfig) -> list:
    return [_get(config, path) if path != "evaluation.metric_for_best_model"
            else _get(config, path) or "" for path in FIELDS]  # fmt: skip


def suite_choices(ws) -> list[str]:
    """The workspace's evaluation suites, by name (their latest version)."""
    from studio.data.registry import list_eval_suites

    return sorted({version.name for version in list_eval_suites(ws)})


def render_check(checked, lang: str) -> str:
    parts = []
    if checked.scan is None:
        why = (
            t("train.not_downloaded", lang, model=checked.config.model)
            if checked.not_downloaded
            else checked.scan_error or ""
        )
        parts.append(
            f'<div class="diag diag-warning">{html.escape(t("train.no_scan", lang))}: '
            f"{html.escape(why)}</div>"
        )
    else:
        d = checked.scan.to_dict()
        parts.append(
            "<p>"
            + html.escape(
                t(
                    "train.scan_summary",
                    lang,
                    rows=d["rows"],
                    sequences=d["sequences"],
                    tokens=f"{d['tokens']:,}",
                    trained=f"{100 * d['trained_ratio']:.1f}",
                )
            )
            + "</p>"
        )
        if checked.scan.store:
            line = store_line(checked.scan.store, lang)
            parts.append(f'<p class="train-store"><small>{html.escape(line)}</small></p>')
        if checked.blocked:
            parts.append(
                f'<p class="train-blocked"><b>{html.escape(t("train.blocked", lang))}</b></p>'
            )
        parts.append(render_diagnostics(checked.scan.diagnostics, d["rows"], lang))
    return "".join(parts)


def render_estimate(estimate, lang: str, device: str | None = None) -> str:
    from studio.train.vram import gib, summary_lines

    if estimate is None:
        return t("train.no_estimate", lang)
    lines = summary_lines(estimate, lang)
    if device == "cpu":  # the figures are a GPU's: say so where no GPU is
        lines.insert(0, t("train.estimate_on_cpu", lang, gpu=gib(estimate.gpu_bytes, 1)))
    verdict = "fits" if estimate.fits else "does-not-fit"
    return (
        f'<div class="vram vram-{verdict}" data-fits="{str(estimate.fits).lower()}">'
        + "<br>".join(html.escape(line) for line in lines)
        + "</div>"
    )


def render_status(run, lang: str) -> str:
    if run is None:
        return t("train.no_run", lang)
    s = run.status()
    state = s["state"]
    step, total = s.get("step") or 0, s.get("max_steps") or 0
    share = step / total if total else 0.0
    eta = s.get("eta_s")
    info = run.info()
    bits = [
        f'<div class="run-status" data-state="{state}">',
        f'<b>{html.escape(run.id)}</b> · <span class="state state-{state}">'
        f"{html.escape(t('train.state_' + state, lang))}</span>",
    ]
    if total:
        bits.append(
            f" · {html.escape(t('train.progress', lang, step=step, total=total))}"
            + (f" · ETA {_duration(eta)}" if eta and state == "running" else "")
        )
    if s.get("loss") is not None:
        bits.append(f" · {t('runs.metric_loss', lang)} {s['loss']:.4f}")
    if info.get("backend"):
        bits.append(
            f"<br><small>{html.escape(info['backend'])} · {html.escape(info.get('device', ''))}"
            f" · {html.escape(info.get('precision', ''))} · "
            f"{info.get('trainable_parameters', 0):,} / {info.get('total_parameters', 0):,}"
            f" {html.escape(t('train.trainable', lang))}</small>"
        )
    said = explain(s, lang)
    if said:
        # red only for what went wrong: waiting, finishing and stopping as asked are not
        asked = state == "stopped" and s.get("reason") in ("stop_requested", "stopped_queued")
        kind = "run-note" if state in ("queued", "completed") or asked else "run-message"
        bits.append(f'<br><span class="{kind}">{html.escape(said)}</span>')
    bits.append(
        f'<div class="run-progress"><div style="width:{100 * share:.1f}%"></div></div></div>'
    )
    return "".join(bits)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 60}:{seconds % 60:02d}"
        if seconds < 3600
        else (f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}")
    )


def build(ctx, loc) -> None:
    ws = ctx.workspace
    reconcile(ws)  # runs whose process died while the app was down are marked interrupted
    preset_names = presets.list_presets()
    initial, _ = presets.load(DEFAULT_PRESET)
    datasets = dataset_choices(ws)
    with loc.make(gr.Tab, i18n={"label": "train.tab"}, id="train"):
        loc.make(gr.Markdown, i18n={"value": "train.intro"})
        with gr.Row(equal_height=False):
            preset = loc.make(
                gr.Dropdown,
                i18n={"label": "train.preset"},
                choices=preset_names,
                value=DEFAULT_PRESET,
                elem_id="train-preset",
                scale=2,
            )
            dataset = loc.make(
                gr.Dropdown,
                i18n={"label": "train.dataset"},
                choices=datasets,
                value=_matching(datasets, initial.datasets[0]),
                elem_id="train-dataset",
                scale=2,
            )
            model = loc.make(
                gr.Dropdown,
                i18n={"label": "train.model", "choices": ctx.model_choices},
                value=initial.model,
                allow_custom_value=True,
                filterable=True,
                elem_id="train-model",
                scale=2,
            )
            ctx.keep_models_current(model)
            profile = loc.make(
                gr.Dropdown,
                i18n={"label": "train.profile", "info": "train.profile_info"},
                choices=[PRESET_PROFILE, *list_profiles(ws)],
                value=PRESET_PROFILE,
                elem_id="train-profile",
                scale=2,
            )
        description = gr.Markdown(
            presets.describe(DEFAULT_PRESET, loc.lang), elem_id="train-description"
        )
        fields: dict[str, gr.components.Component] = {}

        def helped(path):  # the field's help, the text `train --settings` prints
            return lambda lang: setting_help(path, lang)

        def number(path, key, **kw):
            fields[path] = loc.make(
                gr.Number,
                i18n={"label": f"train.{key}", "info": helped(path)},
                value=_get(initial, path),
                precision=0 if path in INTEGER_FIELDS else None,
                elem_id=f"train-{key.replace('_', '-')}",
                **kw,
            )

        def check(path, key):
            fields[path] = loc.make(
                gr.Checkbox,
                i18n={"label": f"train.{key}", "info": helped(path)},
                value=_get(initial, path),
                elem_id=f"train-{key.replace('_', '-')}",
            )

        with gr.Row():
            fields["method"] = loc.make(
                gr.Radio,
                i18n={
                    "label": "train.method",
                    "choices": lambda lang: [(t(f"train.method_{m}", lang), m) for m in METHODS],
                    "info": helped("method"),
                },
                value=initial.method,
                elem_id="train-method",
            )
        with gr.Row():
            number("training.learning_rate", "learning_rate")
            number("training.num_train_epochs", "num_train_epochs")
            number("training.max_steps", "max_steps")
            number("training.per_device_train_batch_size", "per_device_train_batch_size")
            number("training.gradient_accumulation_steps", "gradient_accumulation_steps")
            number("encoding.max_length", "max_length")
            fields["encoding.packing"] = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "train.packing",
                    "info": helped("encoding.packing"),
                    "choices": lambda lang: [
                        (t(f"inspect.packing_{p}", lang), p)
                        for p in ("off", "isolated", "concatenated")
                    ],
                },
                value=initial.encoding.packing,
                elem_id="train-packing",
            )
        with loc.make(gr.Accordion, i18n={"label": "train.advanced"}, open=False):
            with gr.Row():
                number("lora.r", "lora_r")
                number("lora.lora_alpha", "lora_alpha")
                number("lora.lora_dropout", "lora_dropout")
                check("lora.use_rslora", "use_rslora")
                check("lora.use_dora", "use_dora")
            with gr.Row():
                number("galore.rank", "galore_rank")
                number("galore.update_proj_gap", "galore_update_proj_gap")
                number("galore.scale", "galore_scale")
            with gr.Row():
                fields["training.precision"] = loc.make(
                    gr.Dropdown,
                    i18n={"label": "train.precision", "info": helped("training.precision")},
                    choices=list(PRECISIONS),
                    value=initial.training.precision,
                    elem_id="train-precision",
                )
                fields["training.lr_scheduler_type"] = loc.make(
                    gr.Dropdown,
                    i18n={
                        "label": "train.lr_scheduler_type",
                        "info": helped("training.lr_scheduler_type"),
                    },
                    choices=["cosine", "linear", "constant", "constant_with_warmup"],
                    value=initial.training.lr_scheduler_type,
                    allow_custom_value=True,
                    elem_id="train-scheduler",
                )
                number("training.warmup_steps", "warmup_steps")
                number("training.weight_decay", "weight_decay")
                check("training.gradient_checkpointing", "gradient_checkpointing")
            with gr.Row():
                number("training.save_steps", "save_steps")
                number("training.eval_steps", "eval_steps")
                number("validation_split", "validation_split")
                number("training.seed", "seed")
                number("gpu_memory_gib", "gpu_memory_gib")
                check("allow_blocked", "allow_blocked")
                check("allow_over_memory", "allow_over_memory")
            with gr.Row():
                fields["training.report_to"] = loc.make(
                    gr.CheckboxGroup,
                    i18n={"label": "train.report_to", "info": helped("training.report_to")},
                    choices=list(TRACKERS),
                    value=list(initial.training.report_to),
                    scale=2,
                    elem_id="train-report-to",
                )
                fields["training.attention"] = loc.make(
                    gr.Dropdown,
                    i18n={"label": "train.attention", "info": helped("training.attention")},
                    choices=list(ATTENTIONS),
                    value=initial.training.attention,
                    elem_id="train-attention",
                )
                fields["training.fused_loss"] = loc.make(
                    gr.Dropdown,
                    i18n={"label": "train.fused_loss", "info": helped("training.fused_loss")},
                    choices=list(FUSED_LOSSES),
                    value=initial.training.fused_loss,
                    elem_id="train-fused-loss",
                )
            with gr.Row():  # used by preference presets (encoding.stage: preference)
                fields["preference.loss"] = loc.make(
                    gr.Dropdown,
                    i18n={"label": "train.preference_loss", "info": helped("preference.loss")},
                    choices=list(PREFERENCE_LOSSES),
                    value=initial.preference.loss,
                    elem_id="train-preference-loss",
                )
                number("preference.beta", "preference_beta")
        with loc.make(gr.Accordion, i18n={"label": "train.evaluation"}, open=False):
            with gr.Row():
                fields["evaluation.suites"] = loc.make(
                    gr.Dropdown,
                    i18n={"label": "train.suites", "info": helped("evaluation.suites")},
                    choices=suite_choices(ws),
                    value=list(initial.evaluation.suites),
                    multiselect=True,
                    elem_id="train-suites",
                    scale=3,
                )
                fields["evaluation.metric_for_best_model"] = loc.make(
                    gr.Textbox,
                    i18n={
                        "label": "train.metric_for_best_model",
                        "info": helped("evaluation.metric_for_best_model"),
                    },
                    value=initial.evaluation.metric_for_best_model or "",
                    placeholder="eval_loss / sample-eval-rank.mrr_full",
                    elem_id="train-best-metric",
                    scale=2,
                )
                number("evaluation.early_stopping_patience", "early_stopping_patience")
                number("evaluation.early_stopping_threshold", "early_stopping_threshold")
            keep_current(fields["evaluation.suites"], lambda: suite_choices(ws))
        inputs = [preset, dataset, model, profile, *[fields[p] for p in FIELDS]]
        with gr.Row():
            check_btn = loc.make(gr.Button, i18n={"value": "train.check"}, elem_id="train-check")
            start_btn = loc.make(
                gr.Button, i18n={"value": "train.start"}, variant="primary", elem_id="train-start"
            )
            stop_btn = loc.make(
                gr.Button, i18n={"value": "train.stop"}, variant="stop", elem_id="train-stop"
            )
            resume_btn = loc.make(gr.Button, i18n={"value": "train.resume"}, elem_id="train-resume")
            cancel_btn = loc.make(
                gr.Button, i18n={"value": "tokens.cancel_check"}, elem_id="train-cancel-check"
            )
        message = gr.Markdown(elem_id="train-message")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                loc.make(
                    gr.Markdown, i18n={"value": lambda lang: f"#### {t('train.data_check', lang)}"}
                )
                check_html = gr.HTML(elem_id="train-scan")
            with gr.Column(scale=2, min_width=280):
                loc.make(
                    gr.Markdown, i18n={"value": lambda lang: f"#### {t('train.memory', lang)}"}
                )
                estimate_html = gr.HTML(elem_id="train-estimate")
        command = loc.make(
            gr.Textbox,
            i18n={"label": "train.command"},
            value="",
            lines=2,
            buttons=["copy"],
            interactive=False,
            elem_id="train-command",
        )
        loc.make(gr.Markdown, i18n={"value": lambda lang: f"### {t('train.runs', lang)}"})
        with gr.Row():
            run_pick = loc.make(
                gr.Dropdown,
                i18n={"label": "train.run"},
                choices=history.run_choices(ws),
                value=None,
                allow_custom_value=True,  # runs made after the page was built; ids are checked
                elem_id="train-run",
                scale=4,
            )
            smoothing = loc.make(
                gr.Slider,
                i18n={"label": "train.smoothing"},
                minimum=0.0,
                maximum=0.99,
                step=0.01,
                value=0.6,
                elem_id="train-smoothing",
                scale=2,
            )
        status = gr.HTML(elem_id="train-status")
        with gr.Row():
            view = loc.make(
                gr.Dropdown,
                i18n={
                    "label": "train.view",
                    "choices": lambda lang: [(t(f"train.view_{v}", lang), v) for v in VIEWS],
                },
                value="loss",
                elem_id="train-view",
            )
            x_axis = x_axis_picker(loc, "train-x")
            scale = scale_picker(loc, "train-scale")
        plot = gr.LinePlot(
            x="x",
            y="value",
            color="series",
            color_map=CURVE_COLORS,
            colors_in_legend=[],  # drawn beside it, in the page's language (ui/plots.py)
            show_label=False,
            elem_classes=["curve-chart"],
            value=empty_curve(),
            height=340,
            elem_id="train-curve",
            label="",
        )
        log = loc.make(gr.Code, i18n={"label": "train.log"}, value="", lines=8, elem_id="train-log")
        timer = gr.Timer(REFRESH_S)
        seen = gr.State(None)  # inside the Tab: a State directly in Tabs adds a tab button

    def on_preset(name, lang):
        config, _ = presets.load(name)
        return [
            presets.describe(name, lang),
            gr.update(value=_matching(dataset_choices(ws), config.datasets[0])),
            config.model,
            *form_values(config),
        ]

    preset.change(
        on_preset,
        inputs=[preset, ctx.lang],
        outputs=[description, dataset, model, *[fields[p] for p in FIELDS]],
        api_visibility="private",
    )

    def form_config(args):
        preset_name, ds, mdl, prof, *values = args
        return config_from_form(ws, preset_name, ds, mdl, prof, values), preset_name

    def background_check(request, form):
        """The preflight of the form's config, started in a thread (it may encode the
        data): (config, preset name, the task whose result is the Preflight)."""
        config, preset_name = form_config(form)
        task = Background(
            lambda progress, cancel: preflight(ws, config, progress=progress, cancel=cancel),
            request,
            "train",
        )
        return config, preset_name, task

    def do_check(request: gr.Request, *args):
        *form, lang = args
        try:
            _, preset_name, task = background_check(request, form)
            for progress in task.updates():
                yield "", progress_html(progress, lang), gr.skip(), gr.skip()
            checked = task.result()
        except Cancelled:
            yield t("tokens.cancelled", lang), "", "", ""
            return
        except (StudioError, OSError) as exc:
            yield refusal(exc, lang), "", "", ""
            return
        yield (
            "",
            render_check(checked, lang),
            render_estimate(checked.estimate, lang, checked.device),
            equivalent_command(checked.config, preset_name, ws.root),
        )

    check_btn.click(
        do_check,
        inputs=[*inputs, ctx.lang],
        outputs=[message, check_html, estimate_html, command],
        api_name=API_CHECK,
    )

    def do_start(request: gr.Request, *args):
        *form, lang = args
        checked = None
        try:
            config, preset_name, task = background_check(request, form)
            for progress in task.updates():
                yield "", progress_html(progress, lang), gr.skip(), gr.skip(), gr.skip()
            checked = task.result()
            command_line = equivalent_command(checked.config, preset_name, ws.root)
            run = start(
                ws,
                config,
                preset=preset_name,
                command=shlex.split(command_line),
                checked=checked,
            )
        except Cancelled:
            yield t("tokens.cancelled", lang), "", gr.update(), gr.update(), gr.update()
            return
        except Blocked as exc:
            codes = ", ".join(d.code for d in exc.report.diagnostics if d.severity == "error")
            yield (
                refusal(t("train.not_started_blocked", lang, codes=codes), lang),
                render_check(checked, lang),
                gr.update(),
                gr.update(),
                gr.update(),
            )
            return
        except TooLarge as exc:
            from studio.train.vram import gib

            estimate = exc.estimate
            yield (
                refusal(t("train.too_large", lang, need=gib(estimate.total, 1),
                          have=gib(estimate.gpu_bytes, 1)), lang),
                render_check(checked, lang),
                render_estimate(estimate, lang, checked.device),
                gr.update(),
                gr.update(),
            )  # fmt: skip
            return
        except (StudioError, OSError) as exc:  # the user sees why nothing started
            yield refusal(exc, lang), gr.update(), gr.update(), gr.update(), gr.update()
            return
        yield (
            t("train.started", lang, run=run.id),
            render_check(checked, lang),
            render_estimate(checked.estimate, lang, checked.device),
            command_line,
            gr.update(choices=history.run_choices(ws), value=run.id),
        )

    start_btn.click(
        do_start,
        inputs=[*inputs, ctx.lang],
        outputs=[message, check_html, estimate_html, command, run_pick],
        api_name=API_START,
    )

    def cancel_check(request: gr.Request) -> None:
        CANCELS.cancel(request, "train")

    cancel_btn.click(cancel_check, api_visibility="private", queue=False)

    def selected(run_id):
        if not run_id:
            runs = list_runs(ws)
            return runs[0] if runs else None
        try:
            return open_run(ws, run_id)
        except StudioError:  # a run deleted meanwhile
            return None

    def do_stop(run_id, lang):
        run = selected(run_id)
        if run is None:
            return t("train.no_run", lang)
        outcome = launcher.stop(run)
        return t(f"train.stop_{outcome}", lang, run=run.id)

    stop_btn.click(do_stop, inputs=[run_pick, ctx.lang], outputs=[message], api_name=API_STOP)

    def do_resume(run_id, lang):
        run = selected(run_id)
        if run is None:
            return t("train.no_run", lang), gr.update()
        try:
            launcher.check_resumable(run)  # the one rule (runs/launcher.py)
        except RunError as exc:
            state = t(f"train.state_{exc.params['state']}", lang)
            return t("train.cannot_resume", lang, run=run.id, state=state), gr.update()
        try:
            if ctx.local_roots is not None:  # exposed: the run's model must be allowed too
                ctx.resolve(str(history.config_of(run).get("model") or ""))
            launcher.spawn(run, ws, resume=True)
        except (StudioError, OSError) as exc:
            return refusal(exc, lang), gr.update()
        return t("train.resumed", lang, run=run.id), gr.update(
            choices=history.run_choices(ws), value=run.id
        )

    resume_btn.click(
        do_resume, inputs=[run_pick, ctx.lang], outputs=[message, run_pick], api_name=API_RESUME
    )

    curves_drawn = Recent(16)  # every open page and client of this app shares them

    def refresh(run_id, weight, view_name, x, scale_name, lang, seen=None):
        """Status, curve and log of the run; the curve and log are only sent again when the
        run wrote something new or the view changed (a redrawn plot flickers)."""
        run = selected(run_id)
        if run is None:
            return t("train.no_run", lang), empty_curve(), "", None
        reconcile_run(run)  # a run whose process died while this app was not its parent
        key = [run.id, weight, view_name, x, scale_name]
        key += [file_size(run.metrics_path), file_size(run.log_path)]
        shown = list(VIEWS.get(view_name, VIEWS["loss"]))
        if view_name == "loss" and weight:
            shown.insert(0, "loss (raw)")
        legend = legend_html((series_label(n, lang), CURVE_COLORS[n]) for n in shown)
        axes = t(
            "train.axes",
            lang,
            view=t(f"train.view_{view_name}", lang),
            x=t(f"runs.x_{x}", lang),
            scale=t(f"runs.scale_{scale_name}", lang),
        )
        legend = f'<p class="chart-axes">{html.escape(axes)}</p>{legend}'
        if key == seen:
            return render_status(run, lang) + legend, gr.skip(), gr.skip(), seen
        curve = curves_drawn.get(tuple(key))
        if curve is None:  # drawn once per new metrics line, whoever is watching
            curve = live_curve(run.metrics(), view_name, x, scale_name, weight)
            curves_drawn.put(tuple(key), curve)
        return (
            render_status(run, lang) + legend,
            curve,  # the value only (ui/plots.py)
            run.log_tail(12),
            key,
        )

    curve_inputs = [run_pick, smoothing, view, x_axis, scale, ctx.lang]
    timer.tick(
        refresh,
        inputs=[*curve_inputs, seen],
        outputs=[status, plot, log, seen],
        api_visibility="private",
        show_progress="hidden",
    )
    run_pick.change(
        lambda *args: refresh(*args)[:3],
        inputs=curve_inputs,
        outputs=[status, plot, log],
        api_name=API_STATUS,
    )

    def open_on_current_run():
        """A page opened (or reloaded) mid-run shows that run, picked, with its curve: the
        run training or queued, else the newest one."""
        runs = list_runs(ws)
        current = next((r for r in runs if r.state in ACTIVE), runs[0] if runs else None)
        return gr.update(choices=history.run_choices(ws), value=current.id if current else None)

    ctx.on_ready.append((open_on_current_run, [], [run_pick]))
    for control in (view, x_axis, scale, smoothing):
        control.change(
            lambda *args: refresh(*args)[:3],
            inputs=curve_inputs,
            outputs=[status, plot, log],
            api_visibility="private",
        )
    ctx.on_language.append((presets.describe, [preset, ctx.lang], [description]))
    # Pickers re-read the workspace when opened: datasets uploaded and profiles saved in
    # the Inspect tab, runs started from the CLI.
    for picker, choices in (
        (run_pick, lambda: history.run_choices(ws)),
        (dataset, lambda: dataset_choices(ws)),
        (profile, lambda: [PRESET_PROFILE, *list_profiles(ws)]),
    ):
        keep_current(picker, choices)


def _matching(choices: list[str], spec: str) -> str | None:
    if spec in choices:
        return spec
    same = [c for c in choices if c.split("/")[0] == spec.split("/")[0]]
    return same[-1] if same else (choices[0] if choices else None)
