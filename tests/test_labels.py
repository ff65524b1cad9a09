"""The label inspector library: encoding, packing, collation, diagnostics, fixes, profiles
and the token view, on tiny byte-level BPE tokenizers trained inside the tests (no
downloads) and on the bundled tsumugi-tiny tokenizer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio.labels import diagnose, fixes, profiles, view
from studio.labels.encode import (
    IGNORE,
    Collator,
    EncodingSettings,
    encode_example,
    pack,
    resolve_tokens,
)
from studio.labels.inspect import (
    Target,
    examples_of,
    inspect_rows,
    load_target,
    scan,
    suggest_fixes,
)
from tests.conftest import REPO

CHAT = REPO / "assets" / "data" / "chat_ojousama.jsonl"
TEMPLATE = (REPO / "assets" / "models" / "tsumugi-tiny" / "chat_template.jinja").read_text(
    encoding="utf-8"
)
GEN_OPEN, GEN_CLOSE = "{% generation %}", "{% endgeneration %}"
# The same ChatML template without generation markers: assistant turns are found by
# rendering it.
UNMARKED = TEMPLATE.replace(GEN_OPEN, "").replace(GEN_CLOSE, "")
# Unmarked, and it rewrites earlier replies (as some reasoning templates drop earlier
# thinking): rendering cannot find the assistant turns either.
REWRITES = UNMARKED.replace(
    "message['content']", "(message['content'] if loop.last else message['content'][:2])"
)
# The role header of assistant turns inside the generation block: boilerplate is trained.
HEADER_INSIDE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ '<|im_start|>assistant\\n' + message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Everything inside the generation block: the prompt is trained too.
ALL_TRAINED = (
    "{{ bos_token }}{% generation %}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% endgeneration %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Marked, but renders without BOS: differs from what the tokenizer's own template builds.
NO_BOS = TEMPLATE.replace("{{ bos_token }}", "")
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
KANA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def chat_rows() -> list[tuple[int, dict]]:
    return list(examples_of(CHAT))


def training_lines() -> list[str]:
    lines = []
    for _, data in chat_rows():
        lines += [m["content"] for m in data["messages"]]
    english = [
        "The quick brown fox jumps over the lazy dog.",
        "### Instruction: say hello\n### Response: hello world",
        "Answer: the capital of Japan is Tokyo.",
        "system user assistant",
    ]
    return lines + english * 20


def build_tokenizer(*, eos: str = "</s>", template: str = TEMPLATE):
    """A byte-level BPE (vocabulary 500: most Japanese characters stay byte pieces) with a
    BOS-adding post-processor, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = [eos if s == "</s>" else s for s in SPECIALS]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(training_lines(), trainer)
    return wrap(core, eos=eos, pad="<pad>", template=template)


def wrap(core, *, eos: str = "</s>", pad: str | None = None, template: str = TEMPLATE):
    """A trained `tokenizers.Tokenizer` with a BOS-adding post-processor, as a transformers
    fast tokenizer with ChatML's special tokens and `template`."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    bos = core.token_to_id("<s>")
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token=eos,
        pad_token=pad,
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tok.chat_template = template
    return tok


@pytest.fixture(scope="module")
def kit():
    for needle in (GEN_OPEN, GEN_CLOSE, "{{ bos_token }}"):
        assert needle in TEMPLATE
    clean = build_tokenizer()
    # `</s>` is not special here: typed in the data it is a string of ordinary pieces.
    text_eos = build_tokenizer(eos="<|endoftext|>")
    unmarked = build_tokenizer(template=UNMARKED)
    rewrites = build_tokenizer(template=REWRITES)
    # Splits special-token strings found in text: a typed `</s>` becomes `</`, `s`, `>`.
    split = build_tokenizer()
    split.split_special_tokens = True
    im_end = clean.convert_tokens_to_ids("<|im_end|>")

    def target(tok=clean, eos_ids="auto"):
        if eos_ids == "auto":  # generation stops on EOS and on the end-of-turn token
            eos_ids = [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]
        return Target.from_tokenizer(tok, generation_eos_ids=eos_ids)

    return SimpleNamespace(
        clean=clean,
        text_eos=text_eos,
        unmarked=unmarked,
        rewrites=rewrites,
        split=split,
        bos=clean.bos_token_id,
        eos=clean.eos_token_id,
        pad=clean.pad_token_id,
        im_end=im_end,
        rows=chat_rows(),
        target=target,
    )


@pytest.fixture(scope="module")
def bundled():
    from studio.models.load import resolve_source

    return load_target(resolve_source(""))


def found(report) -> dict:
    return {d.code: d for d in report.diagnostics}


def chat(*turns, system: str | None = None) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    roles = ["user", "assistant"]
    messages += [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]
    return {"messages": messages}


def numbered(*rows) -> list[tuple[int, dict]]:
    return list(enumerate(rows))


# --- encoding ----------------------------------------------------------------------------


def test_text_row_has_one_bos_an_eos_and_trains_everything(kit):
    enc = encode_example({"text": "hello world"}, kit.clean, EncodingSettings())
    body = kit.clean("hello world", add_special_tokens=False)["input_ids"]
    assert enc.format == "text" and enc.loss == "all"
    assert enc.input_ids == [kit.bos, *body, kit.eos]
    assert enc.input_ids.count(kit.bos) == 1
    assert enc.labels == enc.input_ids
    assert enc.truncated == 0 and enc.full_length == len(enc.input_ids)


def test_eos_is_not_doubled_and_can_be_left_out(kit):
    # `</s>` is special in the clean tokenizer, so the typed one is already the EOS id.
    enc = encode_example({"text": "hello</s>"}, kit.clean, EncodingSettings())
    assert enc.input_ids[-1] == kit.eos and enc.input_ids.count(kit.eos) == 1
    bare = encode_example({"text": "hello"}, kit.clean, EncodingSettings(add_eos=False))
    assert kit.eos not in bare.input_ids and bare.input_ids[0] == kit.bos
    no_special = EncodingSettings(add_special_tokens="no")
    assert kit.bos not in encode_example({"text": "hello"}, kit.clean, no_special).input_ids


def test_prompt_completion_masks_the_prompt(kit):
    row = {"prompt": "富士山の高さは？", "completion": "3776 メートルです。"}
    enc = encode_example(row, kit.clean, EncodingSettings())
    prompt = [kit.bos, *kit.clean(row["prompt"], add_special_tokens=False)["input_ids"]]
    completion = kit.clean(row["completion"], add_special_tokens=False)["input_ids"]
    assert enc.loss == "completion"
    assert enc.input_ids == prompt + completion + [kit.eos]
    assert enc.labels == [IGNORE] * len(prompt) + completion + [kit.eos]
    assert kit.clean.decode([t for t in enc.labels if t != IGNORE]) == row["completion"] + "</s>"
    everything = encode_example(row, kit.clean, EncodingSettings(loss="all"))
    assert everything.labels == everything.input_ids == enc.input_ids
    pretrain = encode_example(row, kit.clean, EncodingSettings(stage="pretrain"))
    assert pretrain.loss == "all" and pretrain.labels == pretrain.input_ids


def test_messages_train_exactly_the_assistant_replies(kit, bundled):
    row = chat(
        "お茶の淹れ方を教えてください。",
        "お湯を少し冷ましてから注ぎますの。",
        "ありがとうございます。",
        "どういたしまして。",
        system="お嬢様として話してください。",
    )
    for tokenizer in (kit.clean, bundled.tokenizer):
        enc = encode_example(row, tokenizer, EncodingSettings())
        assert enc.format == "messages" and enc.loss == "assistant"
        assert enc.input_ids.count(tokenizer.bos_token_id) == 1
        assert enc.input_ids[0] == tokenizer.bos_token_id
        assert view.trained_text(enc, tokenizer) == [
            "お湯を少し冷ましてから注ぎますの。<|im_end|>",
            "どういたしまして。<|im_end|>",
        ]
        text = tokenizer.decode([t for t in enc.labels if t != IGNORE])
        for other in ("お茶", "ありがとう", "お嬢様として", "user", "system", "<s>"):
            assert other not in text
        everything = encode_example(row, tokenizer, EncodingSettings(loss="all"))
        assert everything.labels == everything.input_ids == enc.input_ids


def test_response_template_masks_up_to_and_including_the_marker(kit):
    text = "### Instruction: say hello\n### Response: hello world"
    s = EncodingSettings(response_template="### Response:")
    enc = encode_example({"text": text}, kit.clean, s)
    assert enc.loss == "completion"
    n = next(i for i, label in enumerate(enc.labels) if label != IGNORE)
    assert all(label == IGNORE for label in enc.labels[:n])
    assert enc.labels[n:] == enc.input_ids[n:]
    assert kit.clean.decode(enc.input_ids[:n]) == "<s>### Instruction: say hello\n### Response:"
    assert kit.clean.decode(enc.labels[n:]) == " hello world</s>"
    missing = encode_example({"text": "no marker here"}, kit.clean, s)
    assert missing.trained == 0 and missing.reason == "response_template_not_found"


def test_truncation_right_and_left(kit):
    row = {"prompt": "前置き" * 30, "completion": "答え" * 10}
    full = encode_example(row, kit.clean, EncodingSettings(max_length=4096))
    n_prompt = next(i for i, label in enumerate(full.labels) if label != IGNORE)
    assert full.truncated == 0 and full.full_length == len(full.input_ids)

    # Right: the answer and its EOS are cut off.
    right = encode_example(row, kit.clean, EncodingSettings(max_length=n_prompt + 2))
    assert right.input_ids == full.input_ids[: n_prompt + 2]
    assert right.labels == full.labels[: n_prompt + 2]
    assert right.truncated == len(full.input_ids) - (n_prompt + 2)
    assert right.trained_dropped == full.trained - 2
    assert right.end_dropped is True
    assert right.full_length == len(full.input_ids)

    # Left: only prompt tokens are removed, the answer and its EOS survive.
    keep = full.trained + 5
    left = encode_example(row, kit.clean, EncodingSettings(max_length=keep, truncation_side="left"))
    assert left.input_ids == full.input_ids[-keep:]
    assert left.labels == full.labels[-keep:]
    assert left.trained_dropped == 0 and left.end_dropped is False
    assert left.trained == full.trained and left.input_ids[-1] == kit.eos

    # Truncated until nothing is trained: the encoder says why.
    gone = encode_example(row, kit.clean, EncodingSettings(max_length=8))
    assert gone.trained == 0 and gone.reason == "truncated"


def test_settings_from_dict_round_trip_and_rejections():
    s = EncodingSettings(max_length=256, packing="isolated", pad_token="<pad>")
    assert EncodingSettings.from_dict(s.to_dict()) == s
    assert EncodingSettings.from_dict({"max_length": "64"}).max_length == 64
    assert EncodingSettings.from_dict({"chat_template": "", "pad_token": ""}).pad_token is None
    assert EncodingSettings.from_dict(None) == EncodingSettings()
    with pytest.raises(ValueError, match="unknown encoding setting.*max_len"):
        EncodingSettings.from_dict({"max_len": 64})
    bad = [
        ({"max_length": "lots"}, "max_length"),
        ({"max_length": 4}, "max_length"),
        ({"add_eos": "maybe"}, "add_eos"),
        ({"mask_pad_token_id": 2}, "mask_pad_token_id"),
        ({"stage": "rlhf"}, "stage"),
        ({"packing": "tight"}, "packing"),
        ({"pad_token": 3}, "pad_token"),
    ]
    for data, match in bad:
        with pytest.raises(ValueError, match=match):
            EncodingSettings.from_dict(data)
    # The one reading of studio/settings.py (as run configs and pipelines read it): "yes"
    # and 1 are true here too, so `--set add_eos=yes` no longer fails where
    # `--set allow_blocked=yes` worked (issue 21).
    read = EncodingSettings.from_dict({"add_eos": "yes", "mask_pad_token_id": 1})
    assert read.add_eos is True and read.mask_pad_token_id is True
    assert EncodingSettings.from_dict({"add_eos": "off"}).add_eos is False


def test_validate_rejects_bad_choices():
    for field, value in [
        ("loss", "prompt"),
        ("truncation_side", "middle"),
        ("add_special_tokens", "maybe"),
        ("stage", "dpo"),
        ("packing", "none"),
    ]:
        with pytest.raises(ValueError, match=field):
            EncodingSettings(**{field: value}).validate()
        with pytest.raises(ValueError, match=field):
            EncodingSettings().replace(**{field: value})
    with pytest.raises(ValueError, match="max_length"):
        EncodingSettings(max_length=7).validate()
    assert EncodingSettings().validate() == EncodingSettings()


def test_unknown_pad_token_is_refused(kit):
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary"):
        resolve_tokens(kit.clean, EncodingSettings(pad_token="<nothing>"))


# --- packing and collation -----------------------------------------------------------------


def text_rows(n: int = 12) -> list[tuple[int, dict]]:
    words = ["お茶", "hello", "桜", "world", "富士山", "tea"]
    return [(i, {"text": " ".join(words[: 1 + i % 6]) * (1 + i % 3)}) for i in range(n)]


def encoded_and_batch(kit, settings, rows=None):
    tok = resolve_tokens(kit.clean, settings)
    encoded = [encode_example(d, tok, settings, row=i) for i, d in rows or text_rows()]
    sequences = pack(encoded, settings, tok)
    return tok, encoded, sequences, Collator.for_settings(tok, settings)(sequences)


def test_no_packing_pads_and_masks_the_padding(kit):
    s = EncodingSettings(max_length=64)
    _, encoded, sequences, batch = encoded_and_batch(kit, s)
    assert len(sequences) == len(encoded)
    ids, labels = batch["input_ids"].tolist(), batch["labels"].tolist()
    attention = batch["attention_mask"].tolist()
    width = max(len(e.input_ids) for e in encoded)
    assert len(ids[0]) == width
    for k, e in enumerate(encoded):
        n = len(e.input_ids)
        assert ids[k] == e.input_ids + [kit.pad] * (width - n)
        assert labels[k][n:] == [IGNORE] * (width - n)
        assert attention[k] == [1] * n + [0] * (width - n)
        assert labels[k][0] == IGNORE  # nothing precedes the first token
        assert labels[k][1:n] == e.labels[1:]


def test_isolated_packing_restarts_positions_per_row(kit):
    s = EncodingSettings(max_length=48, packing="isolated")
    _, encoded, sequences, batch = encoded_and_batch(kit, s)
    assert "attention_mask" not in batch
    assert len(sequences) < len(encoded)  # rows actually share sequences
    assert any(len(seq.segments) > 1 for seq in sequences)
    by_row = {e.row: e for e in encoded}
    positions, labels = batch["position_ids"].tolist(), batch["labels"].tolist()
    seen = []
    for k, seq in enumerate(sequences):
        assert len(seq.input_ids) <= s.max_length
        for seg in seq.segments:
            e = by_row[seg.row]
            assert seq.input_ids[seg.start : seg.end] == e.input_ids
            assert positions[k][seg.start : seg.end] == list(range(len(e.input_ids)))
            assert labels[k][seg.start] == IGNORE
            assert labels[k][seg.start + 1 : seg.end] == e.labels[1:]
            seen.append(seg.row)
    assert sorted(seen) == sorted(by_row)  # no row lost, none twice


def test_concatenated_packing_cuts_fixed_blocks(kit):
    s = EncodingSettings(max_length=16, packing="concatenated")
    _, encoded, sequences, batch = encoded_and_batch(kit, s)
    assert all(e.truncated == 0 for e in encoded)  # rows are split, never truncated
    assert all(len(seq.input_ids) == 16 for seq in sequences[:-1])
    assert 0 < len(sequences[-1].input_ids) <= 16
    assert all(seq.position_ids == list(range(len(seq.input_ids))) for seq in sequences)
    stream = [t for e in encoded for t in e.input_ids]
    assert [t for seq in sequences for t in seq.input_ids] == stream
    assert [t for seq in sequences for t in seq.labels] == [t for e in encoded for t in e.labels]
    pieces: dict[int, list] = {}
    for seq in sequences:
        for seg in seq.segments:
            e = encoded[seg.row]
            n = seg.end - seg.start
            assert seq.input_ids[seg.start : seg.end] == e.input_ids[seg.offset : seg.offset + n]
            pieces.setdefault(seg.row, []).append(seg)
    assert any(len(p) > 1 for p in pieces.values()), "some row must continue in the next block"
    for row, parts in pieces.items():
        # A split row's pieces follow each other without gap; only the last holds its end.
        assert [p.offset for p in parts] == [0] + [p.offset + p.end - p.start for p in parts[:-1]]
        assert [p.last for p in parts] == [False] * (len(parts) - 1) + [True]
        assert parts[-1].offset + parts[-1].end - parts[-1].start == len(encoded[row].input_ids)
    assert "attention_mask" in batch


def test_masking_by_pad_id_hides_real_eos_when_pad_is_eos(kit):
    rows = numbered(
        {"prompt": "質問", "completion": "答え"}, {"prompt": "長い質問" * 3, "completion": "x"}
    )
    plain = EncodingSettings(pad_token="</s>")
    _, encoded, _, batch = encoded_and_batch(kit, plain, rows)
    eos_at = [len(e.input_ids) - 1 for e in encoded]
    assert [batch["labels"][k, i].item() for k, i in enumerate(eos_at)] == [kit.eos, kit.eos]
    masked = plain.replace(mask_pad_token_id=True)
    _, _, _, batch = encoded_and_batch(kit, masked, rows)
    assert [batch["labels"][k, i].item() for k, i in enumerate(eos_at)] == [IGNORE, IGNORE]
    assert (batch["labels"][batch["input_ids"] == kit.eos] == IGNORE).all()


# --- diagnostics -----------------------------------------------------------------------------


def _typed(literal):
    return numbered(
        *(chat("ごきげんよう", f"ごきげんよう、今日も良いお天気ですわ。{literal}"),) * 3
    )


# code -> (rows, target, settings) that must raise it. Every code in CODES needs one.
BAD_SETUPS = {
    "double_bos": lambda k: (k.rows[:20], k.target(), EncodingSettings(add_special_tokens="yes")),
    "eos_missing": lambda k: (
        numbered({"prompt": "質問です", "completion": "答えです"}),
        k.target(),
        EncodingSettings(add_eos=False),
    ),
    "eos_as_text": lambda k: (
        numbered(*({"prompt": "質問です", "completion": "答えです。</s>"},) * 3),
        k.target(k.split),
        EncodingSettings(),
    ),
    "foreign_end_marker": lambda k: (_typed("</s>"), k.target(k.text_eos), EncodingSettings()),
    "leading_space_trained": lambda k: (
        numbered({"prompt": "質問: お茶は？\n答え:", "completion": " 緑茶ですわ。"}),
        k.target(),
        EncodingSettings(),
    ),
    "spans_by_rendering": lambda k: (k.rows[:20], k.target(k.unmarked), EncodingSettings()),
    "special_token_in_text": lambda k: (_typed("<|im_end|>"), k.target(), EncodingSettings()),
    "eos_masked": lambda k: (
        k.rows[:20],
        k.target(),
        EncodingSettings(pad_token="<|im_end|>", mask_pad_token_id=True),
    ),
    "pad_is_eos": lambda k: (k.rows[:20], k.target(), EncodingSettings(pad_token="<|im_end|>")),
    "stop_token_mismatch": lambda k: (
        k.rows[:20],
        k.target(eos_ids=[k.eos]),
        EncodingSettings(),
    ),
    "no_trained_tokens": lambda k: (
        [*k.rows[:5], (5, chat("お返事がありません"))],
        k.target(),
        EncodingSettings(),
    ),
    "response_truncated": lambda k: (k.rows[:20], k.target(), EncodingSettings(max_length=48)),
    "prompt_trained": lambda k: (
        numbered({"text": "### Instruction: hi\n### Response: hello"}),
        k.target(),
        EncodingSettings(),
    ),
    "template_not_marked": lambda k: (k.rows[:20], k.target(k.rewrites), EncodingSettings()),
    "template_drift": lambda k: (
        k.rows[:20],
        k.target(),
        EncodingSettings(chat_template=NO_BOS),
    ),
    "constant_trained_prefix": lambda k: (
        k.rows[:10],
        k.target(),
        EncodingSettings(chat_template=HEADER_INSIDE),
    ),
    "packing_cross_contamination": lambda k: (
        k.rows[:20],
        k.target(),
        EncodingSettings(packing="concatenated", max_length=256),
    ),
}
ERROR_CODES = {c for c, sev in diagnose.CODES.items() if sev == diagnose.ERROR}


def assert_explained(d) -> None:
    for lang in ("en", "ja"):
        message, fix = diagnose.explain(d, lang)
        for text in (message, fix):
            assert text.strip() and not text.startswith("inspect.")
            assert not PLACEHOLDER.search(text), f"{d.code} ({lang}): {text}"
        if lang == "ja":
            assert KANA.search(message) and KANA.search(fix)


def test_every_code_has_a_bad_setup():
    assert set(BAD_SETUPS) == set(diagnose.CODES)


@pytest.mark.parametrize("code", sorted(diagnose.CODES))
def test_each_code_fires_on_its_bad_setup(code, kit):
    rows, target, settings = BAD_SETUPS[code](kit)
    report = scan(rows, target, settings)
    codes = found(report)
    assert code in codes, [d.to_dict() for d in report.diagnostics]
    d = codes[code]
    assert d.count == len(d.rows) > 0 and set(d.rows) <= {i for i, _ in rows}
    assert 0 < d.params["share"] <= 1
    assert report.blocked == any(x.severity == diagnose.ERROR for x in report.diagnostics)
    if code in ERROR_CODES:
        assert d.severity == diagnose.ERROR and report.blocked
    for diag in report.diagnostics:
        assert_explained(diag)
    # The same rows through the single-row path give the same verdict.
    assert code in {x.code for x in inspect_rows(rows, target, settings).diagnostics}


def test_clean_bundled_chat_set_has_no_diagnostics(bundled):
    report = scan(examples_of(CHAT), bundled, EncodingSettings())
    assert report.rows == 330 and report.sequences == 330
    assert report.diagnostics == [] and not report.blocked
    assert 0 < report.trained_tokens < report.tokens
    assert report.to_dict()["blocked"] is False


def test_clean_tiny_tokenizer_chat_set_has_no_diagnostics(kit):
    for tok in (kit.clean, kit.text_eos):
        report = scan(kit.rows, kit.target(tok), EncodingSettings())
        assert report.diagnostics == [], [d.to_dict() for d in report.diagnostics]
    isolated = EncodingSettings(packing="isolated", max_length=512)
    assert scan(kit.rows, kit.target(), isolated).diagnostics == []


def test_double_bos_from_a_typed_bos_names_its_row(kit):
    rows = numbered({"text": "hello world"}, {"text": "<s>hello world"})
    report = scan(rows, kit.target(), EncodingSettings(stage="pretrain"))
    assert found(report)["double_bos"].rows == [1]
    assert not report.blocked  # a warning only
    chat_yes = scan(kit.rows[:20], kit.target(), EncodingSettings(add_special_tokens="yes"))
    assert {"double_bos", "template_drift"} <= set(found(chat_yes))


def test_eos_missing_is_an_error_for_sft_and_a_warning_for_pretraining(kit):
    rows = numbered({"text": "hello world"})
    report = scan(rows, kit.target(), EncodingSettings(stage="pretrain", add_eos=False))
    d = found(report)["eos_missing"]
    assert d.severity == diagnose.WARNING and not report.blocked
    assert d.params["ending"] and "hello world".endswith(d.params["ending"])
    sft = scan(rows, kit.target(), EncodingSettings(loss="all", add_eos=False))
    assert found(sft)["eos_missing"].severity == diagnose.ERROR and sft.blocked
    assert "eos_missing" not in found(scan(rows, kit.target(), EncodingSettings(stage="pretrain")))


def test_end_markers_are_judged_by_their_tokens(kit):
    rows = _typed("</s>")
    # The model's own EOS cut into pieces by a tokenizer that splits special strings.
    d = found(scan(rows, kit.target(kit.split), EncodingSettings()))["eos_as_text"]
    assert d.params["literal"] == "</s>" and d.params["role"] == "assistant"
    assert d.rows == [0, 1, 2] and d.severity == diagnose.ERROR
    # Where `</s>` is this model's special EOS, the same data is a typed control token.
    codes = found(scan(rows, kit.target(), EncodingSettings()))
    assert "eos_as_text" not in codes
    assert codes["special_token_in_text"].params["literal"] == "</s>"
    # Where `</s>` is another family's end marker (EOS is <|endoftext|>), it is text: a
    # warning where it ends a reply, nothing inside one (HTML strikethrough).
    codes = found(scan(rows, kit.target(kit.text_eos), EncodingSettings()))
    assert "eos_as_text" not in codes and codes["foreign_end_marker"].severity == diagnose.WARNING
    inside = numbered(chat("打ち消し線は？", "古い</s>新しい、と書きますの。"))
    assert found(scan(inside, kit.target(kit.text_eos), EncodingSettings())) == {}
    # A typed BOS that the tokenizer turns into the BOS id, inside a reply.
    bos = numbered(chat("こんにちは", "ごきげんよう<s>ですわ。"))
    d = found(scan(bos, kit.target(), EncodingSettings()))["special_token_in_text"]
    assert d.params["literal"] == "<s>"


def test_pad_eos_is_info_without_the_mask_and_an_error_with_it(kit):
    plain = scan(kit.rows[:20], kit.target(), EncodingSettings(pad_token="</s>"))
    assert set(found(plain)) == {"pad_is_eos"}
    assert found(plain)["pad_is_eos"].severity == diagnose.INFO and not plain.blocked
    pc = numbered(*({"prompt": f"質問{i}", "completion": f"答え{i}"} for i in range(4)))
    masked = scan(pc, kit.target(), EncodingSettings(pad_token="</s>", mask_pad_token_id=True))
    d = found(masked)["eos_masked"]
    assert d.severity == diagnose.ERROR and d.params["token"] == "</s>" and masked.blocked
    assert "pad_is_eos" not in found(masked)


def test_stop_token_mismatch_names_the_end_of_turn_token(kit):
    report = scan(kit.rows[:20], kit.target(eos_ids=[kit.eos]), EncodingSettings())
    d = found(report)["stop_token_mismatch"]
    assert d.params["token"] == "<|im_end|>" and d.params["id"] == kit.im_end
    assert report.blocked


def test_no_trained_tokens_is_an_error_only_when_nothing_is_trained(kit):
    unanswered = chat("お返事がありません")
    some = scan([*kit.rows[:5], (5, unanswered)], kit.target(), EncodingSettings())
    d = found(some)["no_trained_tokens"]
    assert d.severity == diagnose.WARNING and d.rows == [5] and not some.blocked
    assert d.params["reasons"] == {"no_assistant_turn": 1}
    assert "no assistant turn" in diagnose.explain(d, "en")[0]
    none = scan(numbered(unanswered, unanswered), kit.target(), EncodingSettings())
    assert found(none)["no_trained_tokens"].severity == diagnose.ERROR and none.blocked


def test_truncation_is_not_reported_as_template_drift(kit):
    report = scan(kit.rows[:20], kit.target(), EncodingSettings(max_length=24))
    codes = found(report)
    assert codes["response_truncated"].params["max_length"] == 24
    assert codes["no_trained_tokens"].severity == diagnose.ERROR  # every answer cut away
    assert "template_drift" not in codes


def test_prompt_trained_only_for_sft_text_without_a_marker(kit):
    rows = numbered({"text": "### Instruction: hi\n### Response: hello"})
    assert found(scan(rows, kit.target(), EncodingSettings()))["prompt_trained"].params == {
        "reason": "text_rows",
        "role": "text",
        "share": 1.0,
    }
    for s in (
        EncodingSettings(response_template="### Response:"),
        EncodingSettings(stage="pretrain"),
        EncodingSettings(loss="all"),
    ):
        assert "prompt_trained" not in found(scan(rows, kit.target(), s))


def test_prompt_trained_when_the_template_trains_the_prompt(kit):
    rows = numbered(chat("お茶の淹れ方を教えてください。", "お湯を冷ましてから注ぎますの。"))
    s = EncodingSettings(chat_template=ALL_TRAINED)
    d = found(scan(rows, kit.target(), s))["prompt_trained"]
    assert d.params["reason"] == "prompt_in_trained" and d.params["role"] == "user"
    # A reply that echoes the user's words is not the prompt being trained.
    echo = numbered(chat("ごきげんよう", "ごきげんよう、良いお天気ですわ。"))
    assert "prompt_trained" not in found(scan(echo, kit.target(), EncodingSettings()))


def test_unmarked_template_trains_what_the_marked_one_trains(kit):
    marked = scan(kit.rows[:20], kit.target(), EncodingSettings())
    rendered = scan(kit.rows[:20], kit.target(kit.unmarked), EncodingSettings())
    assert rendered.trained_tokens == marked.trained_tokens > 0
    d = found(rendered)["spans_by_rendering"]
    assert d.severity == diagnose.INFO and d.params["method"] == "rendered"
    assert not rendered.blocked and set(found(rendered)) == {"spans_by_rendering"}
    tok_m = resolve_tokens(kit.clean, EncodingSettings())
    tok_r = resolve_tokens(kit.unmarked, EncodingSettings())
    for _, data in kit.rows[:20]:
        a = encode_example(data, tok_m, EncodingSettings())
        b = encode_example(data, tok_r, EncodingSettings())
        assert (a.input_ids, a.labels) == (b.input_ids, b.labels)
        assert b.spans == "rendered"


def test_template_not_marked_blocks_and_masks_everything(kit):
    report = scan(kit.rows[:20], kit.target(kit.rewrites), EncodingSettings())
    codes = found(report)
    assert codes["template_not_marked"].severity == diagnose.ERROR
    assert codes["no_trained_tokens"].params["reasons"] == {"template_not_marked": 20}
    assert report.trained_tokens == 0 and report.blocked
    # Training on everything needs no markers.
    assert "template_not_marked" not in found(
        scan(kit.rows[:20], kit.target(kit.rewrites), EncodingSettings(loss="all"))
    )


def test_template_drift_only_for_a_different_rendering(kit):
    same = scan(kit.rows[:20], kit.target(), EncodingSettings(chat_template=TEMPLATE))
    assert "template_drift" not in found(same)
    other = scan(kit.rows[:20], kit.target(), EncodingSettings(chat_template=NO_BOS))
    assert found(other)["template_drift"].params["checked"] == 20


def test_constant_trained_prefix_needs_enough_rows(kit):
    s = EncodingSettings(chat_template=HEADER_INSIDE)
    d = found(scan(kit.rows[:10], kit.target(), s))["constant_trained_prefix"]
    assert d.severity == diagnose.INFO and d.count == 10
    assert d.params["prefix"].startswith("<|im_start|>")
    few = scan(kit.rows[: diagnose.PREFIX_MIN_SPANS - 1], kit.target(), s)
    assert "constant_trained_prefix" not in found(few)


def test_isolated_packing_does_not_contaminate(kit):
    concatenated = EncodingSettings(packing="concatenated", max_length=1024)
    assert "packing_cross_contamination" in found(scan(kit.rows[:20], kit.target(), concatenated))
    isolated = concatenated.replace(packing="isolated")
    report = scan(kit.rows[:20], kit.target(), isolated)
    assert report.sequences < 20  # rows really were packed together
    assert report.diagnostics == []


def test_every_code_has_an_explanation_and_a_fix_in_both_languages():
    from studio.i18n import catalog

    strings = catalog()
    for code in diagnose.CODES:
        for key in (f"inspect.diag_{code}", f"inspect.fix_{code}"):
            assert strings[key]["ja"].strip() and strings[key]["en"].strip()


# --- fixes ------------------------------------------------------------------------------------


def test_suggested_settings_fixes_clear_a_broken_setup(bundled):
    broken = EncodingSettings(
        pad_token="<|im_end|>", mask_pad_token_id=True, add_special_tokens="yes", max_length=64
    )
    report = scan(examples_of(CHAT), bundled, broken)
    before = set(found(report))
    assert {"eos_masked", "double_bos", "template_drift", "response_truncated"} <= before
    suggested = suggest_fixes(report, bundled, broken, CHAT)
    actions = {f.action: f for f in suggested if f.kind == "settings"}
    assert {"special_auto", "dedicated_pad", "max_length"} <= set(actions)
    assert actions["dedicated_pad"].changes == {"pad_token": "<pad>", "mask_pad_token_id": False}
    fixed = fixes.apply_settings(broken, suggested)
    assert broken.pad_token == "<|im_end|>" and broken.max_length == 64  # not in place
    assert fixed.max_length > max(report.lengths) - 1 and fixed.max_length % 64 == 0
    again = scan(examples_of(CHAT), bundled, fixed)
    assert again.diagnostics == [], [d.to_dict() for d in again.diagnostics]


def test_fixes_for_template_packing_eos_and_marker(kit):
    t = kit.target(kit.rewrites)
    report = scan(kit.rows[:20], t, EncodingSettings())
    tok = resolve_tokens(kit.rewrites, EncodingSettings())
    suggested = fixes.suggest(report.diagnostics, tok, EncodingSettings())
    fixed = fixes.apply_settings(EncodingSettings(), suggested)
    assert fixed.chat_template == fixes.CHATML_MARKED  # a ChatML template, for ChatML
    after = found(scan(kit.rows[:20], t, fixed))
    assert "template_not_marked" not in after and "no_trained_tokens" not in after

    s = EncodingSettings(packing="concatenated", max_length=256)
    report = scan(kit.rows[:20], kit.target(), s)
    tok = resolve_tokens(kit.clean, s)
    assert fixes.apply_settings(s, fixes.suggest(report.diagnostics, tok, s)).packing == "isolated"

    rows = numbered({"prompt": "質問です", "completion": "答えです"})
    s = EncodingSettings(add_eos=False)
    report = scan(rows, kit.target(), s)
    fixed = fixes.apply_settings(s, fixes.suggest(report.diagnostics, tok, s))
    assert fixed.add_eos is True and scan(rows, kit.target(), fixed).diagnostics == []

    rows = numbered(*({"text": f"### Instruction: q{i}\n### Response:\na{i}"} for i in range(3)))
    report = scan(rows, kit.target(), EncodingSettings())
    suggested = fixes.suggest(report.diagnostics, tok, EncodingSettings(), examples=rows)
    fixed = fixes.apply_settings(EncodingSettings(), suggested)
    assert fixed.response_template == "### Response:"
    assert scan(rows, kit.target(), fixed).diagnostics == []


def test_repair_row_strips_literals_without_touching_the_input():
    row = chat("質問です</s>", "答えですわ。 </s>")
    fixed = fixes.repair_row(row, "messages", ["</s>"])
    assert [m["content"] for m in fixed["messages"]] == ["質問です", "答えですわ。"]
    assert row["messages"][1]["content"] == "答えですわ。 </s>"
    untouched = {"text": "  keep trailing space  "}
    assert fixes.repair_row(untouched, "text", ["</s>"]) == untouched
    pc = fixes.repair_row(
        {"prompt": "p<|im_end|>", "completion": "c</s>"},
        "prompt_completion",
        ["</s>", "<|im_end|>"],
    )
    assert pc == {"prompt": "p", "completion": "c"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_another_familys_end_marker_is_removed_only_where_it_ends_a_reply(kit):
    rows = [chat("打ち消し線は？", "古い</s>新しい値ですわ。</s>")]
    report = scan(numbered(*rows), kit.target(kit.text_eos), EncodingSettings())
    (fix,) = [
        f
        for f in fixes.suggest(
            report.diagnostics, resolve_tokens(kit.text_eos, EncodingSettings()), EncodingSettings()
        )
        if f.kind == "data"
    ]
    assert fix.params["trailing"] == ["</s>"] and fix.params["literals"] == []
    repaired = fixes.repair_row(rows[0], "messages", [], fix.params["trailing"])
    assert repaired["messages"][-1]["content"] == "古い</s>新しい値ですわ。"
    assert rows[0]["messages"][-1]["content"].endswith("ですわ。</s>")  # not in place


def test_repair_dataset_writes_a_new_version_and_keeps_the_original(kit, workspace, tmp_path):
    from studio.data.records import dataset_file, read_records
    from studio.data.registry import add_version, list_datasets

    rows = [
        chat("ごきげんよう", "ごきげんよう、良いお天気ですわ。</s>"),
        chat("お返事のない質問です"),
        chat("お茶はいかが？", "いただきますわ。"),
    ]
    src = write_jsonl(tmp_path / "broken.jsonl", rows)
    version = add_version(
        workspace.datasets, "broken", {"data.jsonl": src}, format="messages", operation="import"
    )
    original = dataset_file(version).read_bytes()
    target = kit.target(kit.split)
    report = scan(examples_of(dataset_file(version)), target, EncodingSettings())
    assert {"eos_as_text", "no_trained_tokens"} <= set(found(report))
    data_fixes = [
        f
        for f in suggest_fixes(report, target, EncodingSettings(), dataset_file(version))
        if f.kind == "data"
    ]
    assert len(data_fixes) == 1 and data_fixes[0].action == "repair_data"
    params = data_fixes[0].params
    assert params == {
        "literals": ["</s>"],
        "trailing": [],
        "drop_unanswered": True,
        "markers": "</s>",
    }

    new = fixes.repair_dataset(
        workspace, version, params["literals"], drop_unanswered=params["drop_unanswered"]
    )
    assert (new.name, new.version, new.parent) == ("broken", "v0002", "v0001")
    assert new.operation == "repair-labels" and new.rows == 2
    assert new.settings["dropped_rows_without_answer"] == 1
    assert new.settings["rows_changed"] == 1
    repaired = [r.data for r in read_records(dataset_file(new))]
    assert repaired == [chat("ごきげんよう", "ごきげんよう、良いお天気ですわ。"), rows[2]]
    assert dataset_file(version).read_bytes() == original  # the original is untouched
    assert len([d for d in list_datasets(workspace) if d.name == "broken"]) == 2
    # (This tokenizer also splits the template's own <|im_end|>: eos_missing stays.)
    after = found(scan(examples_of(dataset_file(new)), target, EncodingSettings()))
    assert not {"eos_as_text", "no_trained_tokens"} & set(after)


def test_repair_refuses_to_leave_no_rows(workspace, tmp_path):
    from studio.data.registry import add_version, list_datasets

    src = write_jsonl(tmp_path / "empty.jsonl", [chat("質問だけ"), chat("これも質問だけ")])
    version = add_version(
        workspace.datasets,
        "unanswered",
        {"data.jsonl": src},
        format="messages",
        operation="import",
    )
    with pytest.raises(ValueError, match="no rows"):
        fixes.repair_dataset(workspace, version, [])
    assert [d.version for d in list_datasets(workspace) if d.name == "unanswered"] == ["v0001"]
    assert not list(workspace.root.glob("tmp*"))  # the scratch folder is gone


# --- profiles ---------------------------------------------------------------------------------


def test_profiles_never_overwrite_and_round_trip(workspace):
    first = EncodingSettings(max_length=256, packing="isolated", pad_token="<pad>")
    second = first.replace(max_length=512, chat_template=TEMPLATE)
    assert profiles.save_profile(workspace, "mine", first) == "mine"
    path = profiles.profiles_dir(workspace) / "mine.yaml"
    before = path.read_bytes()
    assert profiles.save_profile(workspace, "mine", second, based_on="mine") == "mine-2"
    assert profiles.save_profile(workspace, "mine", first) == "mine-3"
    assert path.read_bytes() == before
    assert profiles.load_profile(workspace, "mine") == first
    assert profiles.load_profile(workspace, "mine-2") == second
    settings, meta = profiles.read_settings_file(profiles.profiles_dir(workspace) / "mine-2.yaml")
    assert settings == second and meta == {"based_on": "mine"}
    names = profiles.list_profiles(workspace)
    assert names[0] == "default"
    assert [n for n in names if n.startswith("mine")] == ["mine", "mine-2", "mine-3"]
    assert profiles.load_profile(workspace, "default") == EncodingSettings()
    with pytest.raises(profiles.ProfileError, match="no settings profile"):
        profiles.load_profile(workspace, "nobody")


def test_read_settings_file_accepts_top_level_fields_and_rejects_unknown_keys(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("max_length: 128\npacking: isolated\nnote: hand written\n", "utf-8")
    settings, meta = profiles.read_settings_file(flat)
    assert settings == EncodingSettings(max_length=128, packing="isolated")
    assert meta == {"note": "hand written"}
    cases = {
        "typo.yaml": ("max_lenght: 128\n", r"typo\.yaml.*unknown encoding setting.*max_lenght"),
        "nested.yaml": ("encoding:\n  pading: isolated\n", "pading"),
        "value.yaml": ("packing: sideways\n", "packing must be one of"),
        "list.yaml": ("- 1\n- 2\n", "mapping"),
        "broken.yaml": ("max_length: [1\n", "cannot read settings"),
    }
    for name, (text, match) in cases.items():
        (tmp_path / name).write_text(text, "utf-8")
        with pytest.raises(profiles.ProfileError, match=match):
            profiles.read_settings_file(tmp_path / name)
    with pytest.raises(profiles.ProfileError, match="cannot read"):
        profiles.read_settings_file(tmp_path / "missing.yaml")


# --- the token view ---------------------------------------------------------------------------


def test_chips_show_whole_japanese_characters(kit, bundled):
    for target in (kit.target(), bundled):
        inspection = inspect_rows(kit.rows[:30], target, EncodingSettings())
        tokenizer = target.tokenizer
        grouped = 0
        for seq in inspection.sequences:
            chips = view.chips(seq, tokenizer, inspection.tokens.special_ids)
            assert not [c.text for c in chips if "\ufffd" in c.text]
            grouped += sum(c.end - c.start > 1 for c in chips)
            assert [c.start for c in chips] == [0] + [c.end for c in chips[:-1]]
            real = [c for c in chips if c.role != "pad"]
            n = sum(seq.attention_mask)
            assert "".join(c.text for c in real) == tokenizer.decode(seq.input_ids[:n])
        if target.tokenizer is kit.clean:
            assert grouped > 0  # the tiny BPE splits kanji into byte pieces


def test_chip_roles_follow_labels_and_padding(kit):
    rows = numbered(kit.rows[0][1], chat("短い", "はい。"))
    inspection = inspect_rows(rows, kit.target(), EncodingSettings())
    short = inspection.sequences[1]
    chips = view.chips(short, kit.clean, inspection.tokens.special_ids)
    for c in chips:
        for i in range(c.start, c.end):
            expected = (
                "pad"
                if short.attention_mask[i] == 0
                else "trained"
                if short.labels[i] != IGNORE
                else "masked"
            )
            assert c.role == expected
        assert c.special == (short.input_ids[c.start] in inspection.tokens.special_ids)
    counts = view.legend_counts(short)
    assert counts["pad"] == short.attention_mask.count(0) > 0
    assert counts["trained"] == sum(label != IGNORE for label in short.labels)
    assert sum(counts.values()) == len(short.input_ids)
    assert [c.text for c in chips if c.role == "trained"][-1] == "<|im_end|>"
    assert view.trained_text(short, kit.clean) == ["はい。<|im_end|>"]


def test_packed_view_marks_row_starts_and_tail_padding(kit):
    rows = numbered(*(chat(f"質問{i}", "短い答えですわ。" * (1 + i)) for i in range(5)))
    inspection = inspect_rows(rows, kit.target(), EncodingSettings(packing="isolated"))
    assert len(inspection.sequences) == 1
    seq = inspection.sequences[0]
    assert seq.attention_mask is None
    chips = view.chips(seq, kit.clean, inspection.tokens.special_ids)
    assert {c.start for c in chips if c.row_start} == {s.start for s in seq.segments}
    assert view.trained_text(seq, kit.clean) == [
        "短い答えですわ。" * (1 + i) + "<|im_end|>" for i in range(5)
    ]


def test_render_sequence_escapes_html(kit):
    rows = numbered(chat('<script>alert("x")</script>', "<b>ごきげんよう</b> & さようなら"))
    inspection = inspect_rows(rows, kit.target(), EncodingSettings())
    seq = inspection.sequences[0]
    html = view.render_sequence(seq, kit.clean, inspection.tokens.special_ids)
    assert "<script" not in html and "<b>" not in html
    assert "&lt;" in html and "&amp;" in html
    assert "&lt;|im_end|&gt;" in html  # special token chips are escaped too
    assert html.count('class="tok tok-trained') > 0 and "tok-special" in html
    compact = view.render_sequence(seq, kit.clean, inspection.tokens.special_ids, compact=True)
    assert compact.count('class="tok-id"') == html.count("data-start=")
    assert view.trained_text(seq, kit.clean) == ["<b>ごきげんよう</b> & さようなら<|im_end|>"]
