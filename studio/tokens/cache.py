"""Token stores in the workspace: keyed, built once, shared, listed, pinned and evicted.

A store lives in `workspace/.cache/tokens/<key>/`. The key is a hash of what decides the
tokens: the content (sha256) of the dataset versions, the tokenizer (its vocabulary,
rules and special tokens), the chat template in force and the encoding settings that
change a row's tokens or labels. Any change of those encodes again; nothing else does
(packing, padding and the validation split are indexes over the same store).

A store is written under a temporary name and renamed into place once complete, so a
killed process, a full disk or a cancel never leave one that a reader takes for complete.
Two processes that need the same store take turns on its lock file: the second waits and
then reads what the first wrote. A training process holds the lock shared while it trains,
so eviction (least recently used first, down to the size cap) never removes a store in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import dir_size
from studio.labels.encode import EncodingSettings, Tokens
from studio.tokens.build import Cancelled, Progress, default_workers, encode_to_folder
from studio.tokens.rows import TokenRows

FORMAT = 2  # bump when the files or their meaning change: old stores are encoded again
DEFAULT_CAP_GB = 64.0
CAP_ENV = "STUDIO_TOKEN_CACHE_GB"
WAIT_POLL_S = 0.2
PARALLEL_BYTES = 16 << 20  # data files at least this large are encoded by worker processes

# Settings that change a row's tokens or labels (packing only through whether rows are
# truncated; padding, masking pad ids and the split act later, on the index and batches).
ROW_SETTINGS = (
    "stage",
    "loss",
    "truncation_side",
    "add_eos",
    "add_special_tokens",
    "response_template",
)


class StoreError(StudioError, ValueError):
    """A store could not be built or read; `reason` says why (disk_full, ...)."""

    def __init__(self, message: str, reason: str = "data") -> None:
        super().__init__(message)
        self.reason = reason


def tokens_dir(ws) -> Path:
    return ws.root / ".cache" / "tokens"


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything in a tokenizer that decides the ids it gives: its serialised
    model, normaliser and pre-tokeniser, added tokens, special tokens and chat template."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        digest.update(backend.to_str().encode("utf-8"))
    else:  # a slow tokenizer: its vocabulary
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode("utf-8"))
    state = {
        "class": type(tokenizer).__name__,
        "special": {
            name: getattr(tokenizer, name, None)
            for name in ("bos_token", "eos_token", "pad_token", "unk_token")
        },
        "extra_special": sorted(map(str, tokenizer.all_special_tokens)),
        "template": getattr(tokenizer, "chat_template", None),
        "flags": {
            name: getattr(tokenizer, name, None)
            for name in (
                "add_bos_token",
                "add_eos_token",
                "split_special_tokens",
                "clean_up_tokenization_spaces",
                "legacy",
                "add_prefix_space",
            )
        },
    }
    digest.update(json.dumps(state, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def row_settings(settings: EncodingSettings) -> dict:
    values = {name: getattr(settings, name) for name in ROW_SETTINGS}
    values["truncate"] = settings.packing != "concatenated"
    if values["truncate"]:
        values["max_length"] = settings.max_length
    return values


def data_sha256(version) -> str:
    """The sha256 of a version's data file, from its manifest (computed for old ones)."""
    from studio.data.records import dataset_file

    manifest = json.loads((Path(version.path) / "manifest.json").read_text(encoding="utf-8"))
    recorded = (manifest.get("sha256") or {}).get(version.files[0])
    if recorded:
        return recorded
    digest = hashlib.sha256()
    with open(dataset_file(version), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(versions: list, tok: Tokens, settings: EncodingSettings) -> dict:
    """What a store is made of; its key is the hash of this."""
    return {
        "format": FORMAT,
        "data": [data_sha256(v) for v in versions],
        "tokenizer": tokenizer_fingerprint(tok.tokenizer),
        "template": hashlib.sha256((tok.template or "").encode("utf-8")).hexdigest(),
        "settings": row_settings(settings),
    }


def store_key(description: dict) -> str:
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --- locks --------------------------------------------------------------------------------


def _lock_path(root: Path, key: str) -> Path:
    return root / f"{key}.lock"


@contextlib.contextmanager
def _exclusive(root: Path, key: str, cancel, on_wait):
    """Hold the store's lock (waiting, cancellably, while another process holds it)."""
    from studio.fsutil import GaveUpWaiting, exclusive_lock

    path = _lock_path(root, key)
    try:
        with exclusive_lock(path, poll_s=WAIT_POLL_S, on_wait=on_wait, give_up=cancel):
            yield
    except GaveUpWaiting:
        raise Cancelled() from None


def _try_exclusive(root: Path, key: str):
    """The store's lock if nobody holds it (file handle, to close), else None."""
    handle = open(_lock_path(root, key), "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Pin:
    """A shared hold on a store for as long as a process reads it: eviction and removal
    leave it alone."""

    def __init__(self, root: Path, key: str) -> None:
        self.handle = open(_lock_path(root, key), "a+")  # noqa: SIM115
        fcntl.flock(self.handle, fcntl.LOCK_SH)

    def release(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


# --- open or build --------------------------------------------------------------------------


def _open_complete(folder: Path) -> TokenRows | None:
    if not (folder / "meta.json").is_file():
        return None
    try:
        return TokenRows.open(folder)
    except (OSError, ValueError, KeyError):
        return None  # damaged: encoded again (the caller removes it under the lock)


def _touch(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / "used").touch()


def open_or_build(
    ws,
    versions: list,
    tok: Tokens,
    settings: EncodingSettings,
    rows: Callable[[], Iterable[tuple[int, dict]]],
    *,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    pin: bool = False,
) -> TokenRows:
    """The store of `versions` encoded with `tok` and `settings`: opened when it exists,
    else encoded from `rows()` (the versions' rows in order). `pin`: hold it for as long as
    the returned rows are in use (`rows.pin.release()`)."""
    root = tokens_dir(ws)
    root.mkdir(parents=True, exist_ok=True)
    description = describe(versions, tok, settings)
    key = store_key(description)
    folder = root / key
    found = _open_complete(folder)
    built = False
    if found is None:

        def waiting():
            if progress:
                progress(Progress("waiting"))

        with _exclusive(root, key, cancel, waiting):
            found = _open_complete(folder)  # another process may have just finished it
            if found is None:
                _remove_leftovers(root, key)
                meta = {
                    "key": key,
                    "description": description,
                    "sources": [v.spec for v in versions],
                    "tokenizer": getattr(tok.tokenizer, "name_or_path", "") or "",
                    "settings": settings.to_dict(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                total = sum(int(v.rows or 0) for v in versions) or None
                if workers is None:  # starting workers costs seconds: small data is faster here
                    size = sum(int(v.bytes or 0) for v in versions)
                    workers = default_workers() if size >= PARALLEL_BYTES else 1
                _build(root, key, rows(), tok, settings, meta, workers, total, progress, cancel)
                found = TokenRows.open(folder)
                built = True
    _touch(folder)
    if pin:
        found.pin = Pin(root, key)
    found.meta["cached"] = not built
    if built:
        evict(ws, keep={key})
    return found


def _build(root, key, rows, tok, settings, meta, workers, total, progress, cancel) -> None:
    from studio.train.process import is_disk_full

    partial = root / f".tmp-{key}-{os.getpid()}-{secrets.token_hex(3)}"
    partial.mkdir()
    try:
        encode_to_folder(
            partial,
            rows,
            tok,
            settings,
            meta=meta,
            workers=workers,
            total_rows=total,
            progress=progress,
            cancel=cancel,
        )
        os.rename(partial, root / key)
    except BaseException as exc:
        written = dir_size(partial)
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError) and is_disk_full(exc, root):
            raise StoreError(
                f"the disk filled up while encoding {', '.join(meta['sources'])} into "
                f"{root} ({written / 2**20:,.0f} MiB written before it stopped). Nothing was "
                "kept. Free some space (old token stores: python -m studio tokens list / "
                "remove; old checkpoints, exports) and try again.",
                "disk_full",
            ) from None
        raise


def _remove_leftovers(root: Path, key: str) -> None:
    """Under the key's lock: a damaged store and half-written ones of killed processes."""
    folder = root / key
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    for partial in root.glob(f".tmp-{key}-*"):
        shutil.rmtree(partial, ignore_errors=True)


# --- list, remove, evict --------------------------------------------------------------------


@dataclass
class StoreInfo:
    key: str
    path: Path
    bytes: int
    rows: int
    tokens: int
    sources: list[str]
    tokenizer: str
    settings: dict  # the encoding settings of the check or run that made it
    made_by: dict  # of those, the ones that decide its rows (its key)
    created: str
    last_used: float
    in_use: bool
    complete: bool = True

    def made_by_text(self) -> str:
        """The settings that made the rows, in a few words (packing, padding and the split
        are not among them: they are indexes over the same store)."""
        made = self.made_by
        parts = [str(made.get("stage", "")), f"loss {made.get('loss', '')}"]
        truncated = made.get("truncate", True)
        parts.append(f"max_length {made.get('max_length', '')}" if truncated else "whole rows")
        if made.get("response_template"):
            parts.append(f"marker {made['response_template']!r}")
        return ", ".join(parts)

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "path": str(self.path),
            "bytes": self.bytes,
            "rows": self.rows,
            "tokens": self.tokens,
            "bytes_per_token": round(self.bytes_per_token, 3),
            "sources": self.sources,
            "tokenizer": self.tokenizer,
            "settings": self.settings,
            "made_by": self.made_by,
            "created": self.created,
            "last_used": self.last_used,
            "in_use": self.in_use,
            "complete": self.complete,
        }


def _in_use(root: Path, key: str) -> bool:
    handle = _try_exclusive(root, key)
    if handle is None:
        return True
    handle.close()
    return False


def list_stores(ws) -> list[StoreInfo]:
    """Every store in the workspace, most recently used first; half-written ones of
    processes that are gone are removed on the way."""
    root = tokens_dir(ws)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".tmp-"):
            key = folder.name.split("-")[1]
            if not _in_use(root, key):  # nobody is writing it: a leftover of a killed run
                shutil.rmtree(folder, ignore_errors=True)
            continue
        if not folder.is_dir() or not (folder / "meta.json").is_file():
            continue
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        used = folder / "used"
        found.append(
            StoreInfo(
                key=folder.name,
                path=folder,
                bytes=dir_size(folder),
                rows=int(meta.get("rows", 0)),
                tokens=int(meta.get("tokens", 0)),
                sources=list(meta.get("sources", [])),
                tokenizer=str(meta.get("tokenizer", "")),
                settings=dict(meta.get("settings", {})),
                made_by=dict(meta.get("description", {}).get("settings", {})),
                created=str(meta.get("created", "")),
                last_used=used.stat().st_mtime if used.exists() else folder.stat().st_mtime,
                in_use=_in_use(root, folder.name),
                complete=bool(meta),
            )
        )
    found.sort(key=lambda s: s.last_used, reverse=True)
    return found


def remove_store(ws, key: str) -> StoreInfo:
    """Delete one store (refused while a process reads or writes it)."""
    root = tokens_dir(ws)
    match = [s for s in list_stores(ws) if s.key == key or s.key.startswith(key or "?")]
    if len(match) != 1:
        raise StoreError(
            f"no token store {key!r}" if not match else f"{key!r} names several token stores"
        )
    store = match[0]
    handle = _try_exclusive(root, store.key)
    if handle is None:
        raise StoreError(f"token store {store.key} is in use by a running process; stop it first")
    try:
        shutil.rmtree(store.path)
    finally:
        handle.close()
    return store


def cap_bytes(ws) -> int:
    value = os.environ.get(CAP_ENV) or ws.meta().get("token_cache_gb") or DEFAULT_CAP_GB
    try:
        return int(float(value) * 2**30)
    except (TypeError, ValueError):
        return int(DEFAULT_CAP_GB * 2**30)


def evict(ws, keep: set[str] = frozenset(), cap: int | None = None) -> list[StoreInfo]:
    """Remove least recently used stores until the cache fits its cap; stores in use and
    those in `keep` stay. Returns what was removed."""
    cap = cap_bytes(ws) if cap is None else cap
    stores = list_stores(ws)
    total = sum(s.bytes for s in stores)
    removed = []
    for store in sorted(stores, key=lambda s: s.last_used):
        if total <= cap:
            break
        if store.key in keep:
            continue
        handle = _try_exclusive(tokens_dir(ws), store.key)
        if handle is None:
            continue
        try:
            shutil.rmtree(store.path, ignore_errors=True)
        finally:
            handle.close()
        total -= store.bytes
        removed.append(store)
    return removed
