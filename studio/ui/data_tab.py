"""The Data tab: bring a file in, look at it, clean it, deduplicate it, classify its quality,
rebalance its clusters, and keep every version. One version picker at the top feeds every
step; a step that writes a new version selects it. The work is in `studio.data`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.data import hub as hub_data
from studio.data import preview
from studio.data.ingest import (
    LAYOUTS,
    IngestError,
    Issue,
    guess_mapping,
    import_path,
    inspect_file,
)
from studio.data.registry import list_datasets
from studio.data.store import (
    EXPORT_FORMATS,
    DataError,
    delete_version,
    export_version,
    lineage,
    open_version,
    resolve,
    split_version,
)
from studio.i18n import t
from studio.models import hub as hub_models
from studio.safety import UnsafeInputError, confine
from studio.ui import data_clean, data_cluster, data_dedup, data_quality, data_synth, data_tokens
from studio.ui.errors import ShownError, error_text
from studio.ui.localize import relabeled
from studio.ui.pickers import keep_current
from studio.ui.progress import CANCELS, Background, pull_line

API_IMPORT = "data_import"
MAP_FIELDS = list(dict.fromkeys(f for fields in LAYOUTS.values() for f in fields))

# Steps written beside their own library modules; each has `build_section(data)`.
SECTIONS = (
    (data_clean, "data.tab_clean", "data-clean"),
    (data_dedup, "data.tab_dedup", "data-dedup"),
    (data_quality, "data.tab_quality", "data-quality"),
    (data_cluster, "data.tab_cluster", "data-cluster"),
    (data_synth, "data_synth.tab", "data-synth"),
)
# After the versions: the datasets as encoded for training.
STORES = (data_tokens, "tokens.tab", "data-tokens")


@dataclass
class DataContext:
    """What every step of the Data tab shares: the studio context, the localizer, the
    version picker (a `name/vNNNN` spec) and the state a step sets to a version it wrote."""

    ctx: object
    loc: object
    version: gr.Dropdown
    created: gr.State


def version_specs(ws) -> list[str]:
    """Every version, newest first within each dataset."""
    found = list_datasets(ws)
    return [v.spec for v in sorted(found, key=lambda v: (v.name, v.version), reverse=True)]


def render_summary(ws, spec: str | None, lang: str) -> str:
    if not spec:
        return t("data.no_version", lang)
    try:
        chain = lineage(ws, spec)
    except DataError as exc:
        return str(exc)
    v = chain[0]
    head = t("data.summary", lang, spec=v.spec, rows=f"{v.rows:,}", format=v.format, op=v.operation)
    path = " ← ".join(f"`{x.spec}` ({x.operation})" for x in chain)
    shown = counts_text(v.counts, lang)
    shown = shown if len(shown) <= 200 else shown[:200] + "…"  # the Versions table has it all
    counts = f"  \n{t('data.counts', lang)}: {shown}"
    return f"{head}  \n{t('data.lineage', lang)}: {path}" + (counts if v.counts else "")


def counts_text(counts: dict | None, lang: str) -> str:
    """A version's counts as words: `in 12 · out 10 · removed: min_length 2`. Known keys
    are translated; filter and step names stay as the pipeline names them."""
    parts = []
    for key, value in (counts or {}).items():
        name = t(f"data.count_{key}", lang)
        name = key if name == f"data.count_{key}" else name
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {_number(v)}" for k, v in value.items())
            parts.append(f"{name}: {inner}" if inner else f"{name}: 0")
        else:
            parts.append(f"{name} {_number(value)}")
    return " · ".join(parts)


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def versions_frame(ws, lang: str) -> pd.DataFrame:
    columns = ["spec", "format", "rows", "operation", "parent", "created", "seconds", "counts"]
    rows = [
        [
            v.spec,
            v.format,
            v.rows,
            v.operation,
            v.parent or "",
            v.created[:16].replace("T", " "),  # local time, to the minute
            v.seconds if v.seconds is not None else "",
            counts_text(v.counts, lang),
        ]
        for v in sorted(list_datasets(ws), key=lambda v: v.created, reverse=True)
    ]
    return pd.DataFrame(rows, columns=[t(f"data.col_{c}", lang) for c in columns])


STAT_KEYS = ("column", "rows", "empty", "mean_length", "min_length", "max_length")


def stat_headers(lang: str) -> list[str]:
    return [t(f"data.stat_{key}", lang) for key in STAT_KEYS]


def stats_frame(columns: list[dict], lang: str) -> pd.DataFrame:
    """Per-column statistics (`preview.column_stats`), headers in `lang`."""
    return pd.DataFrame([[c[k] for k in STAT_KEYS] for c in columns], columns=stat_headers(lang))


def page_frame(result: dict, fmt: str, lang: str) -> pd.DataFrame:
    rows = result["rows"]
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["text"]
    body = [[i + 1] + [preview.cell(r.get(c)) for c in columns] for i, r in zip(
        result["indices"], rows, strict=True
    )]  # fmt: skip
    return pd.DataFrame(body, columns=[t("data.col_row", lang), *columns])


def build(ctx, loc) -> None:
    ws = ctx.workspace
    specs = version_specs(ws)
    with loc.make(gr.Tab, i18n={"label": "data.tab"}, id="data"):
        loc.make(gr.Markdown, i18n={"value": "data.intro"})
        created = gr.State(None)
        with gr.Row(equal_height=True):
            version = loc.make(
                gr.Dropdown,
                i18n={"label": "data.version", "info": "data.version_info"},
                choices=specs,
                value=specs[0] if specs else None,
                allow_custom_value=True,  # versions written after the page was built
                scale=2,
                elem_id="data-version",
            )
            summary = gr.Markdown(
                render_summary(ws, specs[0] if specs else None, loc.lang), elem_id="data-summary"
            )
        data = DataContext(ctx, loc, version, created)
        with gr.Tabs(elem_id="data-steps"):
            with loc.make(gr.Tab, i18n={"label": "data.tab_import"}, id="data-import"):
                _import_section(data)
            with loc.make(gr.Tab, i18n={"label": "data.tab_preview"}, id="data-preview"):
                _preview_section(data)
            for section, label, tab_id in SECTIONS:
                with loc.make(gr.Tab, i18n={"label": label}, id=tab_id):
                    section.build_section(data)
            with loc.make(gr.Tab, i18n={"label": "data.tab_versions"}, id="data-versions"):
                versions_table = _versions_section(data)
            section, label, tab_id = STORES
            with loc.make(gr.Tab, i18n={"label": label}, id=tab_id) as stores_tab:
                listing, listing_inputs, listing_outputs = section.build_section(data)
            # Stores are made by checks and runs elsewhere: read them again when opened.
            stores_tab.select(
                listing, inputs=listing_inputs, outputs=listing_outputs, api_visibility="private"
            )

    def on_created(spec, lang):
        choices = version_specs(ws)
        return (
            gr.update(choices=choices, value=spec),
            render_summary(ws, spec, lang),
            versions_frame(ws, lang),
        )

    created.change(
        on_created,
        inputs=[created, ctx.lang],
        outputs=[version, summary, versions_table],
        api_visibility="private",
    )
    version.change(
        lambda spec, lang: render_summary(ws, spec, lang),
        inputs=[version, ctx.lang],
        outputs=summary,
        api_visibility="private",
    )
    keep_current(version, lambda: version_specs(ws))
    ctx.on_language.append(
        (
            lambda spec, lang: (render_summary(ws, spec, lang), versions_frame(ws, lang)),
            [version, ctx.lang],
            [summary, versions_table],
        )
    )


# --- import ---------------------------------------------------------------------------
def issue_text(issue, lang: str) -> str:
    """A malformed row, in the page's language (its own message when it has no code)."""
    message = issue.message
    if issue.code:
        message = t(f"data.issue_{issue.code}", lang, **issue.params)
    return t("data.issue", lang, line=issue.line, message=message)


def _import_section(data: DataContext) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    loc.make(gr.Markdown, i18n={"value": "data.import_intro"})
    with gr.Row():
        upload = loc.make(
            gr.File,
            i18n={"label": "data.upload"},
            file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"],
            type="filepath",
            scale=2,
            elem_id="data-upload",
        )
        with gr.Column(scale=2):
            local_path = loc.make(
                gr.Textbox,
                i18n={"label": "data.local_path", "info": "data.local_path_info"},
                elem_id="data-local-path",
            )
            check_btn = loc.make(gr.Button, i18n={"value": "data.check"}, elem_id="data-check")
    found = gr.Markdown(elem_id="data-found")
    sample = loc.make(
        gr.Dataframe, i18n={"label": "data.sample"}, interactive=False, elem_id="data-sample"
    )
    with gr.Row():
        layout = loc.make(
            gr.Dropdown,
            i18n={
                "label": "data.layout",
                "choices": lambda lang: [(t(f"data.layout_{k}", lang), k) for k in LAYOUTS],
            },
            value=None,
            elem_id="data-layout",
        )
        name = loc.make(gr.Textbox, i18n={"label": "data.name"}, elem_id="data-name")
        txt_mode = loc.make(
            gr.Radio,
            i18n={
                "label": "data.txt_mode",
                "choices": lambda lang: [
                    (t(f"data.txt_{m}", lang), m) for m in ("lines", "paragraphs")
                ],
            },
            value=None,
            visible=False,
            elem_id="data-txt-mode",
        )
        skip_bad = loc.make(
            gr.Checkbox, i18n={"label": "data.skip_bad"}, value=False, elem_id="data-skip-bad"
        )
    with gr.Row():
        mapping = {
            f: gr.Dropdown(label=f, choices=[], visible=False, elem_id=f"data-map-{f}")
            for f in MAP_FIELDS
        }
    with gr.Row():
        import_btn = loc.make(
            gr.Button,
            i18n={"value": "data.import"},
            variant="primary",
            elem_id="data-import",
            scale=4,
        )
        # Stops a Hub dataset's download; what arrived stays, and importing again resumes.
        stop_btn = loc.make(
            gr.Button, i18n={"value": "data.hub_stop"}, elem_id="data-import-stop", scale=1
        )
    status = gr.Markdown(elem_id="data-import-status")
    columns_state = gr.State([])

    def source_path(uploaded, typed, lang) -> Path:
        if uploaded:
            return Path(uploaded)
        typed = (typed or "").strip()
        if not typed:
            raise ShownError(t("data.no_file", lang))
        path = Path(typed).expanduser()
        if ctx.local_roots is not None:  # reachable from other machines: the workspace only
            try:
                path = confine(path, [ws.root])
            except UnsafeInputError as exc:
                raise ShownError(
                    t("data.path_refused", lang, error=error_text(exc, lang))
                ) from None
        return path

    def mapping_updates(chosen_layout, columns, current=None):
        current = current or {}
        fields = LAYOUTS.get(chosen_layout or "", {})
        return [
            gr.update(
                visible=f in fields,
                choices=([""] if f == "input" else []) + list(columns),
                value=current.get(f, "") if f in fields else None,
            )
            for f in MAP_FIELDS
        ]

    def from_hub(uploaded, typed) -> bool:
        return not uploaded and hub_data.is_hub((typed or "").strip())

    def check_hub(typed, lang):
        spec, options = hub_data.parse_spec(typed)
        listing = hub_data.plan(spec, **options)
        files = "".join(f"\n- `{f.name}` ({f.size / 2**20:,.2f} MiB)" for f in listing.fetched)
        text = t("data.hub_found", lang, repo=listing.repo, revision=listing.revision[:12],
                 size=f"{listing.total_bytes / 2**20:,.1f}") + files  # fmt: skip
        keep = [gr.update()] * len(MAP_FIELDS)
        name = listing.repo.split("/")[1][:60]
        return [text, None, gr.update(), name, gr.update(visible=False), [], *keep]

    def check(uploaded, typed, lang):
        if from_hub(uploaded, typed):
            return check_hub(typed, lang)
        path = source_path(uploaded, typed, lang)
        try:
            seen = inspect_file(path)
        except (IngestError, OSError) as exc:
            raise ShownError(t("data.check_failed", lang, error=error_text(exc, lang))) from None
        issues = "".join(f"\n- {issue_text(i, lang)}" for i in seen.issues)
        text = t(
            "data.found",
            lang,
            file=seen.file,
            encoding=seen.encoding or "parquet",
            layout=t(f"data.layout_{seen.layout}" if seen.layout else "data.layout_unknown", lang),
            columns=", ".join(seen.columns),
        ) + (f"\n\n{t('data.issues', lang, n=seen.scanned)}{issues}" if issues else "")
        if seen.layout is None:
            text += "\n\n" + t("data.choose_layout", lang)
        table = pd.DataFrame(
            [[preview.cell(r.get(c)) for c in seen.columns] for r in seen.sample],
            columns=seen.columns,
        )
        return [
            text,
            table,
            seen.layout,
            Path(seen.file).stem[:60],
            gr.update(visible=seen.suffix == ".txt", value=seen.txt_mode),
            seen.columns,
            *mapping_updates(seen.layout, seen.columns, seen.mapping),
        ]

    def import_from_hub(request, typed, layout_name, dataset_name, skip, chosen_map, lang):
        spec, options = hub_data.parse_spec(typed)
        task = Background(
            lambda progress, cancel: hub_data.import_hub(
                ws, spec, **options, name=dataset_name or None, layout=layout_name or None,
                mapping=chosen_map or None, skip_bad=bool(skip), progress=progress, cancel=cancel,
            ),
            request,
            "hub-import",
        )  # fmt: skip
        for progress in task.updates():
            yield (
                t("data.hub_pulling", lang, repo=spec, progress=pull_line(progress, lang)),
                gr.skip(),
            )
        try:
            version, report = task.result()
        except hub_models.PullStopped as exc:
            yield error_text(exc, lang), gr.skip()
            return
        except IngestError as exc:
            raise ShownError(t("data.import_failed", lang, error=error_text(exc, lang))) from None
        yield imported_text(version, report, lang), version.spec

    def imported_text(version, report, lang) -> str:
        text = t(
            "data.imported",
            lang,
            rows=f"{report['rows']:,}",
            spec=version.spec,
            form=version.format,
            skipped=report["skipped"],
        )
        if report["skipped_rows"]:
            text += "".join(
                f"\n- {issue_text(Issue(**i), lang)}" for i in report["skipped_rows"][:20]
            )
        return text

    def do_import(
        request: gr.Request,
        uploaded,
        typed,
        chosen_layout,
        dataset_name,
        mode,
        skip,
        columns,
        *mapped,
    ):
        lang = mapped[-1]
        chosen = dict(zip(MAP_FIELDS, mapped[:-1], strict=True))
        fields = LAYOUTS.get(chosen_layout or "", {})
        chosen_map = {f: c for f, c in chosen.items() if f in fields and c}
        if from_hub(uploaded, typed):  # a Hub dataset: its download's progress, then the import
            yield from import_from_hub(
                request, typed, chosen_layout, dataset_name, skip, chosen_map, lang
            )
            return
        path = source_path(uploaded, typed, lang)
        try:
            version, report = import_path(
                ws,
                path,
                name=dataset_name or None,
                layout=chosen_layout or None,
                mapping=chosen_map or None,
                skip_bad=bool(skip),
                txt_mode=mode or None,
                source=path.name,
            )
        except IngestError as exc:
            issue = getattr(exc, "issue", None)
            if issue is not None:  # a malformed row: said in the page's language
                exc = t("data.row_failed", lang, file=path.name, issue=issue_text(issue, lang))
            raise ShownError(t("data.import_failed", lang, error=error_text(exc, lang))) from None
        except (DataError, OSError, UnsafeInputError) as exc:
            raise ShownError(t("data.import_failed", lang, error=error_text(exc, lang))) from None
        yield imported_text(version, report, lang), version.spec

    outputs = [found, sample, layout, name, txt_mode, columns_state, *mapping.values()]
    check_btn.click(
        check, inputs=[upload, local_path, ctx.lang], outputs=outputs, api_name="data_check"
    )
    upload.upload(
        check, inputs=[upload, local_path, ctx.lang], outputs=outputs, api_visibility="private"
    )
    layout.input(
        lambda chosen, columns: mapping_updates(chosen, columns, guess_mapping(chosen, columns)),
        inputs=[layout, columns_state],
        outputs=list(mapping.values()),
        api_visibility="private",
    )

    def stop_hub_import(request: gr.Request) -> None:
        CANCELS.cancel(request, "hub-import")

    stop_btn.click(stop_hub_import, api_visibility="private", queue=False)
    import_btn.click(
        do_import,
        inputs=[upload, local_path, layout, name, txt_mode, skip_bad, columns_state]
        + list(mapping.values())
        + [ctx.lang],
        outputs=[status, data.created],
        api_name=API_IMPORT,
    )


# --- preview --------------------------------------------------------------------------
def _preview_section(data: DataContext) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    with gr.Row():
        query = loc.make(gr.Textbox, i18n={"label": "data.search"}, scale=3, elem_id="data-search")
        number = loc.make(
            gr.Number,
            i18n={"label": "data.page"},
            value=1,
            minimum=1,
            precision=0,
            scale=1,
            elem_id="data-page",
        )
        size = loc.make(
            gr.Dropdown,
            i18n={"label": "data.page_size"},
            choices=[10, 20, 50, 100],
            value=20,
            scale=1,
            elem_id="data-page-size",
        )
        show_btn = loc.make(gr.Button, i18n={"value": "data.show"}, scale=1, elem_id="data-show")
    matches = gr.Markdown(elem_id="data-matches")
    table = gr.Dataframe(interactive=False, wrap=True, elem_id="data-rows")
    with gr.Row():
        model = loc.make(
            gr.Dropdown,
            i18n={
                "label": "data.tokenizer",
                "info": "data.tokenizer_info",
                "choices": ctx.model_choices,
            },
            value=None,
            allow_custom_value=True,
            scale=3,
            elem_id="data-tokenizer",
        )
        stats_btn = loc.make(gr.Button, i18n={"value": "data.stats"}, scale=1, elem_id="data-stats")
    stats_note = gr.Markdown(elem_id="data-stats-note")
    stats_table = gr.Dataframe(
        stats_frame([], loc.lang), interactive=False, elem_id="data-column-stats"
    )
    ctx.on_language.append(
        (lambda shown, lang: relabeled(shown, stat_headers(lang)), [stats_table, ctx.lang],
         [stats_table])
    )  # fmt: skip
    with gr.Row():
        axes = {"x_title": "data.hist_x", "y_title": "data.hist_y"}
        char_plot = loc.make(
            gr.BarPlot, i18n=axes, x="bucket", y="count", sort=None, elem_id="data-hist-chars"
        )
        token_plot = loc.make(
            gr.BarPlot, i18n=axes, x="bucket", y="count", sort=None, elem_id="data-hist-tokens"
        )

    def show(spec, text, page_no, page_size, lang):
        if not spec:
            return t("data.no_version", lang), pd.DataFrame()
        try:
            version = resolve(ws, spec)
            result = preview.page(
                open_version(ws, version),
                version.format,
                number=int(page_no or 1),
                size=int(page_size or 20),
                query=text or "",
            )
        except DataError as exc:
            raise ShownError(error_text(exc, lang)) from None
        key = "data.matches" if result["complete"] else "data.matches_more"
        note = t(key, lang, n=f"{result['matches']:,}", page=int(page_no or 1))
        return note, page_frame(result, version.format, lang)

    def stats(spec, model_spec, lang):
        if not spec:
            raise ShownError(t("data.no_version", lang))
        try:
            version = resolve(ws, spec)
            dataset = open_version(ws, version)
        except DataError as exc:
            raise ShownError(error_text(exc, lang)) from None
        tokenizer = None
        if model_spec:
            try:
                from studio.models.load import ModelLoadError, load_tokenizer

                tokenizer = load_tokenizer(ctx.resolve(model_spec))
            except ModelLoadError as exc:
                raise ShownError(error_text(exc, lang)) from None
        sizes = preview.lengths(dataset, version.format, tokenizer=tokenizer)
        frame = stats_frame(preview.column_stats(dataset), lang)
        note = t(
            "data.stats_note", lang, looked=f"{sizes['looked']:,}", total=f"{sizes['total']:,}"
        )
        chars = pd.DataFrame(preview.histogram(sizes["chars"]))
        tokens = pd.DataFrame(preview.histogram(sizes["tokens"]))

        def y_limit(frame):
            return [0, int(frame["count"].max() * 1.1) + 1] if len(frame) else None

        def order(frame):  # buckets in length order, not sorted as text
            return list(frame["bucket"]) if len(frame) else None

        return (
            note,
            frame,
            gr.update(
                value=chars,
                title=t("data.hist_chars", lang),
                y_lim=y_limit(chars),
                sort=order(chars),
            ),
            gr.update(
                value=tokens,
                title=t("data.hist_tokens", lang),
                y_lim=y_limit(tokens),
                sort=order(tokens),
                visible=bool(sizes["tokens"]),
            ),
        )

    inputs = [data.version, query, number, size, ctx.lang]
    show_btn.click(show, inputs=inputs, outputs=[matches, table], api_name="data_preview")
    query.submit(show, inputs=inputs, outputs=[matches, table], api_visibility="private")
    data.version.change(show, inputs=inputs, outputs=[matches, table], api_visibility="private")
    stats_btn.click(
        stats,
        inputs=[data.version, model, ctx.lang],
        outputs=[stats_note, stats_table, char_plot, token_plot],
        api_name="data_stats",
    )
    ctx.keep_models_current(model)
    ctx.on_ready.append((show, inputs, [matches, table]))


# --- versions -------------------------------------------------------------------------
def _versions_section(data: DataContext):
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    table = gr.Dataframe(
        versions_frame(ws, loc.lang), interactive=False, wrap=True, elem_id="data-versions"
    )
    with gr.Row():
        with gr.Column():
            fmt = loc.make(
                gr.Radio,
                i18n={"label": "data.export_format"},
                choices=list(EXPORT_FORMATS),
                value="jsonl",
                elem_id="data-export-format",
            )
            export_btn = loc.make(gr.Button, i18n={"value": "data.export"}, elem_id="data-export")
            export_file = loc.make(
                gr.File,
                i18n={"label": "data.export_file"},
                interactive=False,
                visible=False,
                elem_id="data-export-file",
            )
        with gr.Column():
            share = loc.make(
                gr.Number,
                i18n={"label": "data.validation_share"},
                value=0.05,
                minimum=0.001,
                maximum=0.9,
                elem_id="data-split-share",
            )
            seed = loc.make(gr.Number, i18n={"label": "data.seed"}, value=42, precision=0)
            split_btn = loc.make(gr.Button, i18n={"value": "data.split"}, elem_id="data-split")
        with gr.Column():
            confirm = loc.make(
                gr.Textbox,
                i18n={"label": "data.delete_confirm", "info": "data.delete_confirm_info"},
                elem_id="data-delete-confirm",
            )
            delete_btn = loc.make(
                gr.Button, i18n={"value": "data.delete"}, variant="stop", elem_id="data-delete"
            )
    status = gr.Markdown(elem_id="data-versions-status")

    def do_export(spec, chosen, lang):
        if not spec:
            raise ShownError(t("data.no_version", lang))
        folder = Path(tempfile.mkdtemp(prefix="data-export-"))
        try:
            path = export_version(ws, spec, chosen, folder)
        except DataError as exc:
            raise ShownError(error_text(exc, lang)) from None
        return gr.update(value=str(path), visible=True)

    def do_split(spec, validation, seed_value, lang):
        if not spec:
            raise ShownError(t("data.no_version", lang))
        try:
            train, held = split_version(
                ws, spec, validation=float(validation), seed=int(seed_value)
            )
        except DataError as exc:
            raise ShownError(error_text(exc, lang)) from None
        text = t(
            "data.split_done", lang, train=train.spec, n=train.rows, val=held.spec, m=held.rows
        )
        return text, train.spec

    def do_delete(spec, typed, lang):
        if not spec or (typed or "").strip() != spec:
            raise ShownError(t("data.delete_mismatch", lang, spec=spec or ""))
        try:
            gone = delete_version(ws, spec)
        except (DataError, OSError) as exc:
            raise ShownError(error_text(exc, lang)) from None
        remaining = version_specs(ws)
        return (
            t("data.deleted", lang, spec=gone.spec),
            "",
            remaining[0] if remaining else None,
        )

    export_btn.click(
        do_export, inputs=[data.version, fmt, ctx.lang], outputs=export_file, api_name="data_export"
    )
    split_btn.click(
        do_split,
        inputs=[data.version, share, seed, ctx.lang],
        outputs=[status, data.created],
        api_name="data_split",
    )
    delete_btn.click(
        do_delete,
        inputs=[data.version, confirm, ctx.lang],
        outputs=[status, confirm, data.created],
        api_name="data_delete",
    )
    return table
