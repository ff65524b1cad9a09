"""A merge recipe: which fine-tunes, how, with what weights. Saved as YAML beside the result.

name: persona-mix
kind: adapters            # adapters (LoRA runs on one base, via peft) | models (mergekit)
method: linear            # adapters: linear, ties, dare_ties, svd
                          # models: linear, task_arithmetic, ties, dare_ties, slerp
base: tsumugi-tiny        # the shared base (models: the base the task vectors are taken from)
sources:
  - {source: "run:20261122-...", weight: 0.7}
  - {source: "run:20261122-...", weight: 0.3}
density: 0.5              # ties / dare: share of each task vector that is kept
dtype: float32
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from studio.errors import StudioError
from studio.safety import YamlRefused, load_yaml

KINDS = ("adapters", "models")
ADAPTER_METHODS = ("linear", "ties", "dare_ties", "svd")
MODEL_METHODS = ("linear", "task_arithmetic", "ties", "dare_ties", "slerp")
DTYPES = ("float32", "bfloat16", "float16")


class RecipeError(StudioError, ValueError):
    pass


@dataclass
class Source:
    source: str
    """A model name as the model pickers list it: `run:<run id>`, a workspace model, a folder."""
    weight: float = 1.0
    density: float | None = None


@dataclass
class MergeRecipe:
    name: str
    kind: str = "adapters"
    method: str = "linear"
    base: str | None = None
    sources: list[Source] = field(default_factory=list)
    density: float = 0.5
    dtype: str = "float32"

    def validate(self) -> MergeRecipe:
        if not self.name or not isinstance(self.name, str):
            raise RecipeError("name the merged model (name: ...)")
        if self.kind not in KINDS:
            raise RecipeError(f"kind must be one of {', '.join(KINDS)}")
        methods = ADAPTER_METHODS if self.kind == "adapters" else MODEL_METHODS
        if self.method not in methods:
            raise RecipeError(f"{self.kind} merge method must be one of {', '.join(methods)}")
        if len(self.sources) < 2:
            raise RecipeError("a merge needs at least two sources")
        if self.method == "slerp" and len(self.sources) != 2:
            raise RecipeError("slerp merges exactly two models")
        task_vectors = self.kind == "models" and self.method not in ("linear", "slerp")
        if task_vectors and not self.base:
            raise RecipeError(f"{self.method} needs the base the fine-tunes started from")
        if self.dtype not in DTYPES:
            raise RecipeError(f"dtype must be one of {', '.join(DTYPES)}")
        if not 0 < self.density <= 1:
            raise RecipeError("density must be above 0 and at most 1")
        for s in self.sources:
            if not isinstance(s.source, str) or not s.source:
                raise RecipeError("every source needs a model or run name (source: ...)")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> MergeRecipe:
        if not isinstance(data, dict):
            raise RecipeError("a recipe is a mapping of fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"unknown recipe field(s): {', '.join(unknown)}")
        sources = []
        for i, item in enumerate(data.get("sources") or []):
            if isinstance(item, str):
                item = {"source": item}
            if not isinstance(item, dict) or set(item) - {"source", "weight", "density"}:
                raise RecipeError(f"sources[{i}] must be {{source, weight, density}}")
            try:
                sources.append(
                    Source(
                        str(item.get("source") or ""),
                        float(item.get("weight", 1.0)),
                        None if item.get("density") is None else float(item["density"]),
                    )
                )
            except (TypeError, ValueError) as exc:
                raise RecipeError(f"sources[{i}]: weight and density must be numbers") from exc
        try:
            density = float(data.get("density", 0.5))
        except (TypeError, ValueError) as exc:
            raise RecipeError("density must be a number") from exc
        for key in ("name", "kind", "method", "base", "dtype"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise RecipeError(f"{key} must be a name, not {type(data[key]).__name__}")
        return cls(
            name=str(data.get("name") or ""),
            kind=str(data.get("kind", "adapters")),
            method=str(data.get("method", "linear")),
            base=data.get("base"),
            sources=sources,
            density=density,
            dtype=str(data.get("dtype", "float32")),
        ).validate()

    @classmethod
    def read(cls, path: str | Path) -> MergeRecipe:
        try:
            data = load_yaml(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, YamlRefused) as exc:
            raise RecipeError(f"cannot read the recipe {path}: {exc}") from exc
        return cls.from_dict(data)
