"""Versioned datasets and evaluation suites in the workspace.

Layout: `<store>/<name>/v0001/` holding the data file(s) and `manifest.json`
(name, version, parent, operation, settings, counts, format, created). A version folder is
built under a temporary name and renamed into place, so a half-written version never shows.
Versions are never modified after they are written; new work makes a new version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import atomic_copy, atomic_write_json, file_sha256, read_json
from studio.safety import UnsafeInputError, is_within, safe_name

MANIFEST = "manifest.json"


@dataclass
class DatasetVersion:
    name: str
    version: str
    path: Path
    format: str
    operation: str
    parent: str | None = None
    rows: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    created: str = ""
    settings: dict = field(default_factory=dict)
    source: str | None = None
    counts: dict = field(default_factory=dict)  # rows in/out, removed per step, ...
    seconds: float | None = None  # how long the operation took

    @property
    def spec(self) -> str:
        """`name/vNNNN`: how pickers, configs and the CLI name this version."""
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    @classmethod
    def from_manifest(cls, path: Path) -> DatasetVersion:
        m = read_json(path / MANIFEST)
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        return cls(path=path, **{k: v for k, v in m.items() if k in known})


def _count_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _next_version(dataset_dir: Path) -> str:
    existing = [int(p.name[1:]) for p in dataset_dir.glob("v[0-9]*") if p.name[1:].isdigit()]
    return f"v{max(existing, default=0) + 1:04d}"


def dataset_folder(store: Path, name: str) -> Path:
    """`store/name`, refused when it is a link that leads out of `store`: a new version is
    written only inside the workspace."""
    folder = store / safe_name(name)
    if not is_within(folder, store):
        raise UnsafeInputError(
            f"{folder} is a link to {folder.resolve()}, outside {store}; the studio writes "
            "only inside the workspace. Remove the link, or choose another name."
        )
    return folder


def add_version(
    store: Path,
    name: str,
    files: dict[str, Path],
    *,
    format: str,
    operation: str,
    parent: str | None = None,
    settings: dict | None = None,
    source: str | None = None,
    counts: dict | None = None,
    seconds: float | None = None,
    move: bool = False,
) -> DatasetVersion:
    """Copy `files` (destination name -> source path) into a new version of dataset `name`;
    with `move`, rename them in instead (files written inside the dataset's folder, so a
    large result is not copied twice).

    The first file named is the primary one whose rows are counted.
    """
    name = safe_name(name)
    dataset_dir = dataset_folder(store, name)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=dataset_dir))
    try:
        for dest_name, src in files.items():
            if move:
                os.replace(src, tmp / safe_name(dest_name))
            else:
                atomic_copy(src, tmp / safe_name(dest_name))
        primary = tmp / next(iter(files))
        version = _next_version(dataset_dir)
        manifest = {
            "name": name,
            "version": version,
            "parent": parent,
            "operation": operation,
            "settings": settings or {},
            "format": format,
            "rows": _count_rows(primary),
            "bytes": sum(p.stat().st_size for p in tmp.iterdir()),
            "files": list(files),
            "sha256": {n: file_sha256(tmp / n) for n in files},
            "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": counts or {},
            "seconds": None if seconds is None else round(seconds, 3),
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        final = dataset_dir / version
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetVersion.from_manifest(final)


def list_versions(store: Path) -> list[DatasetVersion]:
    if not store.is_dir():
        return []
    found = []
    for manifest in sorted(store.glob(f"*/v*/{MANIFEST}")):
        try:
            found.append(DatasetVersion.from_manifest(manifest.parent))
        except (OSError, ValueError, TypeError):
            continue  # a damaged manifest hides that version; it never breaks the listing
    return found


def list_datasets(ws) -> list[DatasetVersion]:
    return list_versions(ws.datasets)


def list_eval_suites(ws) -> list[DatasetVersion]:
    return list_versions(ws.evals / "suites")


class DatasetNotFound(StudioError, LookupError):
    """No dataset (or version) of that name in the workspace."""

    code = "no_such_dataset"


def find_version(ws, spec: str) -> DatasetVersion:
    """A dataset version by `name` (its latest version) or `name/v0002`."""
    name, _, version = (spec or "").strip().partition("/")
    matches = [d for d in list_datasets(ws) if d.name == name]
    if version:
        matches = [d for d in matches if d.version == version]
    if not matches:
        known = sorted({d.name for d in list_datasets(ws)})
        raise DatasetNotFound(
            f"no dataset {spec!r} in the workspace (datasets: {', '.join(known)})",
            spec=spec,
            known=", ".join(known),
        )
    return max(matches, key=lambda d: d.version)
