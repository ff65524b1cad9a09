"""Before a run starts: resolve its config, write its run directory (`prepare_run`), check
the data with the label inspector and the memory with the estimate, then start it. The
Train tab and `python -m studio train` both call `start`.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import atomic_write_json, atomic_write_text
from studio.runs.launcher import spawn
from studio.runs.store import Run, new_run_id
from studio.train.config import ConfigError, RunConfig

NOT_DOWNLOADED = (
    "{model} is not downloaded yet, so its tokenizer cannot check the data; starting the run "
    "downloads it (with network) and checks the data first"
)


def resolve_config(ws, config: RunConfig) -> RunConfig:
    """The config as it will run: a profile name replaced by its settings, each dataset by
    its exact version (NAME/vNNNN), so the run directory says exactly what trained."""
    from studio.labels.profiles import ProfileError, load_profile
    from studio.train.data import resolve_versions

    changes: dict = {}
    if isinstance(config.encoding, str):
        try:
            changes["encoding"] = load_profile(ws, config.encoding).to_dict()
        except ProfileError as exc:
            raise ConfigError(f"encoding: {exc}") from exc
    versions = [f"{v.name}/{v.version}" for v in resolve_versions(ws, config.datasets)]
    changes["dataset"] = versions[0] if len(versions) == 1 else versions
    if config.eval_dataset:
        (ev,) = resolve_versions(ws, [config.eval_dataset])
        changes["eval_dataset"] = f"{ev.name}/{ev.version}"
    return config.replace(**changes)


def prepare_run(
    ws,
    config: RunConfig,
    *,
    preset: str | None = None,
    command: list[str] | None = None,
    scan: dict | None = None,
    estimate: dict | None = None,
) -> Run:
    """Create the run directory: resolved config, run info, status `queued`."""
    config = resolve_config(ws, config)
    run_id = new_run_id(ws, config.name or preset or config.method)
    root = ws.runs / run_id
    root.mkdir(parents=True)
    run = Run(root)
    atomic_write_text(run.config_path, config.to_yaml())
    run.update_info(
        id=run_id,
        created=time.time(),
        preset=preset,
        base_model=config.model,
        method=config.method,
        dataset=config.dataset,
        command=command,
        note=config.note,
    )
    if scan is not None:
        atomic_write_json(run.scan_path, scan)
    if estimate is not None:
        atomic_write_json(run.estimate_path, estimate)
    run.set_status("queued", reason=None, message=None)
    return run


class Blocked(StudioError, RuntimeError):
    """The inspector found an error-level problem and the config does not allow it."""

    def __init__(self, report):
        codes = ", ".join(d.code for d in report.diagnostics if d.severity == "error")
        super().__init__(
            f"the label inspector found problems that would ruin this run ({codes}). Open the "
            "Inspect tab to see and fix them, or set allow_blocked: true to train anyway."
        )
        self.report = report


class TooLarge(StudioError, RuntimeError):
    """The memory estimate says the run will not fit, and the config does not allow it."""

    def __init__(self, estimate):
        from studio.train.vram import gib

        super().__init__(
            f"the memory estimate says this run needs about {gib(estimate.total, 1)} GiB, more "
            f"than the {gib(estimate.gpu_bytes, 1)} GiB it is checked against (gpu_memory_gib), "
            "so it would run out of memory. Follow the estimate's advice (a smaller batch or "
            "LoRA rank, a shorter max_length, gradient checkpointing, QLoRA), or set "
            "allow_over_memory: true to start anyway."
        )
        self.estimate = estimate


@dataclass
class Preflight:
    config: RunConfig  # resolved
    scan: object | None  # studio.labels.inspect.ScanReport; None when no tokenizer is at hand
    scan_error: str | None  # why there is no scan
    estimate: object | None  # studio.train.vram.Estimate
    architecture: dict | None
    device: str
    not_downloaded: bool = False  # no scan because the hub model is not in the local cache

    @property
    def blocked(self) -> bool:
        return self.scan is not None and self.scan.blocked and not self.config.allow_blocked

    @property
    def too_large(self) -> bool:
        """The estimate says the run will not fit, and the config does not allow that."""
        return (
            self.estimate is not None
            and not self.estimate.fits
            and not self.config.allow_over_memory
        )

    def to_dict(self) -> dict:
        return {
            "scan": self.scan.to_dict() if self.scan else None,
            "scan_error": self.scan_error,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "device": self.device,
            "blocked": self.blocked,
            "too_large": self.too_large,
        }


def architecture_of(ws, config: RunConfig) -> dict | None:
    """config.json facts: from the model folder when it is on disk, else from the config."""
    from studio.models.load import ModelLoadError, resolve_source

    try:
        source = resolve_source(config.model, named_dirs=ws.model_dirs())
    except ModelLoadError:
        return config.architecture
    if source.local_dir is not None and (source.local_dir / "config.json").is_file():
        return json.loads((source.local_dir / "config.json").read_text(encoding="utf-8"))
    return config.architecture


def estimate_memory(config: RunConfig, architecture: dict | None):
    """The peak GPU memory estimate for this run on a `gpu_memory_gib` GPU."""
    from studio.train import vram

    if not architecture:
        return None
    t = config.training
    precision = t.precision if t.precision != "auto" else "bf16"  # the GPU's choice
    # Preference training runs both sides of a pair (or KTO's completion and its KL
    # completion) in one forward, and makes the reference log-probs (train/preference.py).
    sides, reference = 1, "none"
    if config.preference_stage:
        from studio.train.preference import SEQUENCES_PER_ROW, reference_of

        sides, reference = SEQUENCES_PER_ROW, reference_of(config)
    return vram.estimate(
        vram.Architecture.from_config(architecture),
        method=config.method,
        precision=precision,
        batch_size=t.per_device_train_batch_size * sides,
        grad_accum=t.gradient_accumulation_steps,
        seq_len=config.encoding.max_length,
        gradient_checkpointing=t.gradient_checkpointing,
        lora_r=config.lora.r,
        lora_targets=config.lora.target_modules,
        lora_dropout=config.lora.lora_dropout,
        double_quant=config.qlora.bnb_4bit_use_double_quant,
        optimizer=_optimizer_family(t.optim),
        galore_rank=config.galore.rank,
        galore_targets=config.galore.target_modules,
        gpu_gib=config.gpu_memory_gib,
        # The evaluation pass: the validation loss, and the suites (every suite is counted
        # as if it scored and generated: an upper bound without opening them).
        eval_batch_size=t.per_device_eval_batch_size * sides if config.evaluates else 0,
        eval_suites=bool(config.evaluation.suites),
        eval_new_tokens=config.evaluation.max_new_tokens if config.evaluation.suites else 0,
        # Liger's fused linear cross-entropy never builds the logits (train/kernels.py).
        fused_loss=expected_fused(config, architecture) and not config.preference_stage,
        reference=reference,
    )


def expected_fused(config: RunConfig, architecture: dict) -> bool:
    """Whether the run's loss will be fused on its GPU: asked for by name, or `auto` with
    liger-kernel installed here for an architecture it patches (the estimate is for the GPU,
    so CUDA's presence on this machine is not asked)."""
    from studio.train.kernels import installed, liger_supports

    asked = config.training.fused_loss
    if asked == "liger":
        return True
    model_type = architecture.get("model_type")
    return asked == "auto" and installed("liger_kernel") and liger_supports(model_type)


def check_kernels(config: RunConfig) -> None:
    """Refuse, at the check, a kernel asked for by name that this machine cannot run
    (FlashAttention 2 without flash-attn or CUDA; Liger without liger-kernel or CUDA),
    rather than when the run starts: the same rules the run applies (train/kernels.py)."""
    from studio.hardware import pick_device
    from studio.train.backends import resolve_precision
    from studio.train.kernels import attention_for, fused_for

    t = config.training
    if t.attention == "auto" and t.fused_loss != "liger":
        return
    device = pick_device(config.device)
    attention_for(config, device, resolve_precision(t.precision, device), "transformers")
    fused_for(config, device, None, "transformers")  # the architecture is checked at load


def check_trackers(config: RunConfig) -> None:
    """Refuse a tracker whose package is not installed, saying how to install it (before a
    run starts, not when its first log fails)."""
    import importlib.util

    from studio.train.config import TRACKERS

    for tracker in config.training.report_to:
        package = TRACKERS[tracker]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"training.report_to names {tracker}, but the {package} package is not "
                "installed: pip install -r requirements-trackers.txt (tensorboard, trackio) "
                f"or pip install {package}",
                code="tracker_missing",
                tracker=tracker,
                package=package,
            )


def _optimizer_family(optim: str) -> str:
    """transformers' optimizer names (paged_adamw_8bit, adamw_torch_fused, ...) -> the
    families the estimate models."""
    for key, family in (("8bit", "adamw_8bit"), ("adafactor", "adafactor"), ("sgd", "sgd")):
        if key in optim:
            return family
    return "adamw_fused" if "fused" in optim else "adamw"


def _hub_tokenizer_cached(ref: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(ref, "tokenizer_config.json"), str)


def preflight(
    ws,
    config: RunConfig,
    *,
    fetch: bool = False,
    progress=None,
    cancel=None,
    workers: int | None = None,
) -> Preflight:
    """Scan the training data exactly as it will be encoded, and estimate memory.

    The data is encoded into its token store here (unless an earlier check did it), and the
    run's packing indexes are kept beside it, so the run starts training without encoding
    again. `progress` receives `studio.tokens.build.Progress` while that happens; `cancel`
    (a callable) stops it, keeping nothing. A hub model whose tokenizer is not in the local
    cache is only fetched with `fetch` (starting a run): a check must answer at once, also
    on a machine without network."""
    from studio.hardware import pick_device
    from studio.labels.encode import resolve_tokens
    from studio.labels.inspect import load_target, scan_store
    from studio.models.load import ModelLoadError, resolve_source
    from studio.train.data import prepare, stage_rows
    from studio.train.evaluation import plan_for

    config = resolve_config(ws, config)
    plan_for(ws, config)  # the suites to score while training exist, and report that metric
    check_trackers(config)
    check_kernels(config)
    settings = config.encoding
    report, error, missing = None, None, False
    try:
        source = resolve_source(config.model, named_dirs=ws.model_dirs())
        missing = source.kind == "hub" and not fetch and not _hub_tokenizer_cached(source.ref)
        if missing:
            raise ModelLoadError(NOT_DOWNLOADED.format(model=source.ref))
        target = load_target(source, trust_remote_code=config.trust_remote_code)
    except ModelLoadError as exc:
        error = str(exc)  # the memory estimate still works from the preset's architecture
        # Without a tokenizer nothing can be encoded, but every row is still checked
        # against what the stage needs (DataError names the first one it cannot use).
        evals = [[config.eval_dataset]] if config.eval_dataset else []
        for specs in [config.datasets, *evals]:
            if config.preference_stage:
                from studio.train.preference import preference_rows

                rows = preference_rows(ws, specs, config.preference.loss)
            else:  # the text-only check is for the training data
                text_check = settings if specs is config.datasets else None
                rows = stage_rows(ws, specs, settings.stage, text_check)
            collections.deque(rows, maxlen=0)
    else:
        tok = resolve_tokens(target.tokenizer, settings)
    if error is None and config.preference_stage:
        from studio.labels.pairs import scan_pair_rows
        from studio.train.preference import preference_rows

        # Every pair encoded and checked as the run will encode it (the run writes its own);
        # the validation version's rows are checked against the loss.
        loss = config.preference.loss
        report = scan_pair_rows(preference_rows(ws, config.datasets, loss), target, settings)
        if config.eval_dataset:
            collections.deque(preference_rows(ws, [config.eval_dataset], loss), maxlen=0)
    elif error is None:
        options = {"progress": progress, "cancel": cancel, "workers": workers}
        data = prepare(ws, config, tok, **options)
        try:
            report = scan_store(
                data.stores[0], target, settings, tok=tok, progress=progress, cancel=cancel
            )
        finally:
            data.release()
    architecture = architecture_of(ws, config)
    return Preflight(
        config=config,
        scan=report,
        scan_error=error,
        not_downloaded=missing,
        estimate=estimate_memory(config, architecture),
        architecture=architecture,
        device=pick_device(config.device),
    )


def start(
    ws,
    config: RunConfig,
    *,
    preset: str | None = None,
    command: list[str] | None = None,
    checked: Preflight | None = None,
    progress=None,
) -> Run:
    """Check, write the run directory and start the training process (it queues itself
    when the device is busy)."""
    if checked is None or checked.scan is None:
        # the tokenizer, from the hub if need be
        checked = preflight(ws, config, fetch=True, progress=progress)
    if checked.scan is None:
        from studio.models.load import ModelLoadError

        raise ModelLoadError(checked.scan_error or "the model's tokenizer could not be loaded")
    if checked.blocked:
        raise Blocked(checked.scan)
    if checked.too_large:
        raise TooLarge(checked.estimate)
    run = prepare_run(
        ws,
        checked.config,
        preset=preset,
        command=command,
        scan=checked.scan.to_dict(),
        estimate=checked.estimate.to_dict() if checked.estimate else None,
    )
    spawn(run, ws)
    return run


def equivalent_command(config: RunConfig, preset: str | None, workspace: Path | None) -> str:
    """The CLI line that starts the same run: the preset plus a --set for every change."""
    from studio.train import presets

    base = RunConfig()
    if preset:
        base, _ = presets.load(preset)
    changes = _differences(base.to_dict(), config.to_dict())
    parts = ["python -m studio train", preset or "config.yaml"]
    if workspace is not None:
        parts.insert(1, f"--workspace {_quote(str(workspace))}")
    for key, value in changes:
        parts.append(f"--set {_quote(f'{key}={_yaml_value(value)}')}")
    return " ".join(parts)


def _differences(before: dict, after: dict, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and key != "architecture":
            found += _differences(old, value, f"{prefix}{key}.")
        elif value != old:
            found.append((f"{prefix}{key}", value))
    return found


def _yaml_value(value) -> str:
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
        .strip()
        .removesuffix("\n...")
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
