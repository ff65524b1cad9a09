"""Assemble the studio's Blocks: header, language switch and one tab per feature."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio import APP_NAME
from studio.hardware import device_report
from studio.i18n import pick_language, t
from studio.models.load import LoadedModel, ModelSource, resolve_source
from studio.models.pool import ModelPool, pool_opener, training_guard
from studio.paths import EMBEDDED_MODEL_NAME, EMBEDDED_MODELS_DIR, ICON_PATH
from studio.priority import lowered
from studio.ui import (
    chat_tab,
    compare_tab,
    data_tab,
    eval_tab,
    export_tab,
    guide_tab,
    inspect_tab,
    model_tab,
    runs_tab,
    train_tab,
)
from studio.ui.errors import shown_errors
from studio.ui.localize import LanguageSwitch, Localizer
from studio.ui.pickers import keep_current
from studio.ui.theme import CSS, theme
from studio.workspace import Workspace

LANG_JS = "(lang) => { document.documentElement.lang = lang; return []; }"
LANGUAGE_CHOICES = [("日本語", "ja"), ("English", "en")]


@dataclass
class StudioContext:
    """What every tab shares: the workspace, the loaded model, the language control."""

    workspace: Workspace
    pool: ModelPool | None = None
    # None: any local model folder may be loaded (loopback use). A list: only folders
    # inside these roots (the app is reachable from other machines).
    local_roots: list[Path] | None = None
    lang: gr.Radio | None = None
    tabs: gr.Tabs | None = None  # for a button that opens another tab
    on_ready: list = field(default_factory=list)
    # (fn, inputs, outputs): what a tab redraws in a new language (ui/localize.LanguageSwitch)
    on_language: list = field(default_factory=list)

    def workspace_models(self, *, checkpoints: bool = False, gguf: bool = False) -> list[str]:
        return list(self.workspace.model_dirs(checkpoints=checkpoints, gguf=gguf))

    def model_choices(
        self, lang: str, *, checkpoints: bool = False, gguf: bool = False
    ) -> list[tuple[str, str]]:
        """The model picker's choices: the embedded model, then the workspace's models (and
        every run's intermediate checkpoints, `run:<id>@<step>`, and the exported GGUF files,
        `<folder>:<quant>`, when asked), then the Hub
        models pulled into huggingface_hub's cache (`OWNER/NAME`)."""
        from studio.models.hub import cached_models

        embedded = t("model.embedded_choice", lang, name=EMBEDDED_MODEL_NAME)
        names = self.workspace_models(checkpoints=checkpoints, gguf=gguf)
        names += [n for n in cached_models() if n not in names]
        return [(embedded, EMBEDDED_MODEL_NAME)] + [(n, n) for n in names]

    def keep_models_current(self, picker, *, checkpoints: bool = False, gguf: bool = False) -> None:
        """A model picker lists models saved, and runs finished, since the page was built:
        its choices are read again whenever it is opened."""
        keep_current(
            picker,
            lambda lang: self.model_choices(lang, checkpoints=checkpoints, gguf=gguf),
            [self.lang],
        )

    def __post_init__(self) -> None:
        if self.pool is None:
            self.pool = ModelPool(guard=training_guard(self.workspace))
        self._open = pool_opener(self.workspace, self.pool, local_roots=self.local_roots)

    def resolve(self, spec: str) -> ModelSource:
        """A model picker's value (or a typed folder / hub id) as a source; confined to the
        workspace when the app is reachable from other machines."""
        return resolve_source(
            spec, named_dirs=self.workspace.model_dirs(gguf=True), local_roots=self.local_roots
        )

    def use(self, spec: str, *, trust_remote_code: bool = False):
        """`with ctx.use(spec) as loaded:` the model, from the shared pool, for the block."""
        return self._open(spec, trust_remote_code=trust_remote_code)

    def load(self, spec: str, *, trust_remote_code: bool = False) -> LoadedModel:
        """Load (or find loaded) a model, for reading what it is; generate inside `use`."""
        with self.use(spec, trust_remote_code=trust_remote_code) as loaded:
            return loaded


def confined_roots(workspace: Workspace) -> list[Path]:
    """Where models may be loaded from when the app is exposed: the workspace's models, its
    runs' checkpoints and final models, and the embedded model."""
    return [workspace.models, workspace.runs, EMBEDDED_MODELS_DIR]


def build_app(ctx: StudioContext) -> gr.Blocks:
    loc = Localizer()
    hw = device_report()
    with gr.Blocks(title=APP_NAME, fill_width=True, analytics_enabled=False) as demo:
        with gr.Row(elem_id="studio-header", equal_height=True):
            with gr.Column(scale=5, min_width=300):
                loc.make(
                    gr.Markdown,
                    i18n={
                        "value": lambda lang: (
                            f"## {t('app.title', lang)}\n{t('app.subtitle', lang)}"
                        )
                    },
                    elem_id="studio-title",
                )
            with gr.Column(scale=2, min_width=220):
                ctx.lang = gr.Radio(
                    LANGUAGE_CHOICES,
                    value=loc.lang,
                    label="言語 / Language",
                    elem_id="language",
                    container=False,
                )
                loc.make(
                    gr.Markdown,
                    i18n={
                        "value": lambda lang: (
                            t("app.workspace", lang, path=ctx.workspace.root)
                            + "  \n"
                            + t("app.device", lang, **hw)
                        )
                    },
                    elem_id="studio-status",
                )
        from studio.guide import is_fresh

        # A new workspace opens on the guided first run; one with runs, on the Model tab.
        first = "guide" if is_fresh(ctx.workspace) else "model"
        with gr.Tabs(elem_id="studio-tabs", selected=first) as ctx.tabs:
            guide_tab.build(ctx, loc)
            model_tab.build(ctx, loc)
            data_tab.build(ctx, loc)
            inspect_tab.build(ctx, loc)
            train_tab.build(ctx, loc)
            runs_tab.build(ctx, loc)
            compare_tab.build(ctx, loc)
            chat_tab.build(ctx, loc)
            export_tab.build(ctx, loc)
            eval_tab.build(ctx, loc)

        switch = LanguageSwitch(loc, ctx.lang, ctx.on_language)
        # The user's switch (`input`, not `change`: the load below sets the language too).
        ctx.lang.input(
            switch.redraw,
            inputs=[ctx.lang, *switch.inputs],
            outputs=switch.outputs,
            api_visibility="private",
        )
        # The page says which language it is in, so the toasts' titles follow (ui/errors.py).
        ctx.lang.change(None, inputs=ctx.lang, js=LANG_JS, api_visibility="private")

        def initial_language(request: gr.Request, *values) -> list:
            lang = pick_language(request.headers.get("accept-language") if request else None)
            return switch.initial(lang, *values)

        ready = demo.load(
            initial_language,
            inputs=switch.inputs,
            outputs=[ctx.lang, *switch.outputs],
            api_visibility="private",
        )
        for fn, inputs, outputs in ctx.on_ready:
            ready = ready.then(fn, inputs=inputs, outputs=outputs, api_visibility="private")
    logs = ctx.workspace.root / "logs"
    for block_fn in demo.fns.values():
        # every error shown one way (ui/errors.py); the work yields to training runs
        block_fn.fn = lowered(shown_errors(block_fn.fn, logs))
    return demo


QUEUE_POLL_ENV = "STUDIO_QUEUE_POLL_MS"


def calm_idle_queue(demo: gr.Blocks) -> None:
    """Gradio's queue looks for new events every 1 ms on Linux even when nobody is there:
    about 3 % of a core while the app sits idle (issue 20, docs/benchmarks.md). Every 10 ms
    (`STUDIO_QUEUE_POLL_MS`) costs an event at most 10 ms more before it starts. The
    attribute is Gradio's own; if a later Gradio drops it, nothing changes."""
    queue = getattr(demo, "_queue", None)
    try:
        poll_s = max(0.001, float(os.environ.get(QUEUE_POLL_ENV, "10")) / 1000)
    except ValueError:
        poll_s = 0.01
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = poll_s


def launch_options() -> dict:
    from studio.ui.data_quality import KEYBOARD_JS  # good/noise keys while labelling

    return {
        "theme": theme(),
        "css": CSS,
        "js": KEYBOARD_JS,
        "favicon_path": str(ICON_PATH),
        "footer_links": ["api", "settings"],
    }
