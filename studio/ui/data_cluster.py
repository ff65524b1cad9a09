"""Data tab, clusters section: cluster a version, read each cluster's size, top terms and
typical documents, set a cap or weight per cluster in the table, and apply them as a new
version.

The work is in `studio.data.cluster` (`cluster_version`, `rules_from_table`,
`balance_version`); this module lays out the components and converts the table.
"""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.data.cluster import (
    DEFAULT_K,
    DEFAULT_SEED,
    MAX_K,
    balance_version,
    cluster_version,
    rules_from_table,
)
from studio.data.store import DataError
from studio.i18n import t
from studio.ui.errors import ShownError, error_text

API_CLUSTER = "data_cluster"
API_BALANCE = "data_balance"
COLUMNS = ["cluster", "size", "share", "terms", "samples", "cap", "weight"]


def clusters_frame(summary: dict | None, lang: str) -> pd.DataFrame:
    headers = [t(f"data_cluster.col_{c}", lang) for c in COLUMNS]
    rows = [
        [
            c["cluster"],
            c["size"],
            f"{c['share']:.1%}",
            ", ".join(c["top_terms"]),
            ", ".join(str(s["id"]) for s in c["samples"]),
            "",
            "",
        ]
        for c in (summary or {}).get("clusters", [])
    ]
    return pd.DataFrame(rows, columns=headers)


def table_rows(frame) -> list[tuple]:
    """(cluster, cap, weight) per row of the edited table (columns by position, so the
    language of the headers does not matter)."""
    if frame is None:
        return []
    if isinstance(frame, pd.DataFrame):
        values = frame.astype(object).where(frame.notna(), None).values.tolist()
    else:  # a dict payload {"headers", "data"} or a list of rows
        values = frame.get("data", []) if isinstance(frame, dict) else list(frame)
    cap_at, weight_at = COLUMNS.index("cap"), COLUMNS.index("weight")
    return [(r[0], r[cap_at], r[weight_at]) for r in values if r and r[0] not in (None, "")]


def samples_markdown(summary: dict | None, cluster, lang: str) -> str:
    for c in (summary or {}).get("clusters", []):
        if str(c["cluster"]) == str(cluster):
            head = t("data_cluster.samples_title", lang, cluster=c["cluster"], size=c["size"])
            items = [
                f"- **{html.escape(str(s['id']))}**: {html.escape(s['preview'])}"
                for s in c["samples"]
            ]
            return f"**{head}**\n\n" + "\n".join(items)
    return ""


def counts_frame(counts: dict | None, lang: str) -> pd.DataFrame:
    headers = [t(f"data_cluster.col_{c}", lang) for c in ("cluster", "before", "after")]
    rows = [
        [int(c), n["before"], n["after"]] for c, n in (counts or {}).get("clusters", {}).items()
    ]
    return pd.DataFrame(rows, columns=headers)


def build_section(data) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    loc.make(gr.Markdown, i18n={"value": "data_cluster.intro"})
    summary_state = gr.State(None)  # Clustering.summary() of the last run
    counts_state = gr.State(None)  # counts of the last balance
    with gr.Row(equal_height=True):
        k = loc.make(
            gr.Number,
            i18n={"label": "data_cluster.k", "info": "data_cluster.k_info"},
            value=DEFAULT_K,
            minimum=2,
            maximum=MAX_K,
            precision=0,
            scale=2,
            elem_id="cluster-k",
        )
        seed = loc.make(
            gr.Number,
            i18n={"label": "data_cluster.seed"},
            value=DEFAULT_SEED,
            precision=0,
            scale=1,
            elem_id="cluster-seed",
        )
        run_btn = loc.make(
            gr.Button,
            i18n={"value": "data_cluster.run"},
            variant="primary",
            scale=2,
            elem_id="cluster-run",
        )
    status = gr.Markdown(elem_id="cluster-status")
    table = loc.make(
        gr.Dataframe,
        i18n={"label": "data_cluster.table"},
        value=clusters_frame(None, loc.lang),
        interactive=True,
        wrap=True,
        column_widths=["7%", "7%", "7%", "34%", "25%", "10%", "10%"],
        elem_id="cluster-table",
    )
    pick = loc.make(
        gr.Dropdown,
        i18n={"label": "data_cluster.pick"},
        choices=[],
        value=None,
        elem_id="cluster-pick",
    )
    samples = gr.Markdown(elem_id="cluster-samples")
    with gr.Row(equal_height=True):
        balance_seed = loc.make(
            gr.Number,
            i18n={"label": "data_cluster.balance_seed"},
            value=DEFAULT_SEED,
            precision=0,
            scale=1,
            elem_id="cluster-balance-seed",
        )
        apply_btn = loc.make(
            gr.Button,
            i18n={"value": "data_cluster.apply"},
            variant="primary",
            scale=2,
            elem_id="cluster-apply",
        )
    balance_status = gr.Markdown(elem_id="cluster-balance-status")
    counts_table = loc.make(
        gr.Dataframe,
        i18n={"label": "data_cluster.counts"},
        value=counts_frame(None, loc.lang),
        interactive=False,
        elem_id="cluster-counts",
    )

    def run(spec, k_value, seed_value, lang, progress=gr.Progress()):  # noqa: B008
        if not spec:
            raise ShownError(t("data_cluster.no_version", lang))
        try:
            result = cluster_version(
                ws,
                spec,
                k=int(k_value or DEFAULT_K),
                seed=int(seed_value or 0),
                progress=lambda done, total: progress(done / max(1, total)),
            )
        except DataError as exc:
            raise ShownError(t("data_cluster.failed", lang, error=error_text(exc, lang))) from None
        summary = result.summary()
        message = t(
            "data_cluster.done",
            lang,
            version=result.version,
            rows=f"{result.rows:,}",
            k=result.k,
            seconds=summary["seconds"],
            path=str(result.path.relative_to(ws.root)),
        )
        biggest = max(result.clusters, key=lambda c: c.size).cluster
        return (
            message,
            clusters_frame(summary, lang),
            gr.update(choices=[c.cluster for c in result.clusters], value=biggest),
            samples_markdown(summary, biggest, lang),
            summary,
        )

    def apply(summary, frame, seed_value, lang):
        if not summary:
            raise ShownError(t("data_cluster.not_clustered", lang))
        try:
            caps, weights = rules_from_table(table_rows(frame), summary["k"])
            if not caps and not weights:
                raise ShownError(t("data_cluster.no_rules", lang))
            result = balance_version(
                ws,
                summary["dataset"],
                caps=caps,
                weights=weights,
                seed=int(seed_value or 0),
                k=summary["k"],
            )
        except DataError as exc:
            raise ShownError(
                t("data_cluster.balance_failed", lang, error=error_text(exc, lang))
            ) from None
        message = t(
            "data_cluster.balanced",
            lang,
            version=result.version.spec,
            parent=result.parent,
            rows_in=f"{result.counts['in']:,}",
            rows_out=f"{result.counts['out']:,}",
        )
        return message, counts_frame(result.counts, lang), result.counts, result.version.spec

    run_btn.click(
        run,
        inputs=[data.version, k, seed, ctx.lang],
        outputs=[status, table, pick, samples, summary_state],
        api_name=API_CLUSTER,
    )
    apply_btn.click(
        apply,
        inputs=[summary_state, table, balance_seed, ctx.lang],
        outputs=[balance_status, counts_table, counts_state, data.created],
        api_name=API_BALANCE,
    )
    pick.change(
        samples_markdown,
        inputs=[summary_state, pick, ctx.lang],
        outputs=samples,
        api_visibility="private",
    )

    def relabel(summary, frame, cluster, counts, lang):
        """The same tables in the new language, keeping the caps and weights typed in."""
        fresh = clusters_frame(summary, lang)
        typed = table_rows(frame)
        if len(typed) == len(fresh):
            fresh.iloc[:, COLUMNS.index("cap")] = [r[1] if r[1] is not None else "" for r in typed]
            fresh.iloc[:, COLUMNS.index("weight")] = [
                r[2] if r[2] is not None else "" for r in typed
            ]
        return fresh, samples_markdown(summary, cluster, lang), counts_frame(counts, lang)

    ctx.on_language.append(
        (
            relabel,
            [summary_state, table, pick, counts_state, ctx.lang],
            [table, samples, counts_table],
        )
    )
