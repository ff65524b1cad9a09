"""Data tab, deduplication section: settings, Run, and the duplicate clusters side by side.

The work is in `studio.data.dedup` (`dedup_version`, `cluster_view`); this module lays out
the components and renders a page of clusters as HTML.
"""

from __future__ import annotations

import html

import gradio as gr

from studio.data.dedup import (
    DEFAULT_SHINGLE,
    DEFAULT_THRESHOLD,
    DedupSettings,
    cluster_view,
    dedup_version,
)
from studio.data.store import DataError
from studio.i18n import t
from studio.ui.errors import ShownError, error_text

API_DEDUP = "data_dedup"
PER_PAGE = 10  # clusters a page
MAX_MEMBERS = 5  # removed documents shown per cluster

CSS = (
    "<style>"
    ".dd-table{width:100%;border-collapse:collapse;table-layout:fixed}"
    ".dd-table td{vertical-align:top;border-top:1px solid var(--border-color-primary);"
    "padding:6px;width:50%}"
    ".dd-text{white-space:pre-wrap;font-size:0.9em;max-height:16em;overflow:auto}"
    ".dd-head{font-weight:600;margin-bottom:4px}"
    ".dd-badge{display:inline-block;border-radius:4px;padding:0 6px;margin-left:6px;"
    "background:var(--neutral-200);color:var(--neutral-800);font-size:0.85em}"
    ".dd-member{margin-bottom:8px}"
    "</style>"
)


def _doc_head(m: dict, lang: str) -> str:
    row = t("data_dedup.row", lang, row=m["index"] + 1)
    return f"{html.escape(str(m['id']))} <small>({html.escape(row)})</small>"


def render_clusters(view: dict | None, total: int, lang: str) -> str:
    """A page of clusters: the kept document on the left, the removed ones on the right,
    each with its kind and its Jaccard similarity to the kept one."""
    if view is None:
        return f"<p>{html.escape(t('data_dedup.not_run', lang))}</p>"
    if not view["clusters"]:
        return f"<p>{html.escape(t('data_dedup.empty', lang))}</p>"
    kept_h, removed_h = t("data_dedup.kept", lang), t("data_dedup.removed", lang)
    rows = []
    for c in view["clusters"]:
        kept = c["kept"]
        left = (
            f'<div class="dd-head">{html.escape(kept_h)}: {_doc_head(kept, lang)}</div>'
            f'<div class="dd-text">{html.escape(kept["text"])}</div>'
        )
        members = []
        for m in c["members"]:
            kind = t(f"data_dedup.kind_{m['kind']}", lang)
            badge = f'<span class="dd-badge">{html.escape(kind)} · J={m["jaccard"]:.3f}</span>'
            members.append(
                f'<div class="dd-member"><div class="dd-head">{html.escape(removed_h)}: '
                f"{_doc_head(m, lang)}{badge}</div>"
                f'<div class="dd-text">{html.escape(m["text"])}</div></div>'
            )
        if c["more"]:
            members.append(f"<div>{html.escape(t('data_dedup.more', lang, count=c['more']))}</div>")
        rows.append(f"<tr><td>{left}</td><td>{''.join(members)}</td></tr>")
    caption = t(
        "data_dedup.page_of",
        lang,
        page=view["page"],
        pages=view["pages"],
        per_page=PER_PAGE,
        total=total,
    )
    return (
        f"{CSS}<p>{html.escape(caption)}</p>"
        f'<table class="dd-table"><tbody>{"".join(rows)}</tbody></table>'
    )


def build_section(data) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    loc.make(gr.Markdown, i18n={"value": "data_dedup.intro"})
    result_state = gr.State(None)  # {"parent", "version", "clusters"} of the last run
    with gr.Row(equal_height=True):
        threshold = loc.make(
            gr.Slider,
            i18n={"label": "data_dedup.threshold", "info": "data_dedup.threshold_info"},
            minimum=0.3,
            maximum=1.0,
            step=0.01,
            value=DEFAULT_THRESHOLD,
            scale=3,
            elem_id="dedup-threshold",
        )
        shingle = loc.make(
            gr.Number,
            i18n={"label": "data_dedup.shingle", "info": "data_dedup.shingle_info"},
            value=DEFAULT_SHINGLE,
            minimum=1,
            maximum=64,
            precision=0,
            scale=2,
            elem_id="dedup-shingle",
        )
        exact_only = loc.make(
            gr.Checkbox,
            i18n={"label": "data_dedup.exact_only"},
            value=False,
            scale=2,
            elem_id="dedup-exact-only",
        )
        run_btn = loc.make(
            gr.Button,
            i18n={"value": "data_dedup.run"},
            variant="primary",
            scale=2,
            elem_id="dedup-run",
        )
    status = gr.Markdown(elem_id="dedup-status")
    with gr.Row(equal_height=True):
        prev_btn = loc.make(gr.Button, i18n={"value": "data_dedup.prev"}, elem_id="dedup-prev")
        page = loc.make(
            gr.Number,
            i18n={"label": "data_dedup.page"},
            value=1,
            minimum=1,
            precision=0,
            elem_id="dedup-page",
        )
        next_btn = loc.make(gr.Button, i18n={"value": "data_dedup.next"}, elem_id="dedup-next")
    clusters = gr.HTML(render_clusters(None, 0, loc.lang), elem_id="dedup-clusters")

    def show(state, page_number, lang):
        if not state:
            return render_clusters(None, 0, lang), 1
        try:
            view = cluster_view(
                ws,
                state["parent"],
                state["clusters"],
                page=int(page_number or 1),
                per_page=PER_PAGE,
                max_members=MAX_MEMBERS,
            )
        except DataError as exc:  # the deduplicated version was deleted meanwhile
            raise ShownError(t("data_dedup.failed", lang, error=error_text(exc, lang))) from None
        return render_clusters(view, len(state["clusters"]), lang), view["page"]

    def run(spec, thr, n, exact, lang, progress=gr.Progress()):  # noqa: B008
        if not spec:
            raise ShownError(t("data_dedup.no_version", lang))
        settings = DedupSettings(
            threshold=float(thr), shingle=int(n or DEFAULT_SHINGLE), exact_only=bool(exact)
        )
        try:
            result = dedup_version(
                ws, spec, settings, progress=lambda done, total: progress(done / max(1, total))
            )
        except DataError as exc:
            raise ShownError(t("data_dedup.failed", lang, error=error_text(exc, lang))) from None
        payload = result.to_dict()
        counts = payload["counts"]
        message = t(
            "data_dedup.done",
            lang,
            version=payload["version"],
            parent=payload["parent"],
            rows_in=f"{counts['in']:,}",
            rows_out=f"{counts['out']:,}",
            exact=f"{counts['removed']['exact_duplicate']:,}",
            near=f"{counts['removed']['near_duplicate']:,}",
            clusters=f"{counts['clusters']:,}",
            candidates=f"{counts['candidate_pairs']:,}",
            confirmed=f"{counts['confirmed_pairs']:,}",
            seconds=payload["seconds"],
        )
        state = {
            "parent": payload["parent"],
            "version": payload["version"],
            "clusters": payload["clusters"],
        }
        body, first = show(state, 1, lang)
        return message, body, first, state, payload["version"]

    run_btn.click(
        run,
        inputs=[data.version, threshold, shingle, exact_only, ctx.lang],
        outputs=[status, clusters, page, result_state, data.created],
        api_name=API_DEDUP,
    )
    page.submit(
        show,
        inputs=[result_state, page, ctx.lang],
        outputs=[clusters, page],
        api_visibility="private",
    )
    prev_btn.click(
        lambda state, p, lang: show(state, int(p or 1) - 1, lang),
        inputs=[result_state, page, ctx.lang],
        outputs=[clusters, page],
        api_visibility="private",
    )
    next_btn.click(
        lambda state, p, lang: show(state, int(p or 1) + 1, lang),
        inputs=[result_state, page, ctx.lang],
        outputs=[clusters, page],
        api_visibility="private",
    )
    ctx.on_language.append((show, [result_state, page, ctx.lang], [clusters, page]))
