"""The real-tokenizer fixtures of tests/real_families.py: each family's tokenizer reproduces the
ids its real Hugging Face tokenizer gave llama.cpp's test strings, names the right special
tokens, renders its chat template, and comes with a tiny model of the right vocabulary.

The folders are built once per machine (30-40 s for all five, from the llama-cpp-python
sdist); these tests skip when that cannot happen here (offline, no STUDIO_LLAMA_CPP_SDIST)."""

from __future__ import annotations

import json

import pytest

from tests import real_families as rf

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hi."},
    {"role": "assistant", "content": "Hi there!"},
]

# (token, id) of bos, eos, pad and unk; the model's vocabulary size; len(tokenizer);
# whether tok(text) adds BOS; the generation config's eos ids; more special tokens by id.
EXPECTED = {
    "qwen2.5": {
        "bos": (None, None),
        "eos": ("<|im_end|>", 151645),
        "pad": ("<|endoftext|>", 151643),
        "unk": (None, None),
        "vocab_size": 151936,
        "len": 151665,
        "adds_bos": False,
        "generation_eos": [151645, 151643],
        "specials": {"<|im_start|>": 151644, "<tool_call>": 151657, "<|file_sep|>": 151664},
    },
    "llama-3.1": {
        "bos": ("<|begin_of_text|>", 128000),
        "eos": ("<|eot_id|>", 128009),
        "pad": (None, None),
        "unk": (None, None),
        "vocab_size": 128256,
        "len": 128256,
        "adds_bos": True,
        "generation_eos": [128001, 128008, 128009],
        "specials": {
            "<|end_of_text|>": 128001,
            "<|finetune_right_pad_id|>": 128004,
            "<|start_header_id|>": 128006,
            "<|end_header_id|>": 128007,
            "<|eom_id|>": 128008,
            "<|python_tag|>": 128010,
            "<|reserved_special_token_3|>": 128011,
            "<|reserved_special_token_247|>": 128255,
        },
    },
    "llama-2": {
        "bos": ("<s>", 1),
        "eos": ("</s>", 2),
        "pad": (None, None),
        "unk": ("<unk>", 0),
        "vocab_size": 32000,
        "len": 32000,
        "adds_bos": True,
        "generation_eos": 2,
        "specials": {},
    },
    "phi-3.5": {
        "bos": ("<s>", 1),
        "eos": ("<|endoftext|>", 32000),
        "pad": ("<|endoftext|>", 32000),
        "unk": ("<unk>", 0),
        "vocab_size": 32064,
        "len": 32011,
        "adds_bos": False,
        "generation_eos": [32007, 32001, 32000],
        "specials": {
            "<|assistant|>": 32001,
            "<|system|>": 32006,
            "<|end|>": 32007,
            "<|user|>": 32010,
        },
    },
    "deepseek-llm": {
        "bos": ("<｜begin▁of▁sentence｜>", 100000),
        "eos": ("<｜end▁of▁sentence｜>", 100001),
        "pad": (None, None),
        "unk": (None, None),
        "vocab_size": 102400,
        "len": 100015,
        "adds_bos": True,
        "generation_eos": 100001,
        "specials": {},
    },
}

RENDERED = {
    "qwen2.5": "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nSay hi.<|im_end|>\n"
    "<|im_start|>assistant\nHi there!<|im_end|>\n",
    "llama-3.1": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nSay hi.<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>",
    "llama-2": "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nSay hi. [/INST] Hi there! </s>",
    "phi-3.5": "<|system|>\nYou are terse.<|end|>\n<|user|>\nSay hi.<|end|>\n"
    "<|assistant|>\nHi there!<|end|>\n<|endoftext|>",
    "deepseek-llm": "<｜begin▁of▁sentence｜>You are terse.\n\nUser: Say hi.\n\n"
    "Assistant: Hi there!<｜end▁of▁sentence｜>",
}

# How each tokenizer treats special-token strings typed into plain text (the real ones do the
# same): added tokens are matched in text, special or not, and phi-3.5's strip what follows.
TYPED = {
    "qwen2.5": [("a</s>b", ["a", "</", "s", ">b"]), ("x<|im_end|>y", ["x", "<|im_end|>", "y"])],
    "llama-3.1": [("x<|eot_id|> y", ["x", "<|eot_id|>", "Ġy"]), ("a</s>b", ["a", "</", "s", ">b"])],
    "llama-2": [("a<s>b", ["▁a", "<s>", "▁b"]), ("a</s>b", ["▁a", "</s>", "▁b"])],
    "phi-3.5": [
        ("x</s>  y", ["▁x", "</s>", "▁y"]),
        ("hi<|end|>\n there", ["▁hi", "<|end|>", "▁there"]),
    ],
    "deepseek-llm": [("ö", ["ö"]), ("<｜end▁of▁sentence｜>z", ["<｜end▁of▁sentence｜>", "z"])],
}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.mark.parametrize("name", rf.FAMILIES)
def test_vocab_cases_match_the_real_tokenizer(name):
    rf.require(name)
    tok = rf.tokenizer(name)
    cases = rf.vocab_cases(name)
    assert len(cases) >= 40
    wrong = [
        (text, got, ids)
        for text, ids in cases
        if (got := tok(text, add_special_tokens=False)["input_ids"]) != ids
    ]
    assert not wrong, f"{len(wrong)} of {len(cases)} cases differ, first: {wrong[0]!r}"


@pytest.mark.parametrize("name", rf.FAMILIES)
def test_special_tokens_and_template(name):
    folder = rf.require(name)
    tok = rf.tokenizer(name)
    want = EXPECTED[name]
    for role in ("bos", "eos", "pad", "unk"):
        assert (getattr(tok, f"{role}_token"), getattr(tok, f"{role}_token_id")) == want[role], role
    for token, token_id in want["specials"].items():
        assert tok.convert_tokens_to_ids(token) == token_id, token
        assert tok.decode([token_id]) == token
    assert len(tok) == want["len"]
    assert (tok("Hello")["input_ids"][0] == tok.bos_token_id) == want["adds_bos"]

    spec = rf.FAMILY_SPECS[name]
    if "template_file" in spec:
        template = (rf.sdist_dir() / "templates" / spec["template_file"]).read_text(
            encoding="utf-8"
        )
    else:
        template = spec["template"]
    assert tok.chat_template == template
    generation = json.loads((folder / "generation_config.json").read_text())
    assert generation["eos_token_id"] == want["generation_eos"]


@pytest.mark.parametrize("name", rf.FAMILIES)
def test_chat_template_renders_and_tokenizes(name):
    rf.require(name)
    tok = rf.tokenizer(name)
    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert text == RENDERED[name]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert list(tok.apply_chat_template(MESSAGES, tokenize=True)["input_ids"]) == ids
    assert tok.decode(ids) == text or name in ("llama-2", "phi-3.5")  # these re-space on decode
    # what label masking relies on: the prompt's ids are a prefix of the conversation's ids
    prompt = tok.apply_chat_template(MESSAGES[:-1], tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    answer = tok.decode(ids[len(prompt_ids) :], skip_special_tokens=True)
    assert answer.strip() == "Hi there!"


@pytest.mark.parametrize("name", rf.FAMILIES)
def test_special_strings_typed_in_text(name):
    rf.require(name)
    tok = rf.tokenizer(name)
    for text, pieces in TYPED[name]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.convert_ids_to_tokens(ids) == pieces, text


@pytest.mark.parametrize("name", rf.FAMILIES)
def test_tiny_model_runs_on_rendered_ids(name):
    import torch
    from transformers import AutoModelForCausalLM

    folder = rf.require(name)
    tok = rf.tokenizer(name)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.vocab_size == EXPECTED[name]["vocab_size"]
    assert model.config.tie_word_embeddings
    ids = tok.apply_chat_template(MESSAGES, tokenize=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], EXPECTED[name]["vocab_size"])
    assert torch.isfinite(logits).all()
