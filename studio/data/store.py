"""Dataset versions as Arrow datasets, for the data tab's operations.

`open_version` gives a version's rows as a `datasets.Dataset` (memory-mapped Arrow: a 2 GB
corpus is never loaded whole); `write_version` stores an operation's result as the next
version of a dataset, in Parquet with a manifest naming its parent, the operation, its
settings, its counts and how long it took. Versions are never changed afterwards: every
cleaning, deduplication, filter or split writes a new one, and the uploaded original is
never touched.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from studio.data.records import FORMATS, RecordError, dataset_file
from studio.data.registry import (
    DatasetVersion,
    add_version,
    dataset_folder,
    find_version,
    list_datasets,
)
from studio.errors import StudioError
from studio.safety import UnsafeInputError


class DataError(StudioError, ValueError):
    """A data operation that cannot be done; the message says why and what to do."""


def hf_datasets():
    """The `datasets` module, with its progress bars off (they would flood logs and the
    CLI's stderr; the studio reports progress itself)."""
    import datasets

    datasets.disable_progress_bars()
    return datasets


def cache_dir(ws) -> Path:
    """Where `datasets` keeps its Arrow files for this workspace (hidden, disposable)."""
    path = ws.root / ".cache" / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(ws, spec) -> DatasetVersion:
    """A version from `name`, `name/v0002` or a `DatasetVersion`."""
    if isinstance(spec, DatasetVersion):
        return spec
    try:
        return find_version(ws, str(spec or ""))
    except LookupError as exc:
        raise DataError(str(exc)) from exc


def open_version(ws, spec):
    """The rows of a dataset version as a memory-mapped `datasets.Dataset`."""
    datasets = hf_datasets()

    version = resolve(ws, spec)
    try:
        path = dataset_file(version)
    except RecordError as exc:
        raise DataError(str(exc)) from exc
    if not path.is_file():
        raise DataError(
            f"{version.spec}: its data file {path.name} is missing",
            code="data_file_missing",
            spec=version.spec,
            file=path.name,
        )
    kwargs = {"cache_dir": str(cache_dir(ws))}
    try:
        if path.suffix == ".parquet":
            data = datasets.Dataset.from_parquet(str(path), **kwargs)
        else:
            data = datasets.Dataset.from_json(str(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 (pyarrow and datasets raise many kinds)
        raise DataError(f"cannot read {version.spec} ({path.name}): {exc}") from exc
    # The first open converts the file into datasets' Arrow cache; Arrow's allocator keeps
    # what that took (about 1.8x a 400 MB corpus) unless told to give it back.
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    return data


def write_version(
    ws,
    name: str,
    data,
    *,
    format: str,
    operation: str,
    parent: DatasetVersion | str | None = None,
    settings: dict | None = None,
    counts: dict | None = None,
    seconds: float | None = None,
    source: str | None = None,
) -> DatasetVersion:
    """Store `data` (a `datasets.Dataset`) as the next version of dataset `name`, in Parquet.

    The file is written inside the dataset's folder under a hidden name and moved into the
    new version, which appears only when complete; a failure (a full disk) leaves the
    earlier versions as they were and removes the partial file."""
    if format not in FORMATS:
        raise DataError(f"unknown row form {format!r}; expected one of {', '.join(FORMATS)}")
    if len(data) == 0:
        raise DataError(
            f"{operation} left no rows; nothing was saved (loosen the settings)",
            code="no_rows_left",
            operation=operation,
        )
    try:
        folder = dataset_folder(ws.datasets, name)
    except UnsafeInputError as exc:
        raise DataError(str(exc)) from None
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".write-{uuid.uuid4().hex}.parquet"
    parent_spec = parent.spec if isinstance(parent, DatasetVersion) else parent
    hf_datasets()
    try:
        data.to_parquet(str(partial))
        return add_version(
            ws.datasets,
            name,
            {"data.parquet": partial},
            format=format,
            operation=operation,
            parent=parent_spec,
            settings=settings,
            counts=counts,
            seconds=seconds,
            source=source,
            move=True,
        )
    except OSError as exc:
        raise DataError(
            f"could not write the new version of {name}: {exc.strerror or exc}. Free some "
            "disk space and run it again; the earlier versions are unchanged."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def delete_version(ws, spec) -> DatasetVersion:
    """Remove one version. It is renamed away first, so it disappears at once and a crash
    midway leaves a hidden folder instead of a half-deleted version."""
    version = resolve(ws, spec)
    doomed = version.path.parent / f".deleting-{version.version}-{int(time.time())}"
    os.rename(version.path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    if not any(version.path.parent.glob("v[0-9]*")):
        shutil.rmtree(version.path.parent, ignore_errors=True)
    return version


def lineage(ws, spec) -> list[DatasetVersion]:
    """The version and its ancestors, newest first (stops at a parent that was deleted)."""
    by_spec = {v.spec: v for v in list_datasets(ws)}
    chain, seen = [], set()
    current = resolve(ws, spec)
    while current is not None and current.spec not in seen:
        chain.append(current)
        seen.add(current.spec)
        current = by_spec.get(current.parent or "")
    return chain


def split_version(ws, spec, *, validation: float = 0.05, seed: int = 42):
    """Split a version into `<name>-train` and `<name>-validation` (new datasets whose
    parent is the version), shuffled with `seed`; returns both versions."""
    version = resolve(ws, spec)
    data = open_version(ws, version)
    if not 0 < validation < 1:
        raise DataError(
            "the validation share must be between 0 and 1 (e.g. 0.05)", code="bad_validation_share"
        )
    held = max(1, round(len(data) * validation))
    if held >= len(data):
        raise DataError(
            f"{version.spec} has {len(data)} rows: too few to split",
            code="too_few_to_split",
            spec=version.spec,
            rows=len(data),
        )
    started = time.monotonic()
    parts = data.train_test_split(test_size=held, seed=seed, shuffle=True)
    settings = {"validation": validation, "seed": seed}
    made = []
    for suffix, part in (("train", parts["train"]), ("validation", parts["test"])):
        made.append(
            write_version(
                ws,
                f"{version.name}-{suffix}"[:80],
                part,
                format=version.format,
                operation="split",
                parent=version,
                settings=settings | {"part": suffix},
                counts={"in": len(data), "out": len(part)},
                seconds=time.monotonic() - started,
            )
        )
    return made[0], made[1]


EXPORT_FORMATS = ("jsonl", "parquet")


def export_version(ws, spec, fmt: str, dest: Path) -> Path:
    """Write a version as JSON Lines or Parquet to `dest` (a folder or a file path)."""
    if fmt not in EXPORT_FORMATS:
        raise DataError(f"export as one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    version = resolve(ws, spec)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{version.name}-{version.version}.{fmt}"
    data = open_version(ws, version)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
    try:
        if fmt == "parquet":
            data.to_parquet(str(partial))
        else:
            data.to_json(str(partial), lines=True, force_ascii=False)
        os.replace(partial, dest)
    except OSError as exc:
        raise DataError(f"could not write {dest}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return dest


def document_text(row: dict, format: str) -> str:
    """The text a filter, deduplication or classifier looks at, for any row form: the text;
    prompt and completion; or the contents of every message."""
    if format == "text":
        return str(row.get("text") or "")
    if format == "prompt_completion":
        return f"{row.get('prompt') or ''}\n{row.get('completion') or ''}"
    if format == "messages":
        return "\n".join(str(m.get("content") or "") for m in row.get("messages") or [])
    raise DataError(f"unknown row form {format!r}")
