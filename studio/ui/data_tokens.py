"""Data tab, token stores: the datasets encoded for training, their size, and removal.

The work is in `studio.tokens.cache`; this module lays out the list and its two actions.
"""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from studio.i18n import t
from studio.tokens.cache import StoreError, cap_bytes, evict, list_stores, remove_store, tokens_dir
from studio.ui.errors import ShownError, error_text

COLUMNS = (
    "key",
    "data",
    "tokenizer",
    "settings",
    "rows",
    "tokens",
    "size",
    "per_token",
    "used",
    "in_use",
)


def stores_frame(ws, lang: str) -> pd.DataFrame:
    rows = [
        [
            s.key[:12],
            ", ".join(s.sources),
            s.tokenizer.rsplit("/", 1)[-1] if s.tokenizer else "",
            s.made_by_text(),
            s.rows,
            s.tokens,
            round(s.bytes / 2**20, 1),
            round(s.bytes_per_token, 2),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_used)),
            "✓" if s.in_use else "",
        ]
        for s in list_stores(ws)
    ]
    return pd.DataFrame(rows, columns=[t(f"tokens.col_{c}", lang) for c in COLUMNS])


def _gb(size: float) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


def summary(ws, lang: str) -> str:
    stores = list_stores(ws)
    if not stores:
        return t("tokens.none", lang)
    return t(
        "tokens.total",
        lang,
        count=len(stores),
        size=_gb(sum(s.bytes for s in stores)),
        cap=_gb(cap_bytes(ws)),
        path=tokens_dir(ws),
    )


def build_section(data):
    """Lays out the section; returns (refresh function, its inputs, its outputs) for the
    tab that holds it to call when it is opened."""
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    loc.make(gr.Markdown, i18n={"value": "tokens.intro"})
    total = gr.Markdown(summary(ws, loc.lang), elem_id="tokens-summary")
    table = gr.Dataframe(
        stores_frame(ws, loc.lang), interactive=False, wrap=True, elem_id="tokens-table"
    )
    with gr.Row():
        refresh_btn = loc.make(
            gr.Button, i18n={"value": "tokens.refresh"}, elem_id="tokens-refresh"
        )
        pick = loc.make(
            gr.Dropdown,
            i18n={"label": "tokens.pick"},
            choices=[s.key[:12] for s in list_stores(ws)],
            allow_custom_value=True,
            elem_id="tokens-pick",
        )
        remove_btn = loc.make(
            gr.Button, i18n={"value": "tokens.remove"}, variant="stop", elem_id="tokens-remove"
        )
        cap = loc.make(
            gr.Number,
            i18n={"label": "tokens.cap"},
            value=round(cap_bytes(ws) / 2**30, 1),
            minimum=0.1,
            elem_id="tokens-cap",
        )
        cap_btn = loc.make(gr.Button, i18n={"value": "tokens.set_cap"}, elem_id="tokens-set-cap")
    status = gr.Markdown(elem_id="tokens-status")

    def listing(lang):
        keys = [s.key[:12] for s in list_stores(ws)]
        return (
            summary(ws, lang),
            stores_frame(ws, lang),
            gr.update(choices=keys, value=None),
        )

    def do_remove(key, lang):
        if not key:
            raise ShownError(t("tokens.pick", lang))
        try:
            gone = remove_store(ws, key)
        except StoreError as exc:
            raise ShownError(error_text(exc, lang)) from None
        return (t("tokens.removed", lang, store=gone.key[:12]), *listing(lang))

    def do_cap(value, lang):
        if value is None or value <= 0:
            raise ShownError(t("tokens.cap", lang))
        ws.update_meta(token_cache_gb=float(value))
        removed = evict(ws)
        return (t("tokens.cap_set", lang, cap=value, removed=len(removed)), *listing(lang))

    outputs = [total, table, pick]
    refresh_btn.click(listing, inputs=ctx.lang, outputs=outputs, api_name="tokens_list")
    remove_btn.click(
        do_remove, inputs=[pick, ctx.lang], outputs=[status, *outputs], api_name="tokens_remove"
    )
    cap_btn.click(do_cap, inputs=[cap, ctx.lang], outputs=[status, *outputs], api_name="tokens_cap")
    ctx.on_language.append((listing, [ctx.lang], outputs))
    return listing, [ctx.lang], outputs
