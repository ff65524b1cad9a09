"""Export a finished run as a model anyone can load: the adapter alone (PEFT layout) or merged
into its base (safetensors, tokenizer, chat template), with a `generation_config` that stops
on the end-of-turn token the model was trained to write, and a model card.

Results go to `workspace/models/<name>/`, written beside it first and renamed into place, so
an interrupted export never leaves a half model that the pickers would offer.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from studio.errors import StudioError
from studio.fsutil import atomic_write_text, dir_size
from studio.hardware import peak_rss_mb
from studio.runs.store import Run
from studio.safety import safe_name

MODES = ("merged", "adapter")
DTYPES = ("float32", "bfloat16", "float16")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ExportError(StudioError, RuntimeError):
    """The export cannot be made; the message says why and what to do."""


@dataclass
class Exported:
    name: str
    path: Path
    mode: str
    dtype: str
    eos_token_ids: list[int]
    seconds: float
    bytes: int
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


def trained_of(run: Run) -> dict:
    """What the run trained (final/studio_run.json), or a clear error if nothing was."""
    info = run.json_of(run.final_dir / "studio_run.json") if run.final_dir.is_dir() else None
    if not info:
        raise ExportError(
            f"{run.id} has no finished model (state: {run.state}); export a completed run, or "
            "resume this one to the end first"
        )
    return info


def free_name(ws, wanted: str) -> str:
    """A model folder name that is not taken yet (`name`, `name-2`, ...): never overwrite."""
    base = safe_name(wanted)
    name, n = base, 2
    while (ws.models / name).exists():
        name, n = f"{base}-{n}", n + 1
    return name


def stop_ids(tokenizer, encoding: dict | None) -> list[int]:
    """EOS plus every end-of-turn token the training template wrote: generation must stop on
    whatever the model learned to end its turn with."""
    from studio.labels.encode import EncodingSettings, resolve_tokens

    settings = EncodingSettings.from_dict(encoding or {})
    tok = resolve_tokens(tokenizer, settings)
    ids = [i for i in (tokenizer.eos_token_id, *tok.eot_ids) if i is not None]
    return list(dict.fromkeys(ids))


def write_generation_config(folder: Path, base_ref: str, tokenizer, eos_ids: list[int]):
    from studio.models.load import transformers_names

    GenerationConfig = transformers_names("GenerationConfig")  # noqa: N806
    try:
        gen = GenerationConfig.from_pretrained(base_ref)
    except (OSError, ValueError):
        gen = GenerationConfig()
    gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    if tokenizer.pad_token_id is not None:
        gen.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id
    gen.save_pretrained(folder)


def copy_tokenizer(src: Path, dest: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def lineage(ws, datasets) -> list[dict]:
    """Each dataset version the run trained on, with the chain of versions it came from."""
    from studio.data.registry import find_version

    chains = []
    for spec in [datasets] if isinstance(datasets, str) else list(datasets or []):
        chain, seen = [], set()
        current = spec
        while current and current not in seen:
            seen.add(current)
            try:
                version = find_version(ws, current)
            except LookupError:
                chain.append({"version": current, "operation": "unknown (not in this workspace)"})
                break
            chain.append(
                {
                    "version": f"{version.name}/{version.version}",
                    "operation": version.operation,
                    "rows": version.rows,
                }
            )
            current = version.parent
        chains.append({"dataset": spec, "chain": chain})
    return chains


def model_card(
    ws, run: Run, *, name: str, mode: str, dtype: str, eos_ids: list[int], tokenizer
) -> str:
    from studio.runs.history import config_of, summarize

    summary, config = summarize(run), config_of(run)
    eos_tokens = ", ".join(f"`{tokenizer.convert_ids_to_tokens(i)}` ({i})" for i in eos_ids)
    lines = [
        f"# {name}",
        "",
        f"Fine-tuned from `{config.get('model')}` with **{config.get('method')}** by Tsumugi "
        f"Studio (run `{run.id}`), exported as {'a merged model' if mode == 'merged' else 'a LoRA adapter'} "
        f"in {dtype}.",
        "",
        "## Generation",
        "",
        f"`generation_config.json` stops on {eos_tokens}: the end of turn this model was "
        "trained to write.",
        "",
        "## Results",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for key in (
        "final_loss",
        "final_eval_loss",
        "best_eval_loss",
        "steps",
        "tokens",
        "duration_s",
        "backend",
    ):
        value = summary.get(key)
        if value is not None:
            lines.append(f"| {key} | {round(value, 4) if isinstance(value, float) else value} |")
    lines += ["", "## Data lineage", ""]
    for item in lineage(ws, config.get("dataset")):
        steps = " ← ".join(f"`{c['version']}` ({c['operation']})" for c in item["chain"])
        lines.append(f"- {steps}")
    lines += [
        "",
        "## Training config",
        "",
        "```yaml",
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_run(
    ws,
    run: Run,
    *,
    mode: str = "merged",
    dtype: str = "float32",
    name: str | None = None,
    best: bool = False,
) -> Exported:
    """Write the run's result into `workspace/models/<name>/` and return what was written:
    its final model, or with `best` its best checkpoint (evaluation while training)."""
    if mode not in MODES:
        raise ExportError(f"mode must be one of {', '.join(MODES)}")
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {', '.join(DTYPES)}")
    info = trained_of(run)
    folder = run.final_dir
    if best:
        found = run.best()
        if found is None:
            raise ExportError(
                f"{run.id} has no best checkpoint: it did not evaluate while training "
                "(evaluation.suites, a validation split), or that checkpoint was deleted",
                code="no_best_checkpoint",
                run=run.id,
            )
        folder = found["path"]
    if mode == "adapter" and not info.get("adapter"):
        raise ExportError(
            f"{run.id} trained every weight ({info.get('method')}): there is no "
            "adapter to export; export it merged"
        )
    if info.get("adapter"):
        from studio.models.load import ModelLoadError, check_adapter_weights

        try:
            check_adapter_weights(folder, run.id)
        except ModelLoadError as exc:
            raise ExportError(str(exc)) from None
    started = time.perf_counter()
    final = name or f"{run.id}{'-best' if best else ''}-{mode}"
    target_name = free_name(ws, final)
    ws.models.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target_name}.", dir=ws.models))
    try:
        tokenizer, eos_ids = _write(ws, run, info, work, mode=mode, dtype=dtype, folder=folder)
        atomic_write_text(
            work / "README.md",
            model_card(
                ws,
                run,
                name=target_name,
                mode=mode,
                dtype=dtype,
                eos_ids=eos_ids,
                tokenizer=tokenizer,
            ),
        )
        target = ws.models / target_name
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Exported(
        name=target_name,
        path=target,
        mode=mode,
        dtype=dtype,
        eos_token_ids=eos_ids,
        seconds=round(time.perf_counter() - started, 2),
        bytes=dir_size(target),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )


def _write(ws, run: Run, info: dict, out: Path, *, mode: str, dtype: str, folder: Path):
    import torch

    from studio.models.load import load_tokenizer, resolve_source, transformers_names

    final = folder  # the final model, or the best checkpoint
    tokenizer = load_tokenizer(resolve_source(str(final)))
    eos_ids = stop_ids(tokenizer, info.get("encoding"))
    base_ref = info.get("base_model_ref") or info.get("base_model")
    if mode == "adapter":
        for name in ADAPTER_FILES:
            shutil.copy2(final / name, out / name)
        copy_tokenizer(final, out)
        write_generation_config(out, base_ref, tokenizer, eos_ids)
        return tokenizer, eos_ids
    AutoModelForCausalLM = transformers_names("AutoModelForCausalLM")  # noqa: N806
    torch_dtype = getattr(torch, dtype)
    if info.get("adapter"):
        from peft import PeftModel

        # The unquantized base, also for a QLoRA run: merging into 4-bit weights would lose
        # the adapter's precision and give a model only bitsandbytes can load.
        base = AutoModelForCausalLM.from_pretrained(
            base_ref, dtype=torch_dtype, use_safetensors=True
        )
        if len(tokenizer) > base.get_input_embeddings().num_embeddings:
            base.resize_token_embeddings(len(tokenizer))
        model = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(
            str(final), dtype=torch_dtype, use_safetensors=True
        )
    model.config.use_cache = True
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    copy_tokenizer(final, out)
    write_generation_config(out, base_ref, tokenizer, eos_ids)
    (out / "studio_export.json").write_text(
        json.dumps(
            {
                "run": run.id,
                "mode": mode,
                "dtype": dtype,
                "base_model": base_ref,
                "weights": "final" if folder == run.final_dir else folder.name,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return tokenizer, eos_ids
