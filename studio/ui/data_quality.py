"""The Data tab's quality step: label documents good/noise (keyboard friendly), train a
fastText classifier, pick a threshold while watching which documents flip, apply it.

The work is in `studio.data.quality`; the handlers here are thin and module-level (they
take the workspace first) so that tests can call them without a browser.

Keyboard: Gradio has no per-section key bindings, so `KEYBOARD_JS` (pass it to
`launch(js=...)`; it is a function expression) listens on the document and, while the
labeling panel is visible and the focus is not in a text field, turns g/1, n/2, s and b
into clicks on the Good, Noise, Skip and Back buttons.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.data import quality as q
from studio.i18n import t
from studio.ui.errors import ShownError, error_text
from studio.ui.keys import keyboard_js
from studio.ui.localize import relabeled
from studio.ui.pickers import keep_current

API_TRAIN = "data_classifier_train"
API_SCORE = "data_classifier_score"
API_APPLY = "data_classify"
FLIP_SAMPLE = 12
SNIPPET = 160
SHOWN_CHARS = 20_000  # the labeling view shows at most this much of a document

PANEL_ID = "quality-label-panel"
KEY_BUTTONS = {
    "g": "quality-good",
    "1": "quality-good",
    "n": "quality-noise",
    "2": "quality-noise",
    "s": "quality-skip",
    "b": "quality-back",
}

KEYBOARD_JS = keyboard_js("__tsumugiQualityKeys", KEY_BUTTONS, PANEL_ID)


# --- rendering ---------------------------------------------------------------------------


def render_counts(ws, spec: str | None, lang: str) -> str:
    if not spec:
        return ""
    try:
        dataset = q.resolve(ws, spec).name
        counts = q.label_counts(q.load_labels(ws, dataset))
    except q.DataError as exc:
        return t("data_quality.error", lang, error=exc)
    text = t("data_quality.counts", lang, dataset=dataset, **counts)
    need = q.labels_missing(counts)
    if any(need.values()):
        return text + t(
            "data_quality.counts_need",
            lang,
            min=q.MIN_PER_CLASS,
            need_good=need["good"],
            need_noise=need["noise"],
        )
    return text + t("data_quality.counts_ready", lang)


def render_document(ws, queue: dict | None, lang: str) -> tuple[str, str]:
    """(info line, text) of the document the queue is on."""
    if not queue:
        return t("data_quality.not_started", lang), ""
    index = q.queue_current(queue)
    if index is None:
        return t("data_quality.all_done", lang), ""
    try:
        doc = q.get_document(ws, queue["spec"], index)
        label = q.load_labels(ws, queue["dataset"]).get(doc.key, {}).get("label")
    except q.DataError as exc:  # the version was deleted meanwhile, or the labels damaged
        return t("data_quality.error", lang, error=exc), ""
    info = t(
        "data_quality.doc_info",
        lang,
        index=doc.index,
        id=doc.id if doc.id is not None else doc.key,
        chars=f"{doc.chars:,}",
        label=t(f"data_quality.label_{label}", lang)
        if label
        else t("data_quality.unlabeled", lang),
    )
    scores = queue.get("scores")
    if scores is not None:
        info += t("data_quality.doc_score", lang, score=f"{float(scores[index]):.3f}")
    text = doc.text if len(doc.text) <= SHOWN_CHARS else doc.text[:SHOWN_CHARS] + " …"
    return info, text


def figures_frame(meta: dict | None, lang: str) -> pd.DataFrame:
    columns = ["class", "precision", "recall", "f1", "support"]
    rows = []
    if meta:
        for cls in q.LABELS:
            m = meta["heldout"][cls]
            rows.append(
                [
                    t(f"data_quality.label_{cls}", lang),
                    m["precision"],
                    m["recall"],
                    m["f1"],
                    m["support"],
                ]
            )
    return pd.DataFrame(rows, columns=[t(f"data_quality.col_{c}", lang) for c in columns])


def render_trained(meta: dict, lang: str) -> str:
    held = meta["heldout"]
    return t(
        "data_quality.trained",
        lang,
        name=meta["name"],
        seconds=meta["seconds"],
        good=meta["labels"]["good"],
        noise=meta["labels"]["noise"],
        held=held["n"],
        share=round(100 * meta["settings"]["holdout"]),
        accuracy=held["accuracy"],
    )


def histogram_frame(scores, lang: str) -> pd.DataFrame:
    bins = q.score_histogram(scores) if len(scores) else []
    rows = [[f"{lo:.1f}–{hi:.1f}", n] for lo, hi, n in bins]
    return pd.DataFrame(rows, columns=[t("data_quality.col_score", lang), "n"])


def relabel_flips(shown, lang: str) -> pd.DataFrame:
    """The flips table on the page, in `lang`: its headers and its now-kept/dropped words
    (the documents it shows stay; redrawing them would need the previous threshold)."""
    fresh = relabeled(shown, list(flips_frame(None, None, None, lang).columns))
    words = {}
    for key in ("data_quality.now_kept", "data_quality.now_dropped"):
        for other in ("ja", "en"):
            words[t(key, other)] = t(key, lang)
    return fresh.map(lambda cell: words.get(cell, cell) if isinstance(cell, str) else cell)


def render_threshold(ws, scored: dict | None, spec: str, threshold, previous, lang: str):
    """(summary markdown, flips table) for `threshold`, flips counted from `previous`."""
    empty = flips_frame(ws, None, None, lang)
    if not scored:
        return t("data_quality.no_scores", lang), empty
    if scored["spec"] != spec:
        return t("data_quality.stale_scores", lang, scored=scored["spec"], spec=spec), empty
    scores = scored["scores"]
    threshold = round(float(threshold), 4)
    summary = q.threshold_summary(scores, threshold)
    text = t(
        "data_quality.summary",
        lang,
        threshold=threshold,
        model=scored["model"],
        spec=scored["spec"],
        kept=f"{summary['kept']:,}",
        dropped=f"{summary['dropped']:,}",
        total=f"{summary['total']:,}",
    )
    if previous is None:
        return text, empty
    previous = round(float(previous), 4)
    flipped = q.flips(scores, previous, threshold)
    if flipped.count == 0:
        key = "data_quality.flipped_none"
    else:
        key = "data_quality.flipped_kept" if flipped.now_kept else "data_quality.flipped_dropped"
    text += "  \n" + t(key, lang, previous=previous, threshold=threshold, count=flipped.count)
    return text, flips_frame(ws, scored, flipped, lang)


def flips_frame(ws, scored: dict | None, flipped: q.Flips | None, lang: str) -> pd.DataFrame:
    columns = ["row", "id", "score", "now", "text"]
    rows = []
    if scored and flipped is not None and flipped.count:
        now = t("data_quality.now_kept" if flipped.now_kept else "data_quality.now_dropped", lang)
        for index in q.sample_evenly(flipped.indices, FLIP_SAMPLE):
            doc = q.get_document(ws, scored["spec"], int(index))
            snippet = " ".join(doc.text.split())[:SNIPPET]
            score = round(float(scored["scores"][index]), 4)
            rows.append([doc.index, doc.id or "", score, now, snippet])
    return pd.DataFrame(rows, columns=[t(f"data_quality.col_{c}", lang) for c in columns])


def model_names(ws) -> list[str]:
    return [m["name"] for m in q.list_classifiers(ws)]


# --- handlers (module level: tests call them) --------------------------------------------


def _spec_or_error(spec, lang: str) -> str:
    if not spec:
        raise ShownError(t("data_quality.no_version", lang))
    return spec


def _gr_error(exc: Exception, lang: str) -> ShownError:
    return ShownError(t("data_quality.error", lang, error=error_text(exc, lang)))


def start_labeling(ws, spec, order, seed, model, lang):
    """A fresh queue over the version; shows its first unlabeled document."""
    spec = _spec_or_error(spec, lang)
    if order == "uncertain" and not model:
        raise ShownError(t("data_quality.uncertain_needs_model", lang))
    try:
        queue = q.new_queue(ws, spec, order or "random", int(seed or 0), model or None)
        if order == "uncertain":
            queue["scores"] = q.score_version(ws, spec, model)
        q.queue_next(ws, queue)
        info, text = render_document(ws, queue, lang)
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    return queue, info, text, render_counts(ws, spec, lang)


def label_step(ws, action: str, queue, spec, order, seed, model, lang):
    """One button: `good`/`noise` label the current document and move on, `skip` moves on,
    `back` returns to the previous one, `clear` removes the current label and stays.
    Without a queue for the selected version, labeling starts (nothing is labelled)."""
    spec = _spec_or_error(spec, lang)
    try:
        resolved = q.resolve(ws, spec).spec
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    if not queue or queue.get("spec") != resolved:
        return start_labeling(ws, spec, order, seed, model, lang)
    try:
        q.label_action(ws, spec, queue, action)  # the labeller's steps (data/quality.py)
        info, text = render_document(ws, queue, lang)
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    return queue, info, text, render_counts(ws, spec, lang)


def train(ws, spec, name, tokenize, lang):
    """Train on the labels of the version's dataset; returns (figures, message, meta)."""
    spec = _spec_or_error(spec, lang)
    try:
        dataset = q.resolve(ws, spec).name
        if (name or "").strip():  # a bad name is said first, before the labels are counted
            q.check_model_name(name.strip())
        q.check_enough(q.label_counts(q.load_labels(ws, dataset)))
        meta = q.train_classifier(
            ws,
            spec,
            name=(name or "").strip() or None,
            settings=q.TrainSettings(tokenize=tokenize or "chars"),
        )
    except q.DataError as exc:
        if exc.code == "too_few_labels":  # said in the page's language
            raise ShownError(t("data_quality.too_few", lang, **exc.params)) from None
        raise _gr_error(exc, lang) from None
    return figures_frame(meta, lang), render_trained(meta, lang), meta


def score(ws, spec, model, threshold, lang):
    """Scores of every document of the version; returns (scored state, summary, flips,
    histogram). The slider's "previous" value becomes the current threshold."""
    spec = _spec_or_error(spec, lang)
    if not model:
        raise ShownError(t("data_quality.no_model", lang))
    try:
        version = q.resolve(ws, spec)
        scores = q.score_version(ws, version, model)
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    scored = {"spec": version.spec, "model": model, "scores": scores}
    summary, flips = render_threshold(ws, scored, version.spec, threshold, None, lang)
    return scored, summary, flips, histogram_frame(scores, lang)


def move_threshold(ws, scored, spec, threshold, previous, lang):
    """(summary, flips, new previous) when the slider is let go."""
    try:
        spec = q.resolve(ws, spec).spec if spec else ""
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    summary, flips = render_threshold(ws, scored, spec, threshold, previous, lang)
    return summary, flips, float(threshold)


def apply(ws, spec, model, threshold, lang):
    """Write the new version; returns (message, its spec)."""
    spec = _spec_or_error(spec, lang)
    if not model:
        raise ShownError(t("data_quality.no_model", lang))
    try:
        done = q.apply_classifier(ws, spec, model, float(threshold))
    except q.DataError as exc:
        raise _gr_error(exc, lang) from None
    message = t(
        "data_quality.applied",
        lang,
        spec=done.spec,
        parent=done.parent,
        kept=f"{done.counts['out']:,}",
        total=f"{done.counts['in']:,}",
        model=model,
        threshold=float(threshold),
        seconds=done.seconds,
    )
    return message, done.spec


# --- layout ------------------------------------------------------------------------------


def build_section(data) -> None:
    ctx, loc = data.ctx, data.loc
    ws = ctx.workspace
    names = model_names(ws)
    loc.make(gr.Markdown, i18n={"value": "data_quality.intro"})

    # 1. labeling
    loc.make(gr.Markdown, i18n={"value": "data_quality.label_title"})
    with gr.Group(elem_id=PANEL_ID):
        with gr.Row(equal_height=True):
            order = loc.make(
                gr.Radio,
                i18n={
                    "label": "data_quality.order",
                    "choices": lambda lang: [
                        (t("data_quality.order_random", lang), "random"),
                        (t("data_quality.order_uncertain", lang), "uncertain"),
                    ],
                },
                value="random",
                scale=3,
                elem_id="quality-order",
            )
            seed = loc.make(
                gr.Number,
                i18n={"label": "data_quality.seed"},
                value=0,
                precision=0,
                minimum=0,
                scale=1,
                elem_id="quality-seed",
            )
            order_model = loc.make(
                gr.Dropdown,
                i18n={"label": "data_quality.order_model"},
                choices=names,
                value=names[0] if names else None,
                scale=2,
                elem_id="quality-order-model",
            )
            start_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.start"}, scale=1, elem_id="quality-start"
            )
        doc_info = gr.Markdown(t("data_quality.not_started", loc.lang), elem_id="quality-doc-info")
        doc_text = loc.make(
            gr.Textbox,
            i18n={"label": "data_quality.doc_text"},
            lines=10,
            max_lines=24,
            interactive=False,
            elem_id="quality-doc-text",
        )
        with gr.Row():
            good_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.good"}, variant="primary",
                elem_id="quality-good",
            )  # fmt: skip
            noise_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.noise"}, variant="stop",
                elem_id="quality-noise",
            )  # fmt: skip
            skip_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.skip"}, elem_id="quality-skip"
            )
            back_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.back"}, elem_id="quality-back"
            )
            clear_btn = loc.make(
                gr.Button, i18n={"value": "data_quality.clear"}, elem_id="quality-clear"
            )
        counts = gr.Markdown(
            render_counts(ws, data.version.value, loc.lang), elem_id="quality-counts"
        )
    queue = gr.State(None)

    # 2. training
    loc.make(gr.Markdown, i18n={"value": "data_quality.train_title"})
    with gr.Row(equal_height=True):
        model_name = loc.make(
            gr.Textbox,
            i18n={"label": "data_quality.model_name", "info": "data_quality.model_name_info"},
            scale=2,
            elem_id="quality-model-name",
        )
        tokenize = loc.make(
            gr.Radio,
            i18n={
                "label": "data_quality.tokenize",
                "info": "data_quality.tokenize_info",
                "choices": lambda lang: [
                    (t("data_quality.tokenize_chars", lang), "chars"),
                    (t("data_quality.tokenize_words", lang), "words"),
                ],
            },
            value="chars",
            scale=3,
            elem_id="quality-tokenize",
        )
        train_btn = loc.make(
            gr.Button,
            i18n={"value": "data_quality.train"},
            variant="primary",
            scale=1,
            elem_id="quality-train",
        )
    train_status = gr.Markdown(elem_id="quality-train-status")
    figures = loc.make(
        gr.Dataframe,
        i18n={"label": "data_quality.figures"},
        value=figures_frame(None, loc.lang),
        interactive=False,
        elem_id="quality-figures",
    )
    trained_meta = gr.State(None)

    # 3. threshold and apply
    loc.make(gr.Markdown, i18n={"value": "data_quality.apply_title"})
    with gr.Row(equal_height=True):
        model = loc.make(
            gr.Dropdown,
            i18n={"label": "data_quality.model"},
            choices=names,
            value=names[0] if names else None,
            scale=3,
            elem_id="quality-model",
        )
        score_btn = loc.make(
            gr.Button, i18n={"value": "data_quality.score"}, scale=1, elem_id="quality-score"
        )
    threshold = loc.make(
        gr.Slider,
        i18n={"label": "data_quality.threshold"},
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        value=0.5,
        elem_id="quality-threshold",
    )
    summary = gr.Markdown(elem_id="quality-summary")
    with gr.Row():
        histogram = loc.make(
            gr.Dataframe,
            i18n={"label": "data_quality.histogram"},
            value=histogram_frame([], loc.lang),
            interactive=False,
            scale=1,
            elem_id="quality-histogram",
        )
        flips = loc.make(
            gr.Dataframe,
            i18n={"label": "data_quality.flips"},
            value=flips_frame(ws, None, None, loc.lang),
            interactive=False,
            wrap=True,
            scale=4,
            elem_id="quality-flips",
        )
    apply_btn = loc.make(
        gr.Button, i18n={"value": "data_quality.apply"}, variant="primary", elem_id="quality-apply"
    )
    apply_status = gr.Markdown(elem_id="quality-apply-status")
    scored = gr.State(None)
    previous = gr.State(0.5)

    # --- events
    label_inputs = [queue, data.version, order, seed, order_model, ctx.lang]
    label_outputs = [queue, doc_info, doc_text, counts]
    start_btn.click(
        lambda spec, o, s, m, lang: start_labeling(ws, spec, o, s, m, lang),
        inputs=label_inputs[1:],
        outputs=label_outputs,
        api_visibility="private",
    )
    for button, action in (
        (good_btn, "good"),
        (noise_btn, "noise"),
        (skip_btn, "skip"),
        (back_btn, "back"),
        (clear_btn, "clear"),
    ):
        button.click(
            lambda qu, spec, o, s, m, lang, _action=action: label_step(
                ws, _action, qu, spec, o, s, m, lang
            ),
            inputs=label_inputs,
            outputs=label_outputs,
            api_visibility="private",
            trigger_mode="once",  # a second key press never labels a document not yet seen
        )

    def on_train(spec, name, tok, lang):
        frame, message, meta = train(ws, spec, name, tok, lang)
        choices = model_names(ws)
        # Two update objects: Gradio consumes an update's fields as it applies them.
        return (
            frame,
            message,
            meta,
            gr.update(choices=choices, value=meta["name"]),
            gr.update(choices=choices, value=meta["name"]),
        )

    train_btn.click(
        on_train,
        inputs=[data.version, model_name, tokenize, ctx.lang],
        outputs=[figures, train_status, trained_meta, model, order_model],
        api_name=API_TRAIN,
    )
    score_btn.click(
        lambda spec, m, thr, lang: (*score(ws, spec, m, thr, lang), float(thr)),
        inputs=[data.version, model, threshold, ctx.lang],
        outputs=[scored, summary, flips, histogram, previous],
        api_name=API_SCORE,
    )
    threshold.release(
        lambda sc, spec, thr, prev, lang: move_threshold(ws, sc, spec, thr, prev, lang),
        inputs=[scored, data.version, threshold, previous, ctx.lang],
        outputs=[summary, flips, previous],
        api_visibility="private",
    )
    apply_btn.click(
        lambda spec, m, thr, lang: apply(ws, spec, m, thr, lang),
        inputs=[data.version, model, threshold, ctx.lang],
        outputs=[apply_status, data.created],
        api_name=API_APPLY,
    )

    for picker in (model, order_model):
        keep_current(picker, lambda: model_names(ws))
    data.version.change(
        lambda spec, lang: (None, t("data_quality.not_started", lang), "", render_counts(
            ws, spec, lang
        )),
        inputs=[data.version, ctx.lang],
        outputs=label_outputs,
        api_visibility="private",
    )  # fmt: skip
    ctx.on_language.append(
        (
            lambda qu, spec, meta, sc, thr, shown, lang: (
                *render_document(ws, qu, lang),
                render_counts(ws, spec, lang),
                figures_frame(meta, lang),
                render_trained(meta, lang) if meta else "",
                histogram_frame(sc["scores"] if sc else [], lang),
                relabel_flips(shown, lang),
            ),
            [queue, data.version, trained_meta, scored, threshold, flips, ctx.lang],
            [doc_info, doc_text, counts, figures, train_status, histogram, flips],
        )
    )
