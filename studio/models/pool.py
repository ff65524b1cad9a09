"""Loaded models kept for reuse: a small LRU where adapters over one base share that base.

Comparing a base with five checkpoints of a LoRA run should cost one base model plus five
adapters, not six models. The pool loads each base once (`load_model`), wraps it in a peft
`PeftModel` the first time an adapter over it is asked for, and loads every further adapter
into the same wrapper (`load_adapter`); `use()` then switches to the wanted adapter, or
disables adapters for the base itself, and holds that base's lock for as long as the caller
generates, so two requests never see each other's adapter.

A full model (an exported or merged model, a full fine-tune's checkpoint) is a base of its
own. Least recently used bases are unloaded when more than `max_models` are held; `unload()`
drops them on request and gives the memory back (`gc` and the CUDA cache).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.models.load import (
    EMBEDDED_ALIASES,
    LoadedModel,
    ModelLoadError,
    ModelSource,
    check_adapter_weights,
    load_model,
    load_tokenizer,
    resolve_source,
)

MAX_MODELS_ENV = "STUDIO_MAX_LOADED_MODELS"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def adapter_base(source: ModelSource) -> ModelSource | None:
    """The base a LoRA adapter folder loads over, or None when `source` is a full model.

    The base recorded in `adapter_config.json` is used as is when it is a folder that exists
    or a hub id; a recorded folder that has moved (a workspace copied to another machine)
    falls back to the embedded model when the names match."""
    folder = source.local_dir
    if folder is None or (folder / "config.json").is_file():
        return None
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        return None
    try:
        recorded = json.loads(config_path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"{folder.name}: adapter_config.json is unreadable or names no base model ({exc})."
        ) from exc
    recorded = str(recorded or "")
    if not recorded:
        raise ModelLoadError(f"{folder.name}: adapter_config.json names no base model.")
    if Path(recorded).is_dir():
        return resolve_source(recorded)
    if Path(recorded).name in EMBEDDED_ALIASES:
        return resolve_source("")
    try:
        return resolve_source(recorded)
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"{folder.name} is an adapter over {recorded!r}, which is not here: {exc}"
        ) from exc


def tensor_bytes(model) -> int:
    """Bytes held by a model's parameters and buffers, each storage counted once (tied
    weights, and a base shared by several adapters, are not counted twice)."""
    seen: dict[int, int] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


@dataclass
class _Entry:
    """One loaded base and the adapters loaded into it (adapter folder -> peft name)."""

    base: LoadedModel
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: dict[str, str] = field(default_factory=dict)
    tokenizers: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # adapter folder -> display name
    last_used: float = field(default_factory=time.monotonic)

    @property
    def peft(self) -> bool:
        return bool(self.adapters)


class ModelPool:
    """An LRU of loaded models; adapters over the same base share one copy of it."""

    def __init__(
        self, max_models: int | None = None, *, device: str | None = None, guard=None
    ) -> None:
        self.max_models = max(1, int(max_models or os.environ.get(MAX_MODELS_ENV) or 2))
        self.device = device
        # guard(source, device) raises ModelLoadError when a model must not be loaded now
        # (a training run needs the GPU); see studio/models/gpu_guard.py.
        self.guard = guard
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()

    # --- using a model ----------------------------------------------------------------
    @contextlib.contextmanager
    def use(
        self,
        source: ModelSource,
        *,
        base: ModelSource | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
    ) -> Iterator[LoadedModel]:
        """The model `source` names, ready to run, for the duration of the `with` block. An
        adapter loads over the base its config names, or over `base` when given. Pickle
        weights (`*.bin`) load only with `allow_pickle`."""
        base_source = adapter_base(source)
        if base_source is not None and base is not None:
            base_source = base
        entry = self._entry(base_source or source, trust_remote_code, allow_pickle)
        with entry.lock:
            entry.last_used = time.monotonic()
            if base_source is None:
                yield from self._as_base(entry)
            else:
                yield from self._as_adapter(entry, source)

    def _as_base(self, entry: _Entry) -> Iterator[LoadedModel]:
        if not entry.peft:
            yield entry.base
            return
        with entry.base.model.disable_adapter():
            yield entry.base

    def _as_adapter(self, entry: _Entry, source: ModelSource) -> Iterator[LoadedModel]:
        folder = str(source.local_dir.resolve())
        name = self._load_adapter(entry, source, folder)
        entry.base.model.set_adapter(name)
        yield LoadedModel(
            source=source,
            model=entry.base.model,
            tokenizer=entry.tokenizers[folder],
            device=entry.base.device,
            dtype=entry.base.dtype,
            load_seconds=0.0,
            trust_remote_code=entry.base.trust_remote_code,
            extra={"base": entry.base.source.name, "adapter": name},
        )

    def _load_adapter(self, entry: _Entry, source: ModelSource, folder: str) -> str:
        if folder in entry.adapters:
            return entry.adapters[folder]
        from peft import PeftModel

        check_adapter_weights(source.local_dir, source.name)
        tokenizer = entry.base.tokenizer
        if any((source.local_dir / f).is_file() for f in TOKENIZER_FILES):
            tokenizer = load_tokenizer(source, trust_remote_code=entry.base.trust_remote_code)
        vocab = entry.base.model.get_input_embeddings().num_embeddings
        if len(tokenizer) > vocab:
            raise ModelLoadError(
                f"{source.name} adds tokens its base {entry.base.source.name} does not have "
                f"({len(tokenizer)} > {vocab}); export it as a merged model and load that."
            )
        name = f"a{len(entry.adapters)}"
        try:
            if not entry.peft:
                entry.base.model = PeftModel.from_pretrained(
                    entry.base.model, str(source.local_dir), adapter_name=name
                )
            else:
                entry.base.model.load_adapter(str(source.local_dir), adapter_name=name)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelLoadError(f"Could not load the adapter {source.name}: {exc}") from exc
        entry.base.model.eval()
        entry.adapters[folder] = name
        entry.tokenizers[folder] = tokenizer
        entry.names[folder] = source.name
        return name

    def _entry(self, base: ModelSource, trust_remote_code: bool, allow_pickle: bool) -> _Entry:
        ref = str(base.local_dir.resolve()) if base.local_dir is not None else base.ref
        key = (ref, bool(trust_remote_code), bool(allow_pickle))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
            self._evict(keep=self.max_models - 1)
            if self.guard is not None:
                self.guard(base, self.device)
            entry = _Entry(
                load_model(
                    base,
                    device=self.device,
                    trust_remote_code=trust_remote_code,
                    allow_pickle=allow_pickle,
                )
            )
            self._entries[key] = entry
            return entry

    # --- memory -----------------------------------------------------------------------
    def _evict(self, keep: int) -> None:
        """Unload least recently used bases (never one in use) until at most `keep` remain."""
        for key in list(self._entries):
            if len(self._entries) <= keep:
                break
            entry = self._entries[key]
            if entry.lock.acquire(blocking=False):
                try:
                    del self._entries[key]
                finally:
                    entry.lock.release()
        _free_memory()

    def unload(self, name: str | None = None) -> list[str]:
        """Unload the base called `name` (with its adapters), or every model; returns the
        names unloaded. A model in use right now is unloaded when its user is done."""
        dropped = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                if name is None or entry.base.source.name == name:
                    with entry.lock:
                        del self._entries[key]
                    dropped.append(entry.base.source.name)
        _free_memory()
        return dropped

    def loaded(self) -> list[dict]:
        """What is held, most recently used last: base, its adapters, device and bytes."""
        with self._lock:
            entries = list(self._entries.values())
        return [
            {
                "model": e.base.source.name,
                "adapters": list(e.names.values()),
                "device": e.base.device,
                "bytes": tensor_bytes(e.base.model),
            }
            for e in entries
        ]

    def memory_bytes(self) -> int:
        return sum(item["bytes"] for item in self.loaded())


def _free_memory() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def pool_opener(
    ws,
    pool: ModelPool | None = None,
    *,
    local_roots=None,
    trust_remote_code=False,
    allow_pickle=False,
):
    """`open_model(spec, base=None)` on a model pool, for `with open_model(spec) as loaded:`.
    Names resolve like the model pickers' (the embedded model, workspace models, `run:<id>`,
    `run:<id>@<step>`, a folder, a hub id), folders confined to `local_roots` when given; an
    adapter loads over the model named `base` instead of the one its config records."""
    pool = pool or ModelPool()

    def open_model(spec: str, *, base: str | None = None, trust_remote_code=trust_remote_code):
        named = ws.model_dirs(gguf=True)
        source = resolve_source(spec, named_dirs=named, local_roots=local_roots)
        over = resolve_source(base, named_dirs=named, local_roots=local_roots) if base else None
        return pool.use(
            source, base=over, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
        )

    return open_model


# --- the GPU a training run needs ----------------------------------------------------------
LOAD_MARGIN = 1.15  # weights plus the generation cache and allocator slack


def weights_bytes(source: ModelSource) -> int | None:
    """Size of a local model's weight files (what loading puts on the device), or None
    when it cannot be known without the hub."""
    folder = source.local_dir
    if folder is None:
        return None
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) or None


def gpu_room_message(
    name: str, need: int | None, total: int, free: int, training: list[tuple[str, int | None]]
) -> str | None:
    """Why `name` must not be loaded beside the training runs (id, estimated peak bytes),
    or None when both fit. The room left is the GPU minus the larger of what the runs'
    estimates say they need and what is in use now."""
    if not training:
        return None
    gib = 1024**3
    run_ids = ", ".join(run for run, _ in training)
    if need is None or any(peak is None for _, peak in training):
        return (
            f"A training run ({run_ids}) is using the GPU and the memory {name} needs cannot be "
            "estimated, so it is not loaded there. Wait for the run to finish or stop it."
        )
    reserved = max(sum(peak for _, peak in training), total - free)
    room = total - reserved
    if need * LOAD_MARGIN <= room:
        return None
    return (
        f"A training run ({run_ids}) needs about {reserved / gib:.1f} GiB of the GPU's "
        f"{total / gib:.1f} GiB, and {name} needs about {need * LOAD_MARGIN / gib:.1f} GiB more: "
        "both do not fit. Wait for the run to finish, stop it, or pick a smaller model."
    )


def training_guard(ws):
    """A pool guard that refuses to load a model onto a GPU a live training run needs,
    unless the run's memory estimate and the model's size say both fit."""

    def guard(source: ModelSource, device: str | None) -> None:
        from studio.hardware import pick_device
        from studio.runs.store import list_runs

        device = device or pick_device()
        if not device.startswith("cuda"):
            return
        training = []
        for run in list_runs(ws):
            on_gpu = str(run.info().get("device") or "cuda").startswith("cuda")
            if on_gpu and run.state in {"running", "queued"} and run.alive():
                estimate = run.json_of(run.estimate_path) or {}
                training.append((run.id, estimate.get("total")))
        if not training:
            return
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        message = gpu_room_message(source.name, weights_bytes(source), total, free, training)
        if message:
            raise ModelLoadError(message)

    return guard
