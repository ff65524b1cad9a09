"""The workspace: one folder that holds the user's datasets, runs, models and evaluations.

Resolution order: an explicit path, then `$STUDIO_WORKSPACE`, then `./workspace`.
Originals are never modified; everything the studio writes goes in here, atomically.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from studio import __version__
from studio.errors import StudioError
from studio.fsutil import atomic_write_json, read_json

ENV_VAR = "STUDIO_WORKSPACE"
DEFAULT_DIR = "workspace"
SUBDIRS = ("datasets", "runs", "models", "evals")
MARKER = "workspace.json"


def resolve_workspace_path(path: str | os.PathLike | None = None) -> Path:
    chosen = path or os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def evals(self) -> Path:
        return self.root / "evals"

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def meta(self) -> dict:
        return read_json(self.marker, default={}) or {}

    def update_meta(self, **fields) -> dict:
        meta = self.meta() | fields
        atomic_write_json(self.marker, meta)
        return meta

    def model_dirs(self, *, checkpoints: bool = True, gguf: bool = False) -> dict[str, Path]:
        """Models saved in the workspace (a model, or an adapter over its base), by folder name, then
        what finished runs trained (`run:<run id>`: a full model, or an adapter that loads
        over its base), then, unless `checkpoints` is off, every complete intermediate
        checkpoint of every run (`run:<run id>@<step>`) and the best one of each run that
        evaluated while training (`run:<run id>@best`). With `gguf`, also every exported GGUF
        file (`<folder>:<quant>`), which only llama.cpp runs (the Compare and Chat tabs)."""
        found = (
            p
            for p in sorted(self.models.glob("*"))
            if not p.name.startswith(".")  # an export or merge still being written
            and _is_model_dir(p)
        )
        dirs = {p.name: p for p in found}
        if gguf:
            from studio.export.gguf import gguf_models

            dirs.update(gguf_models(self.models))
        for final in sorted(self.runs.glob("*/final"), reverse=True):
            if _is_model_dir(final):
                dirs[f"run:{final.parent.name}"] = final
        if checkpoints:
            from studio.runs.store import Run

            dirs.update(self.checkpoint_dirs())
            for best in sorted(self.runs.glob("*/best.json"), reverse=True):
                found = Run(best.parent).best()
                if found and _is_model_dir(found["path"]):
                    dirs[f"run:{best.parent.name}@best"] = found["path"]
        return dirs

    def checkpoint_dirs(self, run_id: str | None = None) -> dict[str, Path]:
        """Complete intermediate checkpoints (`run:<run id>@<step>`), newest run first and
        in step order within a run; only `run_id`'s when given."""
        pattern = f"{run_id}/checkpoints/checkpoint-*" if run_id else "*/checkpoints/checkpoint-*"
        found = []
        for ckpt in self.runs.glob(pattern):
            step = ckpt.name.removeprefix("checkpoint-")
            if step.isdigit() and (ckpt / "trainer_state.json").is_file() and _is_model_dir(ckpt):
                found.append((ckpt.parent.parent.name, int(step), ckpt))
        found.sort(key=lambda f: (f[0], -f[1]), reverse=True)
        return {f"run:{run}@{step}": ckpt for run, step, ckpt in found}

    def summary(self) -> dict:
        from studio.data.registry import list_datasets

        return {
            "root": str(self.root),
            "folders": {name: str(self.root / name) for name in SUBDIRS},
            "datasets": [d.to_dict() for d in list_datasets(self)],
            "meta": self.meta(),
        }


def _is_model_dir(folder: Path) -> bool:
    return any((folder / f).is_file() for f in ("config.json", "adapter_config.json"))


class WorkspaceError(StudioError, RuntimeError):
    pass


def open_workspace(path: str | os.PathLike | None = None, *, create: bool = True) -> Workspace:
    """Open (and on first use create) a workspace, registering the bundled samples once."""
    root = resolve_workspace_path(path)
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a folder; choose another --workspace")
    if not create and not (root / MARKER).exists():
        raise WorkspaceError(f"{root} is not a studio workspace (no {MARKER})")
    ws = Workspace(root)
    try:
        for name in SUBDIRS:
            (root / name).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create the workspace at {root}: {exc.strerror}") from exc
    meta = ws.meta()
    if not meta:
        meta = ws.update_meta(created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), studio=__version__)
    if not meta.get("samples_registered"):
        from studio.data.samples import register_samples

        _, missing = register_samples(ws)
        if missing:
            warnings.warn(f"bundled sample files are missing: {missing}", stacklevel=2)
        else:
            # Recorded once: a user who deletes a sample does not get it back next launch.
            ws.update_meta(samples_registered=True)
    return ws
