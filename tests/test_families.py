"""Real model families: the inspector and the trainer on real tokenizers and the chat
templates their models ship (Qwen2.5, Llama-3.1, Llama-2, Phi-3.5, DeepSeek-LLM), each with a
tiny random-weight model of its vocabulary (tests/real_families.py builds them once from
llama.cpp's vocab-only GGUFs; offline and without a cached copy these tests skip)."""

from __future__ import annotations

import json

import pytest

from studio.data.records import canonical
from studio.labels import diagnose
from studio.labels.encode import IGNORE, EncodingSettings, encode_example, resolve_tokens
from studio.labels.inspect import Target, scan
from studio.labels.view import trained_runs
from tests.real_families import FAMILIES, require
from tests.real_families import tokenizer as family_tokenizer

CHAT_FAMILY = {
    "qwen2.5": "qwen2.5",
    "llama-3.1": "llama-3",
    "llama-2": "llama-2",
    "phi-3.5": "phi-3",
    "deepseek-llm": "deepseek-llm",
}
# What each family's template puts after a reply: the token generation stops on.
END = {
    "qwen2.5": "<|im_end|>",
    "llama-3.1": "<|eot_id|>",
    "llama-2": "</s>",
    "phi-3.5": "<|end|>",
    "deepseek-llm": "<｜end▁of▁sentence｜>",
}


def rows_of(rows) -> list[tuple[int, dict]]:
    return [(i, canonical(r)) for i, r in enumerate(rows)]


def target(name: str) -> Target:
    folder = require(name)
    tok = family_tokenizer(name)
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    return Target.from_tokenizer(tok, name=name, generation_eos_ids=eos)


def codes(report) -> dict:
    return {d.code: d for d in report.diagnostics}


def chat_rows(n: int = 12) -> list[dict]:
    from bench.families import chat_rows as bundled

    return bundled(n)


@pytest.fixture(params=FAMILIES)
def family(request):
    require(request.param)
    return request.param


def test_clean_chat_trains_exactly_each_reply_and_its_end_token(family):
    t = target(family)
    settings = EncodingSettings()
    report = scan(rows_of(chat_rows()), t, settings)
    found = codes(report)
    assert not report.blocked
    assert not [d for d in report.diagnostics if d.severity != diagnose.INFO], found
    assert found["spans_by_rendering"].params["method"] == "rendered"
    assert report.spans == "rendered" and report.trained_tokens > 0
    tok = resolve_tokens(t.tokenizer, settings)
    for i, row in enumerate(chat_rows()):
        enc = encode_example(row, tok, settings, row=i)
        replies = [m["content"].strip() for m in row["messages"] if m["role"] == "assistant"]
        runs = trained_runs(enc)
        assert len(runs) == len(replies)
        for k, (run, reply) in enumerate(zip(runs, replies, strict=True)):
            text = t.tokenizer.decode(run).strip()
            if k == len(runs) - 1 and END[family] != t.tokenizer.eos_token:
                # Phi-3.5's template ends a conversation with EOS after the last <|end|>.
                text = text.removesuffix(t.tokenizer.eos_token).rstrip()
            assert text == reply + END[family] or text == f"{reply} {END[family]}", text
            assert run[-1] in tok.end_ids


def test_typed_end_markers_are_judged_by_this_tokenizers_ids(family):
    t = target(family)
    rows = []
    for row in chat_rows(4):
        messages = [dict(m) for m in row["messages"]]
        messages[-1]["content"] += "</s>"
        rows.append({"messages": messages})
    found = codes(scan(rows_of(rows), t, EncodingSettings()))
    if (
        family == "llama-2" or family == "phi-3.5"
    ):  # its own EOS, which the tokenizer turns into the EOS id
        assert found["special_token_in_text"].params["literal"] == "</s>"
    else:  # another family's end marker: text, and it ends the reply
        assert found["foreign_end_marker"].severity == diagnose.WARNING
    assert "eos_as_text" not in found
    # Inside a reply (HTML strikethrough), another family's marker is nothing at all.
    inside = [{"messages": [*chat_rows(1)[0]["messages"][:-1]]}]
    inside[0]["messages"].append({"role": "assistant", "content": "古い</s>新しい値ですわ。"})
    found = codes(scan(rows_of(inside), t, EncodingSettings()))
    if family in ("llama-2", "phi-3.5"):
        assert "special_token_in_text" in found
    else:
        assert not {"foreign_end_marker", "eos_as_text", "special_token_in_text"} & set(found)


def test_the_field_reports_settings_are_blocked(family):
    """The seed: `</s>` typed into replies, the end-of-turn token as padding with every pad
    id masked, the rendered template tokenized again with the tokenizer's BOS."""
    from bench.families import seed_rows, seed_settings

    t = target(family)
    report = scan(rows_of(seed_rows()), t, seed_settings(t.tokenizer))
    assert report.blocked and codes(report)["eos_masked"].severity == diagnose.ERROR


def test_own_eos_split_into_pieces_is_an_error():
    """The field report: a tokenizer that splits special-token strings found in text makes
    a typed `</s>` the pieces `</`, `s`, `>`; the model learns to print it and never stop."""
    from transformers import AutoTokenizer

    folder = require("llama-2")
    tok = AutoTokenizer.from_pretrained(folder, split_special_tokens=True)
    t = Target.from_tokenizer(tok, generation_eos_ids=[2])
    rows = [{"prompt": "質問: お茶は？\n答え:", "completion": "緑茶ですわ。</s>"}]
    found = codes(scan(rows_of(rows), t, EncodingSettings()))
    assert found["eos_as_text"].severity == diagnose.ERROR
    assert found["eos_as_text"].params["literal"] == "</s>"


def test_typed_bos_inside_a_reply_is_flagged():
    t = target("llama-2")
    row = chat_rows(1)[0]
    messages = [*row["messages"][:-1], {"role": "assistant", "content": "はい<s>そうですわ。"}]
    found = codes(scan(rows_of([{"messages": messages}]), t, EncodingSettings()))
    assert found["special_token_in_text"].params["literal"] == "<s>"


def test_truncation_and_pad_equal_to_eos(family):
    t = target(family)
    short = scan(rows_of(chat_rows()), t, EncodingSettings(max_length=48))
    assert "response_truncated" in codes(short)
    eos = t.tokenizer.eos_token
    settings = EncodingSettings(pad_token=eos)
    report = scan(rows_of(chat_rows()), t, settings)
    found = codes(report)
    if t.tokenizer.convert_tokens_to_ids(eos) in resolve_tokens(t.tokenizer, settings).end_ids:
        assert found["pad_is_eos"].severity == diagnose.INFO
    assert not report.blocked and "eos_masked" not in found


def test_prompt_completion_joins_without_a_seam_token(family):
    """A completion is tokenized after its prompt, not alone: no spurious `▁` at the seam
    on SentencePiece tokenizers, and what trains is what the model must write."""
    t = target(family)
    settings = EncodingSettings()
    tok = resolve_tokens(t.tokenizer, settings)
    rows = [
        {"prompt": "質問: 富士山の高さは？\n答え:", "completion": "3776メートルです。"},
        {"prompt": "Question: What is the capital of Japan?\nAnswer:", "completion": " Tokyo."},
    ]
    report = scan(rows_of(rows), t, settings)
    assert not report.blocked and "leading_space_trained" not in codes(report)
    for i, row in enumerate(rows):
        enc = encode_example(row, tok, settings, row=i)
        whole = t.tokenizer(row["prompt"] + row["completion"], add_special_tokens=False)
        ids = whole["input_ids"]
        trained = [x for x in enc.labels if x != IGNORE]
        assert trained[-1] == tok.eos_id
        assert ids[len(ids) - len(trained) + 1 :] == trained[:-1]  # the end of the joint text
        assert t.tokenizer.decode(trained[:-1]).strip() == row["completion"].strip()
    # A completion that opens with a space before Japanese text trains a lone space token
    # on SentencePiece vocabularies: said so.
    if family in ("llama-2", "phi-3.5"):
        lone = [
            {"prompt": "質問: 富士山の高さは？\n答え:", "completion": " 富士山は3776メートルです。"}
        ]
        assert "leading_space_trained" in codes(scan(rows_of(lone), t, settings))


def test_conversational_prompt_completion_trains_only_the_completion(family):
    t = target(family)
    settings = EncodingSettings()
    tok = resolve_tokens(t.tokenizer, settings)
    row = chat_rows(1)[0]["messages"]
    history = [
        row[0],
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう。"},
        {"role": "user", "content": "お茶はいかが？"},
    ]
    pair = {"prompt": history, "completion": [{"role": "assistant", "content": "いただきますわ。"}]}
    enc = encode_example(canonical(pair), tok, settings)
    runs = trained_runs(enc)
    assert len(runs) == 1  # the earlier assistant turn is prompt
    assert t.tokenizer.decode(runs[0]).strip().startswith("いただきますわ。")
    assert not scan(rows_of([pair]), t, settings).blocked


def test_trl_training_templates_agree_except_the_newlines():
    """Where trl swaps in a training template of its own (Qwen2.5, Phi-3.5), it trains the
    same tokens as the studio, plus the newline after the assistant header and after the
    end-of-turn token (which the model never writes: the prompt holds the first, generation
    stops before the second)."""
    from bench.families import studio_trained, trl_trained

    for name in ("qwen2.5", "phi-3.5"):
        folder = require(name)
        tokenizer = family_tokenizer(name)
        rows = chat_rows(6)
        ours = studio_trained(rows, tokenizer, EncodingSettings())
        theirs = trl_trained(rows, folder, tokenizer, EncodingSettings())
        assert not isinstance(theirs, str), theirs

        def words(ids, tokenizer=tokenizer):
            return [i for i in ids if tokenizer.decode([i]).strip()]

        for a, b in zip(ours, theirs, strict=True):
            assert words(a) == words(b)
            assert len(a) <= len(b)


def test_a_training_template_with_its_own_newline_is_not_drift():
    """trl's Qwen2.5 training template trains the newline the inference prompt already
    holds: the same tokens in the same places, so no template_drift."""
    from studio.labels.spans import trl_training_template

    t = target("qwen2.5")
    training = trl_training_template(t.inference_template)
    assert training is not None
    report = scan(rows_of(chat_rows()), t, EncodingSettings(chat_template=training))
    assert "template_drift" not in codes(report)
    assert not report.blocked


def test_the_model_tab_names_family_end_tokens_and_span_method(family):
    from studio.models.family import describe_family

    folder = require(family)
    tok = family_tokenizer(family)
    model_type = json.loads((folder / "config.json").read_text())["model_type"]
    info = describe_family(tok, tok.chat_template, model_type)
    assert info["family"] == CHAT_FAMILY[family]
    assert END[family] in [e["token"] for e in info["end_tokens"]]
    assert info["spans"] == "rendered"


@pytest.mark.parametrize(
    "preset,name", [("qwen2.5-0.5b-lora", "qwen2.5"), ("llama-3.1-8b-qlora", "llama-3.1")]
)
def test_real_presets_pass_the_check_on_stock_tokenizers(workspace, preset, name):
    from studio.train import presets
    from studio.train.start import preflight

    folder = require(name)
    config, _ = presets.load(preset, [f"model={folder}", "method=lora", "max_length=256"])
    checked = preflight(workspace, config)
    assert checked.scan is not None and not checked.scan.blocked
    assert checked.scan.trained_tokens > 0 and checked.scan.spans == "rendered"


@pytest.mark.parametrize("name", ["llama-2", "qwen2.5"])
def test_a_tiny_real_family_model_trains_from_its_stock_template(workspace, name):
    from bench.families import tiny_run

    sets = ("max_steps=2", "max_length=128", "per_device_train_batch_size=2")
    checked, run, code, losses = tiny_run(workspace, require(name), *sets)
    assert not checked.blocked and checked.scan.trained_tokens > 0
    assert code == 0 and losses and all(loss > 0 for loss in losses)


def test_fixes_do_not_lead_back_to_what_they_fixed():
    """A ChatML template on Qwen2.5 data without a system prompt drifts from Qwen's own
    template (which adds a default system prompt); the fix, Qwen's own template, must not
    bring back template_not_marked (it used to: its fix was the ChatML template again)."""
    from studio.labels import fixes

    t = target("qwen2.5")
    rows = [{"messages": [m for m in r["messages"] if m["role"] != "system"]} for r in chat_rows()]
    settings = EncodingSettings(chat_template=fixes.CHATML_MARKED)
    report = scan(rows_of(rows), t, settings)
    assert "template_drift" in codes(report)
    tok = resolve_tokens(t.tokenizer, settings)
    suggested = fixes.suggest(
        report.diagnostics, tok, settings, inference_template=t.inference_template
    )
    fixed = fixes.apply_settings(settings, suggested)
    assert fixed.chat_template is None  # the model's own template
    after = codes(scan(rows_of(rows), t, fixed))
    assert not {"template_drift", "template_not_marked", "no_trained_tokens"} & set(after)


def test_a_template_that_rewrites_turns_falls_back_to_trls_training_template():
    """Qwen3's template drops earlier turns' thinking, so rendering cannot read it; trl
    ships a training variant with generation markers, which is used instead and said so."""
    from pathlib import Path

    import trl

    from studio.labels.spans import trl_training_template

    qwen3 = (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text("utf-8")
    assert trl_training_template(qwen3)
    t = target("qwen2.5")
    settings = EncodingSettings(chat_template=qwen3)
    tok = resolve_tokens(t.tokenizer, settings)
    assert tok.spans.method == "trl"
    turns = [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4."},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "<think>\nadd again\n</think>\n\n6."},
    ]
    enc = encode_example({"messages": turns}, tok, settings)
    assert enc.spans == "trl"
    texts = [t.tokenizer.decode(run) for run in trained_runs(enc)]
    assert [x.strip().endswith(("4.<|im_end|>", "6.<|im_end|>")) for x in texts] == [True, True]
    report = scan(rows_of([{"messages": turns}]), t, settings)
    assert codes(report)["spans_by_rendering"].params["method"] == "trl"
    assert report.spans == "trl" and not report.blocked
