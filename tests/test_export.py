"""Export a run (merged or adapter) and merge LoRA fine-tunes, on short runs trained here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from studio.export.export import ExportError, export_run
from studio.export.merge import merge
from studio.export.recipe import MergeRecipe, RecipeError
from studio.train import presets
from studio.train.process import execute
from studio.train.start import prepare_run
from tests.conftest import REPO, child_env

IM_END = 5  # <|im_end|> in the embedded tokenizer


def trained(ws, *sets):
    config, preset = presets.load(
        "cpu-demo-sft", ["max_steps=3", "save_steps=100", "validation_split=0", *sets]
    )
    run = prepare_run(ws, config, preset=preset)
    assert execute(run, ws) == 0, run.log_tail()
    return run


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from studio.workspace import open_workspace

    return open_workspace(tmp_path_factory.mktemp("export") / "ws")


@pytest.fixture(scope="module")
def runs(ws):
    return trained(ws, "seed=1"), trained(ws, "seed=2", "learning_rate=1e-2")


def logits_of(model_or_path, ids):
    from transformers import AutoModelForCausalLM

    model = model_or_path
    if not hasattr(model, "forward"):
        model = AutoModelForCausalLM.from_pretrained(str(model_or_path))
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


def base_plus_adapter(run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.paths import EMBEDDED_MODEL_DIR

    base = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR))
    return PeftModel.from_pretrained(base, str(run.final_dir))


def test_merged_export_generates_what_base_plus_adapter_generates(ws, runs):
    from studio.generate import GenerationSettings, generate
    from studio.models.load import LoadedModel, load_model, resolve_source

    run = runs[0]
    done = export_run(ws, run, mode="merged")
    assert done.path == ws.models / f"{run.id}-merged" and done.eos_token_ids == [2, IM_END]
    assert (done.path / "model.safetensors").is_file() and (done.path / "README.md").is_file()
    assert not list(done.path.glob("*.bin"))
    settings = GenerationSettings(max_new_tokens=24, greedy=True)
    exported = load_model(resolve_source(done.name, named_dirs=ws.model_dirs()))
    reference = LoadedModel(exported.source, base_plus_adapter(run), exported.tokenizer, "cpu",
                            torch.float32, 0.0)  # fmt: skip
    for prompt in ("こんにちは。", "お茶の淹れ方は？"):
        a = generate(exported, prompt, settings, chat=True)
        b = generate(reference, prompt, settings, chat=True)
        assert a.text == b.text and a.new_tokens == b.new_tokens
    card = (done.path / "README.md").read_text()
    assert run.id in card and "sample-chat-ojousama/v0001" in card and "<|im_end|>" in card
    assert "learning_rate" in card  # the training config


def test_exported_model_loads_in_plain_transformers_and_stops_at_end_of_turn(ws, runs):
    done = export_run(ws, runs[0], mode="merged", dtype="bfloat16", name="plain-check")
    script = f"""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
path = {str(done.path)!r}
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path)
assert model.dtype == torch.bfloat16, model.dtype
assert GenerationConfig.from_pretrained(path).eos_token_id == [2, {IM_END}]
ids = tok.apply_chat_template([{{"role": "user", "content": "こんにちは"}}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
n = ids["input_ids"].shape[1]
# Force <|im_end|> as the third new token: generation must stop right there.
force = lambda batch, sent: [{IM_END}] if sent.shape[0] - n == 2 else list(range(len(tok)))
out = model.generate(**ids, max_new_tokens=20, do_sample=False, prefix_allowed_tokens_fn=force)
new = out[0, n:].tolist()
assert new[-1] == {IM_END} and len(new) == 3, new
print("ok", len(new))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=child_env(), cwd=REPO)  # fmt: skip
    assert proc.returncode == 0 and "ok 3" in proc.stdout, proc.stderr[-2000:]


def test_adapter_export_and_refusals(ws, runs):
    done = export_run(ws, runs[1], mode="adapter")
    assert {"adapter_config.json", "adapter_model.safetensors", "generation_config.json",
            "tokenizer.json", "README.md"} <= {p.name for p in done.path.iterdir()}  # fmt: skip
    assert done.name in ws.model_dirs()  # an adapter folder is a model every tab can pick
    again = export_run(ws, runs[1], mode="adapter")
    assert again.name == f"{done.name}-2"  # never overwrites
    unfinished = prepare_run(ws, presets.load("cpu-demo-sft")[0])
    with pytest.raises(ExportError, match="no finished model"):
        export_run(ws, unfinished)
    with pytest.raises(ExportError, match="mode must be"):
        export_run(ws, runs[0], mode="gguf")
    # An adapter in pickle form (copied in from elsewhere) is refused, not unpickled.
    import shutil

    from studio.runs.store import Run

    pickled = ws.runs / f"{runs[1].id}-pickled"
    shutil.copytree(runs[1].root, pickled)
    (pickled / "final" / "adapter_model.safetensors").rename(pickled / "final" / "adapter.bin")
    with pytest.raises(ExportError, match="pickle"):
        export_run(ws, Run(pickled))


def test_weighted_adapter_merge_with_weights_one_and_zero_equals_the_first(ws, runs):
    first, second = runs
    recipe = MergeRecipe.from_dict(
        {
            "name": "one-zero",
            "kind": "adapters",
            "method": "linear",
            "sources": [
                {"source": f"run:{first.id}", "weight": 1.0},
                {"source": f"run:{second.id}", "weight": 0.0},
            ],
        }
    )
    report = merge(ws, recipe)
    assert report["combination"] == "linear" and report["name"] == "one-zero"
    ids = [1, 4, 200, 300, 400, 5, 4]
    merged = logits_of(ws.models / "one-zero", ids)
    expected = logits_of(base_plus_adapter(first), ids)
    assert torch.allclose(merged, expected, atol=1e-4)
    other = logits_of(base_plus_adapter(second), ids)
    assert not torch.allclose(merged, other, atol=1e-3)
    saved = MergeRecipe.read(ws.models / "one-zero" / "merge_recipe.yaml")
    assert saved == recipe
    assert "one-zero" in ws.model_dirs()
    # and a real mix
    mixed = MergeRecipe.from_dict({**recipe.to_dict(), "name": "mix", "method": "ties",
                                   "density": 0.5, "sources": [
                                       {"source": f"run:{first.id}", "weight": 0.6},
                                       {"source": f"run:{second.id}", "weight": 0.4}]})  # fmt: skip
    report = merge(ws, mixed)
    assert torch.isfinite(logits_of(ws.models / "mix", ids)).all()


@pytest.mark.parametrize(
    "data, words",
    [
        ({"name": "x", "sources": ["a"]}, "at least two sources"),
        ({"name": "x", "kind": "soup", "sources": ["a", "b"]}, "kind must be"),
        ({"name": "x", "method": "slerp", "sources": ["a", "b"]}, "adapters merge method"),
        (
            {"name": "x", "kind": "models", "method": "ties", "sources": ["a", "b"]},
            "needs the base",
        ),
        ({"name": "x", "sources": ["a", "b"], "weights": [1, 2]}, "unknown recipe field"),
        ({"name": "x", "sources": [{"source": "a", "weight": "heavy"}, "b"]}, "must be numbers"),
    ],
)
def test_bad_recipes_say_what_is_wrong(data, words):
    with pytest.raises(RecipeError, match=words):
        MergeRecipe.from_dict(data)


def test_cli_export_and_merge(ws, runs, tmp_path):
    def studio(*args):
        return subprocess.run(
            [sys.executable, "-m", "studio", *args, "--workspace", str(ws.root), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=180, env=child_env(),
        )  # fmt: skip

    proc = studio("export", runs[0].id, "--name", "cli-export")
    out = json.loads(proc.stdout)
    assert out["ok"] and out["name"] == "cli-export" and out["eos_token_ids"] == [2, IM_END]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: cli-merge\nkind: adapters\nmethod: svd\nsources:\n"
        f"  - {{source: 'run:{runs[0].id}', weight: 0.5}}\n"
        f"  - {{source: 'run:{runs[1].id}', weight: 0.5}}\n"
    )
    out = json.loads(studio("merge", str(recipe)).stdout)
    assert out["ok"] and out["name"] == "cli-merge" and out["peak_rss_mb"] > 0
    bad = studio("export", "no-such-run")
    assert bad.returncode == 1 and "no run named" in json.loads(bad.stdout)["error"]["message"]


def test_full_models_merge_through_mergekit_from_workspace_models(ws, runs):
    """Two exported fine-tunes (full models now) merged by mergekit with task arithmetic over
    the embedded base: a new workspace model that loads and computes."""
    a = export_run(ws, runs[0], mode="merged", name="full-a")
    b = export_run(ws, runs[1], mode="merged", name="full-b")
    recipe = MergeRecipe.from_dict(
        {
            "name": "task-mix",
            "kind": "models",
            "method": "task_arithmetic",
            "base": "tsumugi-tiny",
            "sources": [{"source": a.name, "weight": 1.0}, {"source": b.name, "weight": 0.0}],
        }
    )
    report = merge(ws, recipe)
    assert report["name"] == "task-mix" and report["peak_rss_mb"] > 0
    ids = [1, 4, 200, 300, 5]
    assert torch.allclose(logits_of(ws.models / "task-mix", ids), logits_of(a.path, ids),
                          atol=1e-4)  # fmt: skip
    assert (ws.models / "task-mix" / "merge_recipe.yaml").is_file()
    adapters_as_models = MergeRecipe.from_dict({**recipe.to_dict(), "name": "wrong", "sources": [
        {"source": f"run:{runs[0].id}"}, {"source": f"run:{runs[1].id}"}]})  # fmt: skip
    with pytest.raises(RecipeError, match="is a LoRA adapter"):
        merge(ws, adapters_as_models)
    assert not (ws.models / "wrong").exists()
