"""Load a causal LM and its tokenizer from the embedded model, a local folder or a hub id.

One code path for all three: a source is resolved to a folder or a hub id, then handed to
`AutoTokenizer`/`AutoModelForCausalLM` with safe defaults: safetensors only (no pickle)
unless explicitly allowed, `trust_remote_code` off unless the user turns it on, and the
dtype/device chosen for the hardware (fp32 on CPU).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.paths import EMBEDDED_MODEL_DIR, EMBEDDED_MODEL_NAME
from studio.safety import UnsafeInputError, confine, confinement

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
EMBEDDED_ALIASES = {"", "embedded", EMBEDDED_MODEL_NAME}


_IMPORT_LOCK = threading.Lock()


def transformers_names(*names: str):
    """Names from transformers, imported under a lock: its lazy module is not safe to
    initialise from two threads at once (the app warms a model in the background while a
    request may import the same names: "cannot import name 'AutoTokenizer'")."""
    with _IMPORT_LOCK:
        import transformers

        found = tuple(getattr(transformers, name) for name in names)
    return found[0] if len(found) == 1 else found


class ModelLoadError(StudioError, RuntimeError):
    """A model could not be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "embedded" | "local" | "hub"
    ref: str  # folder path or hub id
    name: str

    @property
    def local_dir(self) -> Path | None:
        return Path(self.ref) if self.kind in {"embedded", "local"} else None


def resolve_source(
    spec: str | None,
    *,
    named_dirs: dict[str, Path] | None = None,
    local_roots: list[Path] | None = None,
) -> ModelSource:
    """Turn what the user typed or picked into a model source.

    `named_dirs` maps known names (e.g. workspace models) to folders. `local_roots`, when
    given, confines arbitrary local folders to those roots (used when the app is exposed
    beyond this machine, so a browser cannot load from anywhere on disk).
    """
    spec = (spec or "").strip()
    if local_roots is None:  # the app, exposed: every folder a browser names is confined
        local_roots = confinement("models")
    if spec in EMBEDDED_ALIASES:
        return ModelSource("embedded", str(EMBEDDED_MODEL_DIR), EMBEDDED_MODEL_NAME)
    if named_dirs and spec in named_dirs:
        folder = Path(named_dirs[spec])
        if local_roots is not None:  # a workspace model may be a link: it too stays inside
            try:
                folder = confine(folder, local_roots)
            except UnsafeInputError as exc:
                raise ModelLoadError(str(exc)) from exc
        return ModelSource("local", str(folder), spec)
    candidate = Path(spec).expanduser()
    looks_like_path = spec.startswith(("/", ".", "~"))
    if local_roots is None and not looks_like_path:
        # A relative folder that exists. Not when confined: `owner/name` is then always a
        # hub id, so that the answer never tells whether such a folder exists.
        looks_like_path = os.sep in spec and candidate.exists() or candidate.is_dir()
    if looks_like_path:
        if local_roots is not None:
            try:
                candidate = confine(candidate, local_roots)
            except UnsafeInputError as exc:
                raise ModelLoadError(str(exc)) from exc
        if not candidate.is_dir():
            raise ModelLoadError(f"No model folder at {spec}. Check the path.")
        if not any((candidate / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise ModelLoadError(
                f"{spec} has no config.json: point at the folder that holds config.json, "
                "the tokenizer files and the *.safetensors weights."
            )
        _check_config_files(candidate)
        return ModelSource("local", str(candidate.resolve()), candidate.name)
    if HUB_ID.match(spec):
        return ModelSource("hub", spec, spec)
    raise ModelLoadError(
        f"{spec!r} is neither a model folder nor a hub id like 'owner/model-name'."
    )


def _check_config_files(folder: Path) -> None:
    """A config file that is not a JSON object is named with its line, before transformers
    fails on it with a less helpful message."""
    for name in ("config.json", "adapter_config.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problem = "it is not UTF-8 text"
        except json.JSONDecodeError as exc:
            problem = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        except OSError as exc:
            problem = f"it cannot be read ({exc.strerror})"
        else:
            if isinstance(data, dict):
                continue
            problem = f"it holds a JSON {type(data).__name__}, not an object"
        raise ModelLoadError(
            f"{path} is not a valid JSON file ({problem}). Restore the file from the model's "
            "original download, or choose another model folder."
        )


def _check_weights_format(folder: Path, allow_pickle: bool) -> None:
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any(folder.glob("*.bin")) or any(folder.glob("*.pt"))
    if has_safetensors:
        return
    if has_pickle and not allow_pickle:
        raise ModelLoadError(
            f"{folder} only has pickle weights (*.bin/*.pt), which can run code when loaded. "
            "The studio loads safetensors only. Convert the weights to safetensors on a "
            "machine you trust, or allow pickle explicitly (--allow-pickle) if you trust "
            "the file's origin."
        )
    if not has_pickle:
        raise ModelLoadError(f"{folder} has no weights (*.safetensors).")


def check_adapter_weights(folder: Path, name: str) -> None:
    """An adapter loads from `adapter_model.safetensors` only: its pickle form can run code."""
    if not (Path(folder) / "adapter_model.safetensors").is_file():
        raise ModelLoadError(
            f"{name} has no adapter_model.safetensors. Adapter weights in pickle files "
            "(adapter_model.bin) can run code when loaded, so the studio does not load them: "
            "convert the adapter to safetensors on a machine you trust."
        )


def _hub_error(source: ModelSource, exc: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    why = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached"
    return ModelLoadError(
        f"Could not load '{source.ref}' from the Hugging Face hub: {why}, and it is not in "
        "the local cache. On a machine with internet, run "
        f"`huggingface-cli download {source.ref} --local-dir models/{source.ref.split('/')[-1]}`"
        ", copy that folder here and choose it as a local folder. "
        f"(details: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    )


def load_tokenizer(source: ModelSource, *, trust_remote_code: bool = False):
    AutoTokenizer = transformers_names("AutoTokenizer")  # noqa: N806

    try:
        return AutoTokenizer.from_pretrained(source.ref, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from exc
        raise ModelLoadError(f"Could not load the tokenizer of {source.name}: {exc}") from exc


@dataclass
class LoadedModel:
    source: ModelSource
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    load_seconds: float
    trust_remote_code: bool = False
    extra: dict = field(default_factory=dict)


def parameters_from_config(config: dict) -> int | None:
    """About how many parameters a decoder's config.json describes (embeddings, attention
    and MLP), or None when it does not say."""
    try:
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
        inter = int(config.get("intermediate_size") or 4 * h)
    except (KeyError, TypeError, ValueError):
        return None
    heads = (1 if config.get("tie_word_embeddings") else 2) * vocab * h
    return heads + layers * (4 * h * h + 3 * h * inter)


def _check_size(folder: Path) -> None:
    """Refuse a config.json that describes a model far larger than the weights beside it
    (hidden_size 10^12 would have the loader allocate terabytes before any weight is read)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(config, dict):
        return
    described = parameters_from_config(config.get("text_config") or config)
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    if described is None or not weights:
        return
    # Half a byte per parameter is 4-bit quantization; allow a wide margin above it.
    if described / 2 > 8 * weights + (256 << 20):
        raise ModelLoadError(
            f"{folder.name}: config.json describes about {described:,} parameters, but the "
            f"weight files hold {weights:,} bytes. The config does not match the weights; "
            "fix config.json or download the model again."
        )


def load_model(
    source: ModelSource,
    *,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> LoadedModel:
    AutoModelForCausalLM = transformers_names("AutoModelForCausalLM")  # noqa: N806

    from studio.hardware import pick_device, pick_dtype

    if source.kind == "local" and source.ref.endswith(".gguf"):  # an exported GGUF: llama.cpp
        from studio.models.gguf_model import load_gguf

        return load_gguf(source)
    device = device or pick_device()
    dtype = dtype or pick_dtype(device)
    if source.local_dir is not None:
        _check_weights_format(source.local_dir, allow_pickle)
        _check_size(source.local_dir)
    started = time.perf_counter()
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source.ref,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            use_safetensors=not allow_pickle,
        )
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, SafetensorError, ...
        if source.kind == "hub" and isinstance(exc, OSError | ValueError):
            raise _hub_error(source, exc) from exc
        files = ", ".join(
            p.name for p in sorted((source.local_dir or Path()).glob("*.safetensors"))
        )
        where = f" (weights: {files})" if files else ""
        raise ModelLoadError(
            f"Could not load the model {source.name}{where}: {type(exc).__name__}: {exc}. "
            "The files may be damaged or not what their names say; download them again."
        ) from exc
    model.to(device)
    model.eval()
    return LoadedModel(
        source=source,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        load_seconds=time.perf_counter() - started,
        trust_remote_code=trust_remote_code,
    )
