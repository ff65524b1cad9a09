"""The fast path's choices and its correctness on CPU (issue 26): packed documents never see
each other (SDPA and eager with the block-diagonal mask transformers builds from position
ids, and the one-row-per-batch layout FlashAttention 2 gets), which kernels a run picks and
says, and the memory estimate without materialised logits."""

from __future__ import annotations

import pytest
import torch

from studio.train.backends import BackendError
from tests.test_train import demo, train_here


@pytest.fixture(scope="module")
def model_pair():
    """The embedded model, loaded once with SDPA and once with eager attention."""
    from studio.models.load import transformers_names
    from studio.paths import EMBEDDED_MODEL_DIR

    auto = transformers_names("AutoModelForCausalLM")
    return {
        impl: auto.from_pretrained(EMBEDDED_MODEL_DIR, attn_implementation=impl).eval()
        for impl in ("sdpa", "eager")
    }


def _alone(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_documents_do_not_attend_to_each_other(model_pair, impl):
    """Three documents in one row, positions restarting, no attention mask: each one's
    logits equal the document run alone. The same row with continuous positions and a plain
    causal mask (what packing without isolation does) changes the later documents: the
    test can tell."""
    model = model_pair[impl]
    g = torch.Generator().manual_seed(0)
    docs = [torch.randint(5, 2000, (n,), generator=g).tolist() for n in (17, 29, 11)]
    row = sum(docs, [])
    positions = sum((list(range(len(d))) for d in docs), [])
    with torch.no_grad():
        # As in training (the studio turns the cache off): with a KV cache transformers does
        # not look for packed documents.
        packed = model(
            input_ids=torch.tensor([row]), position_ids=torch.tensor([positions]), use_cache=False
        ).logits[0]
        mixed = model(input_ids=torch.tensor([row])).logits[0]
    start = 0
    for k, doc in enumerate(docs):
        alone = _alone(model, doc)
        part = slice(start, start + len(doc))
        torch.testing.assert_close(packed[part], alone, atol=2e-5, rtol=1e-4)
        if k:  # a later document, seeing the ones before it, is no longer itself
            assert not torch.allclose(mixed[part], alone, atol=1e-3)
        start += len(doc)


def test_one_row_batches_keep_documents_apart_and_train_the_same_tokens(model_pair, workspace):
    """The flattened batch (FlashAttention 2's layout) holds the same tokens and trained
    labels as the padded packed batch, without one padding token, and on CPU's SDPA its
    logits for each sequence equal the packed batch's."""
    from studio.labels.encode import IGNORE, Collator, resolve_tokens
    from studio.models.load import load_tokenizer
    from studio.train.data import build
    from studio.train.process import resolve_model

    config, _ = demo(workspace, "max_steps=1")
    source = resolve_model(workspace, config)
    tok = resolve_tokens(load_tokenizer(source), config.encoding)
    sequences = build(workspace, config, tok).train[:4]
    padded = Collator.for_settings(tok, config.encoding)(sequences)
    flat = Collator.for_settings(tok, config.encoding, flatten=True)(sequences)
    assert set(flat) == {"input_ids", "labels", "position_ids"}  # no mask, no padding
    lengths = [len(s.input_ids) for s in sequences]
    assert flat["input_ids"].shape == (1, sum(lengths))
    real = [padded["input_ids"][i, :n] for i, n in enumerate(lengths)]
    assert torch.equal(flat["input_ids"][0], torch.cat(real))
    trained = [padded["labels"][i, :n] for i, n in enumerate(lengths)]
    assert torch.equal(flat["labels"][0], torch.cat(trained))
    starts = torch.tensor([0] + lengths[:-1]).cumsum(0)
    assert (flat["labels"][0, starts] == IGNORE).all()  # no sequence learns from the last
    model = model_pair["sdpa"]
    with torch.no_grad():
        one = model(**flat_inputs(flat)).logits[0]
        rows = model(**flat_inputs(padded)).logits
    for i, (start, n) in enumerate(zip(starts.tolist(), lengths, strict=True)):
        torch.testing.assert_close(one[start : start + n], rows[i, :n], atol=2e-5, rtol=1e-4)


def flat_inputs(batch: dict) -> dict:
    return {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"],
            "use_cache": False}  # fmt: skip


def _machine(monkeypatch, *, modules=(), supported=("llama", "qwen2")):
    from studio.train import kernels

    monkeypatch.setattr(kernels, "installed", lambda name: name in modules)
    monkeypatch.setattr(kernels, "liger_supports", lambda model_type: model_type in supported)


def test_each_machine_gets_the_kernels_it_can_run_and_says_why(workspace, monkeypatch):
    from studio.train.kernels import attention_for, fused_for

    config, _ = demo(workspace)  # isolated packing
    _machine(monkeypatch)
    assert attention_for(config, "cpu", "fp32", "transformers") == ("sdpa", "no CUDA GPU", False)
    assert fused_for(config, "cpu", "llama", "transformers") == ("off", "no CUDA GPU")
    _machine(monkeypatch, modules=("flash_attn", "liger_kernel"))
    attention, why, flatten = attention_for(config, "cuda:0", "bf16", "transformers")
    assert attention == "flash_attention_2" and flatten and "bf16" in why
    assert attention_for(config, "cuda:0", "fp32", "transformers")[0] == "sdpa"
    assert fused_for(config, "cuda:0", "qwen2", "transformers")[0] == "liger"
    assert fused_for(config, "cuda:0", "gpt_oss", "transformers") == (
        "off", "Liger does not patch gpt_oss",
    )  # fmt: skip
    assert fused_for(config, "cuda:0", "qwen2", "unsloth")[0] == "off"
    padded, _ = demo(workspace, "packing=off")
    assert attention_for(padded, "cuda:0", "bf16", "transformers")[2] is False  # rows, masked
    off, _ = demo(workspace, "training.attention=sdpa", "training.fused_loss=off")
    assert attention_for(off, "cuda:0", "bf16", "transformers") == ("sdpa", "chosen", False)
    assert fused_for(off, "cuda:0", "qwen2", "transformers") == ("off", "turned off")
    _machine(monkeypatch)  # asked for by name where it cannot run: refused, with the way out
    named, _ = demo(workspace, "training.attention=flash_attention_2", "training.fused_loss=liger")
    with pytest.raises(BackendError, match="flash-attn"):
        attention_for(named, "cuda:0", "bf16", "transformers")
    with pytest.raises(BackendError, match="liger-kernel is not installed"):
        fused_for(named, "cuda:0", "qwen2", "transformers")


def test_a_bad_kernel_setting_is_refused_with_its_choices(workspace):
    from studio.train.config import ConfigError

    with pytest.raises(ConfigError) as err:
        demo(workspace, "training.attention=flash3")[0].validate()
    assert err.value.code == "not_a_choice" and "flash_attention_2" in str(err.value)


def test_a_cpu_run_records_which_kernels_ran(workspace, capfd):
    config, preset = demo(workspace, "max_steps=1", "validation_split=0")
    run, code = train_here(workspace, config, preset)
    assert code == 0
    notes = run.info()["notes"]
    assert "attention: sdpa (no CUDA GPU); packed rows, documents masked from each other" in notes
    assert "fused loss: off (no CUDA GPU)" in notes
    assert "[studio] attention: sdpa (no CUDA GPU)" in capfd.readouterr().out  # its header


def test_the_estimate_drops_the_logits_when_the_loss_is_fused(monkeypatch):
    """Qwen2.5's 152k vocabulary: the logits are the largest part of the 0.5B LoRA preset's
    step; with Liger (asked for, or auto where it is installed) they become chunks."""
    from studio.train import presets
    from studio.train.start import estimate_memory, expected_fused

    plain, _ = presets.load("qwen2.5-0.5b-lora", ["training.fused_loss=off"])
    fused, _ = presets.load("qwen2.5-0.5b-lora", ["training.fused_loss=liger"])
    arch = plain.architecture
    before, after = estimate_memory(plain, arch), estimate_memory(fused, arch)
    assert after.parts["logits"] < before.parts["logits"] / 10
    assert after.total < before.total
    auto, _ = presets.load("qwen2.5-0.5b-lora")
    _machine(monkeypatch)
    assert not expected_fused(auto, arch)
    _machine(monkeypatch, modules=("liger_kernel",))
    assert expected_fused(auto, arch)
    _machine(monkeypatch, modules=("liger_kernel",), supported=())
    assert not expected_fused(auto, arch)


@pytest.mark.slow
def test_the_prepared_gpu_check_runs_what_this_machine_can_and_says_why_not_the_rest(tmp_path):
    """bench/gpu_check.py on CPU (--smoke): the plain packed and padded checks train through
    the studio and report their kernels; every other check is listed with its reason."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO, child_env

    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(tmp_path / "out"),
         "--ws", str(tmp_path / "ws"), "--smoke", "--steps", "3", "--archs", "qwen05"],
        capture_output=True, text=True, env=child_env(), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    rows = {r["check"]: r for r in report["rows"]}
    assert set(rows) == {"qwen05 plain-packed", "qwen05 plain-padded"}
    assert all(r["state"] == "completed" and r["tokens_per_s"] for r in rows.values())
    assert "packed rows" in rows["qwen05 plain-packed"]["kernels"]
    assert "one row per sequence, padded" in rows["qwen05 plain-padded"]["kernels"]
    reasons = "\n".join(report["skipped"])
    for check in ("liger-packed", "flash-packed", "unsloth-packed", "qlora-packed"):
        assert f"qwen05 {check}:" in reasons
    assert "SFTTrainer" in reasons
    assert (tmp_path / "out" / "gpu_check.md").read_text().startswith("GPU check on CPU")
