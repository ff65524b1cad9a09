"""Atomic writes: a crash or a full disk never leaves a half-written file behind.

Every write goes to a temporary file in the destination's folder (same filesystem, so the
final rename is atomic), is flushed and fsynced, then renamed over the destination. On any
error the temporary file is removed and the original, if there was one, is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def _temp_beside(dest: Path, mode: str) -> Iterator[Any]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    dest = Path(dest)
    with _temp_beside(dest, "wb") as fh:
        fh.write(data)
    return dest


def atomic_write_text(dest: str | os.PathLike, text: str) -> Path:
    dest = Path(dest)
    with _temp_beside(dest, "w") as fh:
        fh.write(text)
    return dest


def atomic_write_json(dest: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(dest, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    with open(src, "rb") as fin, _temp_beside(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)
    return dest


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def set_aside(path: str | os.PathLike) -> Path | None:
    """Move a damaged file out of the way before writing a new one, keeping its bytes for
    whoever wants to look: `<name>.damaged`, then `<name>.damaged-2`, ... Returns where it
    went, or None when it was gone already (another process was first)."""
    path = Path(path)
    target, n = path.with_name(f"{path.name}.damaged"), 2
    while target.exists():
        target, n = path.with_name(f"{path.name}.damaged-{n}"), n + 1
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    return target


def file_size(path: str | os.PathLike) -> int:
    """Bytes in a file; -1 when it does not exist (yet) or cannot be read."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def dir_size(path: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
