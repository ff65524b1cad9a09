"""Merge several fine-tunes into one model in the workspace, from a recipe (recipe.py).

- LoRA runs on one base: peft's `add_weighted_adapter` (linear, ties, dare_ties, svd), then
  merged into the base, so the result loads anywhere.
- Full models: mergekit (models.py), streaming tensors instead of loading each model whole.

The recipe is saved beside the result (`merge_recipe.yaml`), with a model card.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from studio.errors import StudioError
from studio.export.export import (
    copy_tokenizer,
    free_name,
    stop_ids,
    write_generation_config,
)
from studio.export.recipe import MergeRecipe, RecipeError
from studio.fsutil import atomic_write_text, dir_size
from studio.hardware import peak_rss_mb


class MergeFailed(StudioError, RuntimeError):
    pass


def resolve(ws, spec: str) -> Path:
    """A source or base as the model pickers name it -> its folder."""
    from studio.models.load import ModelLoadError, resolve_source

    try:
        source = resolve_source(spec, named_dirs=ws.model_dirs())
    except ModelLoadError as exc:
        raise RecipeError(f"{spec}: {exc}") from exc
    if source.local_dir is None:
        raise RecipeError(
            f"{spec} is a hub id: download it first and merge the local folder (merging reads "
            "the weights tensor by tensor from disk)"
        )
    return source.local_dir


def adapter_info(folder: Path) -> dict | None:
    path = folder / "adapter_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def merge(ws, recipe: MergeRecipe) -> dict:
    """Run the recipe; returns a report (name, path, seconds, peak memory, ...)."""
    recipe.validate()
    folders = [resolve(ws, s.source) for s in recipe.sources]
    name = free_name(ws, recipe.name)
    ws.models.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ws.models))
    started = time.perf_counter()
    try:
        if recipe.kind == "adapters":
            report = merge_adapters(recipe, folders, work)
        else:
            from studio.export.models import merge_models

            base = resolve(ws, recipe.base) if recipe.base else None
            for folder in folders:
                if adapter_info(folder):
                    raise RecipeError(
                        f"{folder.name} is a LoRA adapter: merge adapters with kind: adapters, "
                        "or export the run merged first"
                    )
            report = merge_models(recipe, folders, base, work)
        atomic_write_text(work / "merge_recipe.yaml", recipe.to_yaml())
        atomic_write_text(work / "README.md", card(recipe, name))
        target = ws.models / name
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {
        **report,
        "name": name,
        "path": str(target),
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": dir_size(target),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def merge_adapters(recipe: MergeRecipe, folders: list[Path], out: Path) -> dict:
    """LoRA adapters trained on one base: a weighted adapter, merged into that base."""
    import torch
    from peft import PeftModel

    from studio.models.load import load_tokenizer, resolve_source, transformers_names

    infos = [adapter_info(f) for f in folders]
    for folder, info in zip(folders, infos, strict=True):
        if info is None:
            raise RecipeError(f"{folder.name} is not a LoRA adapter; use kind: models for it")
    bases = {i.get("base_model_name_or_path") for i in infos}
    if len(bases) != 1:
        raise RecipeError(
            f"the adapters were trained on different bases: {', '.join(map(str, bases))}"
        )
    recorded = bases.pop()
    base_ref = str(resolve_source(recipe.base).ref) if recipe.base else recorded
    AutoModelForCausalLM = transformers_names("AutoModelForCausalLM")  # noqa: N806
    model = AutoModelForCausalLM.from_pretrained(
        base_ref, dtype=getattr(torch, recipe.dtype), use_safetensors=True
    )
    names = [f"source{i}" for i in range(len(folders))]
    model = PeftModel.from_pretrained(model, str(folders[0]), adapter_name=names[0])
    for adapter_name, folder in zip(names[1:], folders[1:], strict=True):
        model.load_adapter(str(folder), adapter_name=adapter_name)
    ranks = {i.get("r") for i in infos}
    # peft's "linear" needs one rank; with several, concatenating is the exact weighted sum.
    combination = "cat" if recipe.method == "linear" and len(ranks) > 1 else recipe.method
    kwargs = {}
    if recipe.method in ("ties", "dare_ties"):
        kwargs["density"] = recipe.density
    model.add_weighted_adapter(
        names,
        [s.weight for s in recipe.sources],
        adapter_name="merged",
        combination_type=combination,
        **kwargs,
    )
    model.set_adapter("merged")
    merged = model.merge_and_unload(adapter_names=["merged"])
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer = load_tokenizer(resolve_source(str(folders[0])))
    tokenizer.save_pretrained(out)
    copy_tokenizer(folders[0], out)
    trained = (
        json.loads((folders[0] / "studio_run.json").read_text(encoding="utf-8"))
        if (folders[0] / "studio_run.json").is_file()
        else {}
    )
    write_generation_config(out, base_ref, tokenizer, stop_ids(tokenizer, trained.get("encoding")))
    return {
        "kind": "adapters",
        "method": recipe.method,
        "combination": combination,
        "sources": [str(f) for f in folders],
        "weights": [s.weight for s in recipe.sources],
        "base": base_ref,
    }


def card(recipe: MergeRecipe, name: str) -> str:
    rows = "\n".join(f"| `{s.source}` | {s.weight} |" for s in recipe.sources)
    return (
        f"# {name}\n\nMerged by Tsumugi Studio: {recipe.kind} merged with **{recipe.method}**"
        + (f" over `{recipe.base}`" if recipe.base else "")
        + f", {recipe.dtype}.\n\n| source | weight |\n|---|---|\n{rows}\n\n"
        "The recipe is in `merge_recipe.yaml`: `python -m studio merge merge_recipe.yaml` "
        "makes it again.\n"
    )
