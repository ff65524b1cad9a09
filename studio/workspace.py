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

    def model_dirs(self) -> dict[str, Path]:
        """Models saved in the workspace (a model, or an adapter over its base), by folder name, then
        what finished runs trained (`run:<run id>`: a full model, or an adapter that loads
        over its base)."""
        found = (
            p
            for p in sorted(self.models.glob("*"))
            if not p.name.startswith(".")  # an export or merge still being written
            and any((p / f).is_file() for f in ("config.json", "adapter_config.json"))
        )
        dirs = {p.name: p for p in found}
        for final in sorted(self.runs.glob("*/final"), reverse=True):
            if any((final / f).is_file() for f in ("config.json", "adapter_config.json")):
                dirs[f"run:{final.parent.name}"] = final
        return dirs

    def summary(self) -> dict:
        from studio.data.registry import list_datasets

        return {
            "root": str(self.root),
            "folders": {name: str(self.root / name) for name in SUBDIRS},
            "datasets": [d.to_dict() for d in list_datasets(self)],
            "meta": self.meta(),
        }


class WorkspaceError(RuntimeError):
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
