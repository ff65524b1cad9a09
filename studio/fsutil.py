"""Atomic writes: a crash or a full disk never leaves a half-written file behind.

Every write goes to a temporary file in the destination's folder (same filesystem, so the
final rename is atomic), is flushed and fsynced, then renamed over the destination. On any
error the temporary file is removed and the original, if there was one, is untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
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


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_size(path: str | os.PathLike) -> int:
    """Bytes in a file; -1 when it does not exist (yet) or cannot be read."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def dir_size(path: str | os.PathLike) -> int:
    """Bytes in the files under a folder (a file removed meanwhile counts for nothing)."""
    total = 0
    for entry in Path(path).rglob("*"):
        with contextlib.suppress(OSError):
            if entry.is_file():
                total += entry.stat().st_size
    return total


class GaveUpWaiting(Exception):
    """`exclusive_lock` stopped waiting because its `give_up` said so."""


@contextlib.contextmanager
def exclusive_lock(
    path: str | os.PathLike,
    *,
    poll_s: float = 0.2,
    on_wait: Callable[[], None] | None = None,
    give_up: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, waiting while another process holds
    it: `on_wait()` is called once when it has to wait, and `give_up()`, asked at every
    poll, ends the wait with `GaveUpWaiting`. A killed holder releases it by dying."""
    with open(path, "a+") as handle:
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait:
                    on_wait()
                waited = True
                if give_up and give_up():
                    raise GaveUpWaiting() from None
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
