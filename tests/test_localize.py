"""The language switch: every bound label and every tab's redrawn result in one event."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.ui.data_tab import counts_text
from studio.ui.localize import LanguageSwitch, Localizer


def build():
    loc = Localizer()
    with gr.Blocks():
        lang = gr.Radio(["ja", "en"], value="en")
        button = loc.make(gr.Button, i18n={"value": "model.load"})
        table = loc.make(gr.Dataframe, i18n={"label": "runs.summary"})
        state = gr.State({"n": 3})
        note = gr.Markdown()
        handlers = [
            (lambda s, lang: f"{lang}:{s['n']}", [state, lang], [note]),
            (lambda lang: pd.DataFrame({lang: [1]}), [lang], [table]),  # also bound: merged
        ]
        switch = LanguageSwitch(loc, lang, handlers)
    return switch, button, table, state, note


def test_one_event_updates_labels_and_results_and_merges_both_on_one_component():
    switch, button, table, state, note = build()
    assert switch.inputs == [state]  # the language itself is not an input twice
    assert switch.outputs[:2] == [button, table] and switch.outputs[2] is note
    updates = switch.redraw("ja", {"n": 3})
    assert updates[0]["value"] == "読み込む"
    assert updates[1]["label"] and updates[1]["label"] != "runs.summary"  # the label...
    assert list(updates[1]["value"].columns) == ["ja"]  # ...and the redrawn value, together
    assert updates[2]["value"] == "ja:3"


def test_the_first_language_redraws_only_when_it_differs_from_the_built_one():
    switch, *_ = build()
    same = switch.initial("en", {"n": 1})
    assert same[0] == "en" and all(u == gr.skip() for u in same[1:])
    other = switch.initial("ja", {"n": 1})
    assert other[0] == "ja" and other[1]["value"] == "読み込む" and other[3]["value"] == "ja:1"


def test_counts_read_as_words_in_both_languages():
    counts = {"in": 1200, "out": 1000, "removed": {"min_length": 150, "mojibake": 50}}
    assert (
        counts_text(counts, "en") == "in 1,200 · out 1,000 · removed: min_length 150, mojibake 50"
    )
    ja = counts_text(counts, "ja")
    assert ja.startswith("入力 1,200 · 出力 1,000 · 除去: min_length 150")
    assert counts_text({"new_key": 3}, "en") == "new_key 3"  # an unknown key shows as written
    assert counts_text(None, "ja") == ""
