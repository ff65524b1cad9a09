import json

import pytest

from studio.models.info import describe, render_chat_example
from studio.models.load import ModelLoadError, ModelSource, load_model, resolve_source
from studio.paths import EMBEDDED_MODEL_DIR, EMBEDDED_MODEL_NAME


@pytest.mark.parametrize("spec", ["", "embedded", EMBEDDED_MODEL_NAME, None])
def test_embedded_aliases(spec):
    src = resolve_source(spec)
    assert src.kind == "embedded" and src.local_dir == EMBEDDED_MODEL_DIR


def test_local_folder_and_hub_id(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_source(str(tmp_path / "m")).kind == "local"
    assert resolve_source("owner/some-model").kind == "hub"


@pytest.mark.parametrize(
    "spec,match",
    [
        ("./does-not-exist", "No model folder"),
        ("not a model!!", "neither a model folder nor a hub id"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ModelLoadError, match=match):
        resolve_source(spec)


def test_folder_without_config_is_explained(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        resolve_source(str(tmp_path))


def test_confined_roots_reject_outside_folders(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="outside the allowed folders"):
        resolve_source(str(outside), local_roots=[tmp_path / "allowed"])
    # Named workspace models and the embedded model stay reachable.
    assert resolve_source("", local_roots=[tmp_path / "allowed"]).kind == "embedded"


def test_pickle_only_folder_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(resolve_source(str(folder)))


def test_hub_id_offline_fails_with_instructions():
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelSource("hub", "nobody/not-cached-model", "nobody/not-cached-model"))
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message
    assert "huggingface-cli download nobody/not-cached-model" in message


def test_embedded_model_files_are_small_safe_and_offline_loadable():
    files = {p.name for p in EMBEDDED_MODEL_DIR.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    size = sum(p.stat().st_size for p in EMBEDDED_MODEL_DIR.rglob("*") if p.is_file())
    assert size <= 15 * 2**20


def test_embedded_loads_in_fp32_on_cpu(embedded):
    import torch

    assert embedded.device == "cpu"
    assert embedded.dtype == torch.float32
    assert next(embedded.model.parameters()).dtype == torch.float32
    assert embedded.trust_remote_code is False


def test_describe_embedded(embedded):
    info = describe(embedded)
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["parameters"] == sum(p.numel() for p in embedded.model.parameters())
    assert 1_000_000 < info["parameters"] < 4_000_000
    roles = {e["role"]: e for e in info["special_tokens"]}
    assert roles["bos"]["token"] == "<s>" and roles["eos"]["token"] == "</s>"
    assert roles["pad"]["token"] == "<pad>" and not info["pad_equals_eos"]
    extra = {e["token"] for e in info["special_tokens"] if e["role"] == "special"}
    assert {"<|im_start|>", "<|im_end|>"} <= extra
    assert info["adds_bos"] and not info["adds_eos"]
    gen_eos = {e["token"] for e in info["generation_eos_ids"]}
    assert {"</s>", "<|im_end|>"} <= gen_eos
    chat = info["chat_template"]
    assert chat["has_generation_markers"]
    assert chat["text"].startswith("<s><|im_start|>system\n")
    assert "<|im_start|>assistant\n富士山の高さは3776メートルですわ。<|im_end|>" in chat["text"]
    # The template writes BOS itself, so re-tokenizing its text doubles it: shown as a note.
    assert chat["bos_when_retokenized"] == 2
    codes = {n["code"] for n in info["notes"]}
    assert codes == {"double_bos_on_retokenize"}
    json.dumps(info)  # the CLI prints it as JSON


def test_pad_equals_eos_is_flagged(embedded):
    import copy

    tok = copy.deepcopy(embedded.tokenizer)
    tok.pad_token = tok.eos_token
    info = describe(type(embedded)(**{**embedded.__dict__, "tokenizer": tok}))
    assert info["pad_equals_eos"]
    assert "pad_equals_eos" in {n["code"] for n in info["notes"]}


def test_template_without_generation_markers_is_flagged(embedded):
    import copy

    tok = copy.deepcopy(embedded.tokenizer)
    tok.chat_template = tok.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    assert render_chat_example(tok)["has_generation_markers"] is False
    info = describe(type(embedded)(**{**embedded.__dict__, "tokenizer": tok}))
    # Without markers the assistant turns are found by rendering: a note, not a warning.
    notes = {n["code"]: n for n in info["notes"]}
    assert "no_generation_markers" not in notes
    assert notes["spans_by_rendering"]["params"] == {"method": "rendered"}
    assert info["family"]["spans"] == "rendered" and info["family"]["family"] == "chatml"
    # A template that rewrites earlier turns cannot be read that way: a warning.
    tok.chat_template = tok.chat_template.replace(
        "message['content']", "(message['content'] if loop.last else message['content'][:2])"
    )
    info = describe(type(embedded)(**{**embedded.__dict__, "tokenizer": tok}))
    assert "no_generation_markers" in {n["code"] for n in info["notes"]}
    assert info["family"]["spans"] == "none"


def test_assistant_mask_covers_reply_and_end_of_turn(embedded):
    tok = embedded.tokenizer
    msgs = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう"},
    ]
    out = tok.apply_chat_template(
        msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(trained) == "ごきげんよう<|im_end|>"
    assert out["input_ids"].count(tok.bos_token_id) == 1
