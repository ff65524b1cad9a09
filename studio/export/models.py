"""Merge full models (not adapters) with mergekit's Python API, on the CPU.

`merge_models(recipe, sources, base, out_dir)` turns a `MergeRecipe` of kind "models" into a
`mergekit.config.MergeConfiguration`, runs `mergekit.merge.run_merge` with low-memory options and
returns a report (method, sources, weights, seconds, peak RSS, files). The caller resolves the
recipe's source names to local folders first.

Safety and reproducibility choices:
- only safetensors weights are read (a folder with pickled `.bin` weights only is refused), and
  remote code is never trusted;
- the models' tensor names and shapes are compared before mergekit starts, so a size or
  architecture mismatch names the folder at fault instead of failing deep inside the merge;
- arithmetic runs in float32 (bfloat16 is many times slower on CPUs without bf16 instructions)
  and the result is written in the recipe's dtype;
- the tokenizer, chat template and generation config are copied from the first source (the base
  when the first source has none) by this module, not by mergekit, whose donor for a merge
  without a base depends on set ordering;
- the merge is written into a temporary sibling folder and moved into `out_dir` only when it
  succeeded, so a failed merge leaves no half-written model behind;
- dare_ties is seeded, and the caller's random generators are restored afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

from studio.errors import StudioError
from studio.export.recipe import MergeRecipe, RecipeError
from studio.hardware import peak_rss_mb

MERGEKIT_METHODS = {
    "linear": "linear",
    "task_arithmetic": "task_arithmetic",
    "ties": "ties",
    "dare_ties": "dare_ties",
    "slerp": "slerp",
}
TASK_VECTOR_METHODS = ("task_arithmetic", "ties", "dare_ties")
SPARSE_METHODS = ("ties", "dare_ties")

# mergekit's writer keeps a whole output shard in memory before writing it: a smaller shard
# bounds that buffer (its default is 5e9 bytes). The value is bytes of tensor data.
OUT_SHARD_BYTES = 1_000_000_000
COMPUTE_DTYPE = "float32"
SEED = 0

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


class MergeError(StudioError, RuntimeError):
    """The merge could not run: the message says why, in words a user can act on."""


def merge_models(
    recipe: MergeRecipe, sources: list[Path], base: Path | None, out_dir: Path
) -> dict:
    """Merge `sources` (local model folders, in the recipe's order) into `out_dir`.

    `base` is the folder the task vectors are taken from (task_arithmetic, ties, dare_ties); it
    is ignored by linear, and slerp uses the first source as its base, as mergekit does.
    Raises `MergeError` for anything that stops the merge (`RecipeError` for a bad recipe).
    """
    started = time.perf_counter()
    recipe.validate()
    if recipe.kind != "models":
        raise RecipeError(f"merge_models merges full models, not {recipe.kind}")
    sources = [Path(s).resolve() for s in sources]
    if len(sources) != len(recipe.sources):
        raise MergeError(
            f"the recipe lists {len(recipe.sources)} sources but {len(sources)} folders were given"
        )
    needs_base = recipe.method in TASK_VECTOR_METHODS
    if needs_base and base is None:
        raise MergeError(f"{recipe.method} needs the base model folder the fine-tunes started from")
    base = Path(base).resolve() if (base is not None and needs_base) else None
    out_dir = Path(out_dir).resolve()

    folders = ([base] if base else []) + sources
    for folder in folders:
        _check_folder(folder)
    _check_same_architecture(sources[0], [f for f in folders if f != sources[0]])
    _check_output(out_dir, folders)

    config_dict, params = _config_dict(recipe, sources, base)
    from mergekit.config import MergeConfiguration

    try:
        config = MergeConfiguration.model_validate(config_dict)
    except Exception as exc:  # pydantic ValidationError or mergekit's RuntimeError
        raise MergeError(f"mergekit refused the merge configuration: {exc}") from exc
    config_yaml = config.to_yaml() + "\n"  # before run_merge, which rewrites the config

    donor = _tokenizer_donor(sources[0], base)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.merging-", dir=out_dir.parent))
    rss = _RssSampler()
    maxrss_before = peak_rss_mb()
    try:
        with rss, _preserved_rng():
            _run(config, work, sources)
        (work / "mergekit_config.yml").write_text(config_yaml, encoding="utf-8")
        if recipe.method == "linear":
            _write_config(sources[0], work, recipe.dtype)
        if donor is not None:
            for name in TOKENIZER_FILES:
                if (donor / name).is_file():
                    shutil.copy2(donor / name, work / name)
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(work.iterdir()):
            os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    maxrss_after = peak_rss_mb()

    files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    return {
        "method": recipe.method,
        "mergekit_method": MERGEKIT_METHODS[recipe.method],
        "sources": [str(s) for s in sources],
        "weights": [float(s.weight) for s in recipe.sources],
        **params,
        "base": str(base if base else sources[0]) if recipe.method != "linear" else None,
        "dtype": recipe.dtype,
        "compute_dtype": COMPUTE_DTYPE,
        "tokenizer_from": str(donor) if donor else None,
        "out_dir": str(out_dir),
        "seconds": round(time.perf_counter() - started, 3),
        # ru_maxrss is the process's high-water mark since it started: absolute, not per merge.
        "peak_rss_mb": round(maxrss_after, 1),
        "peak_rss_kind": "absolute (ru_maxrss, process high-water mark)",
        # How far the merge raised that high-water mark (0 when it stayed below an older peak).
        "peak_rss_delta_mb": round(max(0.0, maxrss_after - maxrss_before), 1),
        # Current RSS sampled every 10 ms during the merge: its own peak and growth, split into
        # anonymous memory (output shard buffer, intermediates) and file-backed pages (the
        # memory-mapped inputs, reclaimable). Peaks of each part are taken separately.
        **rss.figures(),
        "files": files,
        "bytes": sum((out_dir / f).stat().st_size for f in files),
        "mergekit_version": _mergekit_version(),
    }


# -- configuration ---------------------------------------------------------------------------


def _config_dict(recipe: MergeRecipe, sources: list[Path], base: Path | None) -> tuple[dict, dict]:
    """The mergekit configuration as a mapping of mergekit objects, and the report's extras."""
    from mergekit.common import ModelPath, ModelReference

    def ref(path: Path) -> ModelReference:
        # Built explicitly: mergekit's string form reads "@" as a revision and "+" as a LoRA.
        return ModelReference(model=ModelPath(path=str(path)))

    method = recipe.method
    weights = [float(s.weight) for s in recipe.sources]
    config: dict = {"merge_method": MERGEKIT_METHODS[method], "dtype": COMPUTE_DTYPE}
    if recipe.dtype != COMPUTE_DTYPE:
        config["out_dtype"] = recipe.dtype
    extras: dict = {}

    if method == "slerp":
        total = weights[0] + weights[1]
        if min(weights) < 0 or total <= 0:
            raise MergeError("slerp needs two weights of at least 0 that do not both equal 0")
        t = weights[1] / total
        config["base_model"] = ref(sources[0])
        config["models"] = [{"model": ref(s)} for s in sources]
        config["parameters"] = {"t": t}
        extras["t"] = t
        return config, extras

    if method == "linear" and abs(sum(weights)) < 1e-12:
        raise MergeError("the linear weights add up to 0: the merged weights would be undefined")
    models = []
    densities = []
    for path, source in zip(sources, recipe.sources, strict=True):
        params: dict = {"weight": float(source.weight)}
        if method in SPARSE_METHODS:
            density = recipe.density if source.density is None else float(source.density)
            if not 0 < density <= 1:
                raise MergeError(f"the density of {source.source} must be above 0 and at most 1")
            params["density"] = density
            densities.append(density)
        models.append({"model": ref(path), "parameters": params})
    config["models"] = models
    if method in TASK_VECTOR_METHODS:
        config["base_model"] = ref(base)
    if densities:
        extras["densities"] = densities
    return config, extras


def _run(config, work: Path, sources: list[Path]) -> None:
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    options = MergeOptions(
        device="cpu",
        cuda=False,
        low_cpu_memory=False,  # it keeps results on the accelerator: meaningless on a CPU
        lazy_unpickle=True,  # only matters for pickles, which are refused before; harmless
        out_shard_size=OUT_SHARD_BYTES,
        safe_serialization=True,
        copy_tokenizer=False,  # copied below from a fixed donor
        write_model_card=False,  # its README lists absolute local paths; the YAML is kept
        allow_crimes=False,
        trust_remote_code=False,
        clone_tensors=False,
        async_write=False,  # asynchronous writes hold more shards in memory
        random_seed=SEED,
        quiet=True,
    )
    try:
        run_merge(config, out_path=str(work), options=options)
    except MergeError:
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        lowered = text.lower()
        if any(k in lowered for k in ("shape", "size mismatch", "size of tensor", "crimes")):
            raise MergeError(f"the models do not share an architecture: {text}") from exc
        raise MergeError(f"mergekit failed on {', '.join(map(str, sources))}: {text}") from exc


def _write_config(donor: Path, work: Path, dtype: str) -> None:
    """Without a base, mergekit takes config.json from whichever model its set yields first:
    take the first source's instead, with the output dtype."""
    data = json.loads((donor / "config.json").read_text(encoding="utf-8"))
    data["dtype"] = dtype
    data.pop("torch_dtype", None)
    (work / "config.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# -- checks ----------------------------------------------------------------------------------


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files mergekit reads: model.safetensors or the shards of its index."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MergeError(f"{folder}: cannot read model.safetensors.index.json: {exc}") from exc
        names = sorted(set(weight_map.values()))
        bad = [n for n in names if not n.endswith(".safetensors")]
        if bad:
            raise MergeError(f"{folder}: the index points at non-safetensors files: {bad}")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise MergeError(f"{folder}: shards listed in the index are missing: {missing}")
        return [folder / n for n in names]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    return []


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise MergeError(f"{folder} is not a model folder")
    if not (folder / "config.json").is_file():
        raise MergeError(f"{folder} has no config.json: it is not a full model")
    if _weight_files(folder):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise MergeError(
            f"{folder} holds only pickled weights ({', '.join(pickles)}); the studio does not "
            "load pickles, which can run code: convert the model to safetensors first"
        )
    others = sorted(p.name for p in folder.glob("*.safetensors"))
    if others:
        raise MergeError(
            f"{folder} has no model.safetensors (found {', '.join(others)}): "
            "an adapter folder is merged as an adapter, not as a model"
        )
    raise MergeError(f"{folder} has no model.safetensors")


def _read_config(folder: Path) -> dict:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MergeError(f"{folder}: cannot read config.json: {exc}") from exc
    if not isinstance(data, dict):
        raise MergeError(f"{folder}: config.json is not a mapping")
    return data


def _shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for path in _weight_files(folder):
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in list(f.keys()):  # safe_open objects are not iterable
                    shapes[key] = tuple(f.get_slice(key).get_shape())
        except Exception as exc:  # a truncated or corrupt file
            raise MergeError(f"{folder}: cannot read {path.name}: {exc}") from exc
    return shapes


def _check_same_architecture(reference: Path, others: list[Path]) -> None:
    """Compare model types and tensor shapes with the first source, naming the odd folder out."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    ref_cfg = _read_config(reference)
    ref_shapes = _shapes(reference)
    for folder in [reference, *others]:
        model_type = _read_config(folder).get("model_type")
        if model_type not in CONFIG_MAPPING:
            raise MergeError(
                f"{folder}: model type {model_type!r} is not built into transformers; it would "
                "need remote code, which merging never runs"
            )
    prefix = "the models do not share an architecture"
    for folder in others:
        cfg = _read_config(folder)
        for key in ("model_type", "architectures"):
            if cfg.get(key) != ref_cfg.get(key):
                raise MergeError(
                    f"{prefix}: {folder} has {key} {cfg.get(key)!r}, "
                    f"{reference} has {ref_cfg.get(key)!r}"
                )
        shapes = _shapes(folder)
        for name, shape in ref_shapes.items():
            if name in shapes and shapes[name] != shape:
                diffs = [
                    f"{k}={cfg.get(k)} vs {ref_cfg.get(k)}"
                    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
                    if cfg.get(k) != ref_cfg.get(k)
                ]
                detail = f" ({', '.join(diffs)})" if diffs else ""
                raise MergeError(
                    f"{prefix}: {folder} has {name} of shape {list(shapes[name])}, "
                    f"{reference} has {list(shape)}{detail}"
                )
        only_here = sorted(set(shapes) - set(ref_shapes))
        only_ref = sorted(set(ref_shapes) - set(shapes))
        if only_here or only_ref:
            names = only_here or only_ref
            where = folder if only_here else reference
            raise MergeError(
                f"{prefix}: {where} has {len(names)} tensor(s) the other lacks, "
                f"e.g. {names[0]} ({folder} against {reference})"
            )


def _check_output(out_dir: Path, inputs: list[Path]) -> None:
    if out_dir in inputs:
        raise MergeError(f"{out_dir} is one of the models being merged: choose another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise MergeError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir():
        stale = sorted(
            p.name
            for p in out_dir.iterdir()
            if p.suffix.lower() in WEIGHT_SUFFIXES or p.name.endswith(".index.json")
        )
        if stale:
            raise MergeError(f"{out_dir} already holds model weights ({', '.join(stale)})")


def _tokenizer_donor(first: Path, base: Path | None) -> Path | None:
    for folder in (first, base):
        if folder is None:
            continue
        if (folder / "tokenizer_config.json").is_file() and (
            (folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()
        ):
            return folder
    return None


# -- measurement -----------------------------------------------------------------------------


def _current_rss_mb() -> dict[str, float] | None:
    """Current resident memory (Linux): total, anonymous (heap, tensors) and file-backed (the
    memory-mapped safetensors inputs, which the kernel can drop under pressure)."""
    fields = {"VmRSS": "total", "RssAnon": "anon", "RssFile": "file"}
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in fields:
                    found[fields[key]] = int(value.split()[0]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return found if len(found) == len(fields) else None


class _RssSampler:
    """Samples the current RSS every `interval` seconds in a thread (Linux only; the figures
    stay None elsewhere)."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.start: dict[str, float] | None = None
        self.peak: dict[str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = _current_rss_mb()
        if now is not None and self.peak is not None:
            self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self.start = _current_rss_mb()
        if self.start is not None:
            self.peak = dict(self.start)
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()

    def figures(self) -> dict:
        if self.peak is None or self.start is None:
            return {
                "merge_rss_peak_mb": None,
                "merge_rss_growth_mb": None,
                "merge_rss_anon_growth_mb": None,
                "merge_rss_file_growth_mb": None,
            }
        return {
            "merge_rss_peak_mb": round(self.peak["total"], 1),
            "merge_rss_growth_mb": round(self.peak["total"] - self.start["total"], 1),
            "merge_rss_anon_growth_mb": round(self.peak["anon"] - self.start["anon"], 1),
            "merge_rss_file_growth_mb": round(self.peak["file"] - self.start["file"], 1),
        }


@contextlib.contextmanager
def _preserved_rng():
    """mergekit seeds the global generators (random, numpy, torch): give the caller's back."""
    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def _mergekit_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mergekit")
    except PackageNotFoundError:
        return None
