"""Full-model merges through mergekit (studio.export.models), on copies of the bundled model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from studio.export.models import MergeError, merge_models
from studio.export.recipe import MergeRecipe, Source

TINY = Path(__file__).resolve().parent.parent / "assets" / "models" / "tsumugi-tiny"


def perturbed_copy(dest: Path, seed: int, scale: float = 0.02) -> Path:
    """The bundled model with every tensor moved by seeded noise; its real tokenizer kept."""
    shutil.copytree(TINY, dest)
    state = load_file(dest / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    state = {k: v + scale * torch.randn(v.shape, generator=gen) for k, v in state.items()}
    save_file(state, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge-models")
    base = root / "base"
    shutil.copytree(TINY, base)
    m1 = perturbed_copy(root / "m1", seed=1)
    m2 = perturbed_copy(root / "m2", seed=2)

    # Same family and vocabulary, another hidden size.
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = json.loads((TINY / "config.json").read_text())
    cfg.update(hidden_size=64, head_dim=16, intermediate_size=128)
    for key in ("architectures", "transformers_version", "model_type"):
        cfg.pop(key)
    torch.manual_seed(0)
    wide = root / "hidden64"
    LlamaForCausalLM(LlamaConfig(**cfg)).save_pretrained(wide, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TINY / name, wide / name)

    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(TINY / "config.json", pickled / "config.json")
    torch.save({"x": torch.zeros(2)}, pickled / "pytorch_model.bin")
    return {"base": base, "m1": m1, "m2": m2, "wide": wide, "pickled": pickled}


def recipe(method: str, weights, base: str | None = None, density: float = 0.5, **kw):
    return MergeRecipe(
        name="mix",
        kind="models",
        method=method,
        base=base,
        sources=[Source(f"s{i}", w) for i, w in enumerate(weights)],
        density=density,
        **kw,
    )


def weights_of(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no safetensors in {folder}"
    out = {}
    for f in files:
        out.update(load_file(f))
    return out


def test_linear_one_zero_is_the_first_model_and_loads(models, tmp_path):
    out = tmp_path / "out"
    report = merge_models(recipe("linear", [1.0, 0.0]), [models["m1"], models["m2"]], None, out)

    merged, first = weights_of(out), weights_of(models["m1"])
    assert set(merged) == set(first)  # tied embeddings: no lm_head.weight appears
    for name, tensor in first.items():
        assert merged[name].dtype == torch.float32
        assert torch.allclose(merged[name], tensor, atol=1e-6), name

    assert report["method"] == "linear"
    assert report["weights"] == [1.0, 0.0]
    assert report["sources"] == [str(models["m1"]), str(models["m2"])]
    assert report["seconds"] > 0 and report["peak_rss_mb"] > 0
    for name in (
        "config.json",
        "mergekit_config.yml",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "model.safetensors",
    ):
        assert name in report["files"], name
    assert "README.md" not in report["files"]
    assert "merge_method: linear" in (out / "mergekit_config.yml").read_text()
    assert not list(tmp_path.glob(".out.merging-*"))  # the work folder is gone

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert torch.allclose(model.model.embed_tokens.weight, first["model.embed_tokens.weight"])
    ids = tok("富士山は", return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] > ids["input_ids"].shape[1]
    assert tok.chat_template


def test_linear_half_half_is_the_mean(models, tmp_path):
    out = tmp_path / "out"
    merge_models(recipe("linear", [0.5, 0.5]), [models["m1"], models["m2"]], None, out)
    merged, a, b = weights_of(out), weights_of(models["m1"]), weights_of(models["m2"])
    for name in a:
        assert torch.allclose(merged[name], (a[name] + b[name]) / 2, atol=1e-6), name


def test_task_arithmetic_adds_task_vectors(models, tmp_path):
    out = tmp_path / "out"
    report = merge_models(
        recipe("task_arithmetic", [1.0, 1.0], base="base"),
        [models["m1"], models["m2"]],
        models["base"],
        out,
    )
    assert report["base"] == str(models["base"])
    merged = weights_of(out)
    b, m1, m2 = weights_of(models["base"]), weights_of(models["m1"]), weights_of(models["m2"])
    for name in b:
        expected = b[name] + (m1[name] - b[name]) + (m2[name] - b[name])
        assert torch.allclose(merged[name], expected, atol=1e-5), name


def test_slerp_at_zero_is_the_first_model(models, tmp_path):
    out = tmp_path / "out"
    report = merge_models(recipe("slerp", [1.0, 0.0]), [models["m1"], models["m2"]], None, out)
    assert report["t"] == 0.0
    merged, first = weights_of(out), weights_of(models["m1"])
    for name, tensor in first.items():
        assert torch.allclose(merged[name], tensor, atol=1e-5), name
    assert "t: 0.0" in (out / "mergekit_config.yml").read_text()


@pytest.mark.parametrize("method", ["ties", "dare_ties"])
def test_sparse_methods_give_finite_weights(models, tmp_path, method):
    r = recipe(method, [0.7, 0.3], base="base", density=0.5)
    r.sources[1].density = 0.8  # per-source density overrides the recipe's
    srcs = [models["m1"], models["m2"]]
    torch.manual_seed(123)
    before = torch.rand(1)
    report = merge_models(r, srcs, models["base"], tmp_path / "a")
    assert report["densities"] == [0.5, 0.8]
    merged, base = weights_of(tmp_path / "a"), weights_of(models["base"])
    assert set(merged) == set(base)
    for name, tensor in base.items():
        assert merged[name].shape == tensor.shape, name
        assert torch.isfinite(merged[name]).all(), name
    assert not torch.equal(
        merged["model.layers.0.mlp.up_proj.weight"], base["model.layers.0.mlp.up_proj.weight"]
    )
    if method == "dare_ties":  # seeded: the same recipe gives the same model
        merge_models(r, srcs, models["base"], tmp_path / "b")
        again = weights_of(tmp_path / "b")
        assert all(torch.equal(merged[k], again[k]) for k in merged)
    # the caller's random generator is left as it was
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)


def test_float16_output(models, tmp_path):
    out = tmp_path / "out"
    r = recipe("linear", [0.5, 0.5], dtype="float16")
    merge_models(r, [models["m1"], models["m2"]], None, out)
    merged = weights_of(out)
    assert {t.dtype for t in merged.values()} == {torch.float16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"


def test_different_hidden_size_is_refused(models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(MergeError, match="do not share an architecture") as info:
        merge_models(recipe("linear", [0.5, 0.5]), [models["m1"], models["wide"]], None, out)
    assert str(models["wide"]) in str(info.value)
    assert "hidden_size=64 vs 192" in str(info.value)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_pickle_only_folder_is_refused(models, tmp_path):
    with pytest.raises(MergeError, match="pickled weights") as info:
        merge_models(
            recipe("linear", [0.5, 0.5]), [models["m1"], models["pickled"]], None, tmp_path / "o"
        )
    assert str(models["pickled"]) in str(info.value)
    assert "pytorch_model.bin" in str(info.value)


def test_output_with_weights_is_refused(models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"")
    with pytest.raises(MergeError, match="already holds model weights"):
        merge_models(recipe("linear", [0.5, 0.5]), [models["m1"], models["m2"]], None, out)


def test_task_vectors_need_a_base_folder(models, tmp_path):
    with pytest.raises(MergeError, match="base"):
        merge_models(
            recipe("ties", [1.0, 1.0], base="base"),
            [models["m1"], models["m2"]],
            None,
            tmp_path / "o",
        )
