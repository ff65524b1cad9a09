"""The training process: one run directory in, a trained adapter or model out.

`execute(run)` is what `python -m studio train` runs in its own process. It waits for the
device (one run at a time per device: others queue), encodes the data with the inspector's
encoding path, trains with a plain `transformers.Trainer` and the inspector's collator, and
keeps the run directory current: status, one metrics line per logged step, checkpoints.
Every way it can end (done, stopped, out of memory, disk full, bad data, a crash) leaves a
status that says what happened, and nothing written before is removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import time
import traceback
from pathlib import Path

from studio.runs.store import Run, start_time
from studio.train.config import ConfigError, RunConfig, read_config_file

QUEUE_POLL_S = 1.0


class _Stop:
    """Set by SIGTERM or the run's `stop` file; checked after every optimizer step."""

    def __init__(self, run: Run):
        self.run = run
        self.signalled = False

    def __bool__(self) -> bool:
        return self.signalled or self.run.stop_requested


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def device_slot(run: Run, device: str, stop: _Stop):
    """Hold the device's lock for the whole run; wait (status `queued`) while another run
    holds it. The lock is an flock, so a killed process releases it by dying."""
    from studio.fsutil import GaveUpWaiting, exclusive_lock

    def queued() -> None:
        print(f"[studio] {device} is busy with another run; queued", flush=True)
        if is_main_process():  # the page then says why it waits (not while it only starts)
            run.set_status("queued", reason="waiting_for_device")

    path = run.root.parent / f".device-{device.replace(':', '-')}.lock"
    try:
        with exclusive_lock(path, poll_s=QUEUE_POLL_S, on_wait=queued, give_up=lambda: bool(stop)):
            yield
    except GaveUpWaiting:
        raise _StoppedWhileQueued() from None


class _StoppedWhileQueued(Exception):
    pass


def execute(run: Run, ws, *, resume: bool = False) -> int:
    """Train `run` to the end (or to a stop). Returns the process exit status."""
    # bitsandbytes (imported by peft) warns on every CPU start about 4-bit kernels that a
    # CPU run never uses; keep the run's log for what matters.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    from studio.hardware import prefer_expandable_segments

    prefer_expandable_segments()  # before anything allocates on the GPU
    main = is_main_process()
    stop = _Stop(run)

    def on_term(signum, frame):
        stop.signalled = True
        print("[studio] stop requested: finishing this step and saving a checkpoint", flush=True)

    with contextlib.suppress(ValueError):  # not the main thread (tests): no signal handler
        signal.signal(signal.SIGTERM, on_term)
    pid_started = start_time()
    if main:
        run.clear_stop()
        run.set_status(
            "queued",
            pid=os.getpid(),
            pgid=os.getpgid(0),
            pid_started=pid_started,
            reason=None,
            message=None,
            ended=None,
            stop_requested=False,
        )
    try:
        config = RunConfig.from_dict(read_config_file(run.config_path))
        from studio.hardware import pick_device

        device = pick_device(config.device)
        slot = device_slot(run, device, stop) if main else contextlib.nullcontext()
        with slot:
            if main:
                run.set_status("running", started=time.time(), resumed=resume)
            outcome = _train(run, ws, config, stop, resume=resume)
    except _StoppedWhileQueued:
        run.set_status(
            "stopped",
            reason="stopped_queued",
            message="stopped before it started",
            ended=time.time(),
        )
        run.clear_stop()
        return 0
    except BaseException as exc:  # noqa: BLE001 - every ending must leave a status
        reason, message = classify(exc, where=run.root)
        traceback.print_exc()
        print(f"[studio] run failed ({reason}): {message}", flush=True)
        if main:
            run.set_status("failed", reason=reason, message=message, ended=time.time())
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    if main:
        early = outcome if isinstance(outcome, dict) else None  # stopped early: completed
        state = "completed" if early else outcome
        run.set_status(
            state,
            reason="early_stopped" if early else None if state == "completed" else "stop_requested",
            message=None,
            ended=time.time(),
            early_stop=early,
        )
        run.clear_stop()
    return 0


def classify(exc: BaseException, where: Path | None = None) -> tuple[str, str]:
    """(reason code, message for the user); `where` is the run directory, whose disk is
    looked at when an error does not say what went wrong."""
    from studio.evaluate import EvalError
    from studio.models.load import ModelLoadError
    from studio.tokens.cache import StoreError
    from studio.train.backends import BackendError
    from studio.train.data import DataError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, StoreError):  # it says what happened to the encoding, and what to do
        return exc.reason, text
    if _is_oom(exc):
        return "oom", (
            "out of memory. Lower per_device_train_batch_size (raise "
            "gradient_accumulation_steps to keep the effective batch), shorten max_length, "
            "turn on gradient_checkpointing, or use LoRA/QLoRA. Details: " + text
        )
    if is_disk_full(exc, where):
        return "disk_full", (
            "the disk filled up while writing. Checkpoints saved before are kept; free "
            "some space (old checkpoints, exports) and resume. Details: " + text
        )
    if isinstance(exc, ConfigError | DataError | BackendError | ModelLoadError | EvalError):
        kind = {
            ConfigError: "config",
            DataError: "data",
            BackendError: "method",
            EvalError: "config",
        }
        return next((v for k, v in kind.items() if isinstance(exc, k)), "model"), text
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted from the keyboard"
    return "exception", f"{type(exc).__name__}: {text}"


# What a full disk looks like when a library (not Python) wrote the file: safetensors says
# "No space left on device (os error 28)"; torch.save only says "unexpected pos ...".
DISK_FULL_TEXT = ("no space left on device", "os error 28", "disk quota exceeded", "os error 122")
NEARLY_FULL_BYTES = 16 * 2**20


def is_disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """Whether `exc` (or an error it came from) is a full disk or quota, or a write error
    of a library that does not say why while the run's disk has (next to) nothing left."""
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(current).lower() for text in DISK_FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    if where is None or not isinstance(exc, OSError | RuntimeError):
        return False
    try:
        return shutil.disk_usage(where).free < NEARLY_FULL_BYTES
    except OSError:
        return False


# What running out of memory looks like where torch does not raise OutOfMemoryError: its
# CPU allocator raises a RuntimeError ("DefaultCPUAllocator: can't allocate memory: you
# tried to allocate N bytes. Error code 12 (Cannot allocate memory)").
OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _is_oom(exc: BaseException) -> bool:
    """Whether `exc` (or an error it came from) is running out of memory, GPU or CPU."""
    try:
        import torch

        kinds: tuple[type, ...] = (MemoryError, torch.OutOfMemoryError)
    except (ImportError, AttributeError):
        kinds = (MemoryError,)
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds) or any(t in str(current).lower() for t in OOM_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _train(run: Run, ws, config: RunConfig, stop: _Stop, *, resume: bool):
    from studio.labels.encode import resolve_tokens
    from studio.models.load import load_tokenizer
    from studio.tokens.build import Cancelled
    from studio.train import data
    from studio.train.evaluation import plan_for

    main = is_main_process()
    plan = plan_for(ws, config)  # a suite that is gone fails here, before anything loads
    source = resolve_model(ws, config)
    tokenizer = load_tokenizer(source, trust_remote_code=config.trust_remote_code)
    tok = resolve_tokens(tokenizer, config.encoding)
    started = time.perf_counter()
    try:
        if config.preference_stage:
            from studio.train import preference

            training_data = preference.build(ws, config, tok, run.root / "pairs")
        else:
            training_data = data.build(
                ws, config, tok, progress=_log_progress(), cancel=lambda: bool(stop), pin=main
            )
    except Cancelled:
        return "stopped"
    training_data.seconds = time.perf_counter() - started
    if main:
        for rows in training_data.stores:
            found = "encoded now" if not rows.meta.get("cached") else "encoded before"
            print(
                f"[studio] token store {rows.folder.name[:12]} ({found}): {rows.n_rows:,} rows, "
                f"{rows.n_tokens:,} tokens",
                flush=True,
            )
        if config.preference_stage:
            dropped = ", ".join(f"{k} {v}" for k, v in training_data.dropped.items())
            print(
                f"[studio] preference pairs ({config.preference.loss}): "
                f"{training_data.rows:,} to train, {training_data.eval_rows:,} to validate"
                + (f"; left out: {dropped}" if dropped else ""),
                flush=True,
            )
        print(f"[studio] data ready in {training_data.seconds:.1f} s", flush=True)
    try:
        return _train_on(run, ws, config, stop, resume, source, tokenizer, tok, training_data, plan)
    finally:
        training_data.release()


def _log_progress():
    """Encoding progress as log lines, one every few seconds."""
    last = [0.0]

    def show(progress) -> None:
        now = time.monotonic()
        if progress.state != "encoding" or now - last[0] >= 5 or progress.fraction == 1.0:
            print(progress.line(), flush=True)
            last[0] = now

    return show


def _train_on(run, ws, config, stop, resume, source, tokenizer, tok, training_data, plan):
    """Train; "completed", "stopped", or (stopped early) what stopped it."""
    from studio.hardware import library_versions
    from studio.models.load import transformers_names
    from studio.train import backends
    from studio.train.trainer import build_trainer

    main = is_main_process()
    set_seed = transformers_names("set_seed")
    set_seed(config.training.seed)  # LoRA's initial weights come from this seed
    prepared = backends.prepare(config, source, tokenizer)
    if main:
        run.update_info(
            backend=prepared.backend,
            device=prepared.device,
            precision=prepared.precision,
            world_size=world_size(),
            trainable_parameters=prepared.trainable_parameters,
            total_parameters=prepared.total_parameters,
            optim=prepared.optim,
            notes=prepared.notes,
            versions=library_versions(),
            data=training_data.to_dict(),
        )
        print(
            f"[studio] {config.method} on {source.name} with {prepared.backend} "
            f"({prepared.device}, {prepared.precision}); trainable "
            f"{prepared.trainable_parameters:,} of {prepared.total_parameters:,} parameters; "
            f"{training_data.rows} rows -> {len(training_data.train)} sequences",
            flush=True,
        )
        for note in prepared.kernels.notes(config.encoding.packing) if prepared.kernels else []:
            print(f"[studio] {note}", flush=True)  # which attention and loss kernels run
    trainer = build_trainer(run, config, prepared, tok, training_data, stop, plan, source)
    before = _preference_share(run, config, prepared, tok, training_data, "before", resume)
    checkpoint = None
    if resume:
        last = run.last_checkpoint()
        checkpoint = str(last) if last else None
        print(
            f"[studio] resuming from {last.name if last else 'the start (no checkpoint)'}",
            flush=True,
        )
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except Exception as exc:
        if is_disk_full(exc, run.root):
            set_aside_incomplete_checkpoints(run)
        raise
    if stop:
        return "stopped"
    if before is not None:
        _preference_share(run, config, prepared, tok, training_data, "after", resume, before)
    if main:
        trainer.save_model(str(run.final_dir))
        # A pickle of the arguments; config.yaml says the same, and outputs stay pickle-free.
        (run.final_dir / "training_args.bin").unlink(missing_ok=True)
        write_final_info(run, config, prepared, source)
    from studio.train.evaluation import early_stop_of

    return early_stop_of(trainer, plan) or "completed"


def _preference_share(run, config, prepared, tok, training_data, when, resume, before=None):
    """Preference runs with held-out pairs: how often the model finds the chosen reply
    likelier than the rejected one, before training and after it (kept in run.json as
    `preference`). A resumed run keeps the share its first session measured before."""
    from studio.train.preference import preferred_share

    if not (config.preference_stage and training_data.eval and is_main_process()):
        return None
    if config.preference.loss == "kto":
        return None  # judged single replies: no pair to compare
    if when == "before" and resume:
        return (run.info().get("preference") or {}).get("before") or {}
    share = preferred_share(prepared.model, training_data.eval, tok.pad_id, prepared.model.device)
    record = {"before": share} if when == "before" else {"before": before, "after": share}
    run.update_info(preference=record)
    what = "before training" if when == "before" else "after training"
    print(
        f"[studio] held-out pairs preferred {what}: {share['share']:.1%} of {share['pairs']} "
        f"(mean log-prob gap per token {share['mean_gap']:+.3f})",
        flush=True,
    )
    return share


def resolve_model(ws, config: RunConfig):
    from studio.models.load import resolve_source

    return resolve_source(config.model, named_dirs=ws.model_dirs())


def set_aside_incomplete_checkpoints(run: Run) -> None:
    """A checkpoint cut short (no trainer_state.json) is renamed, so nothing mistakes it for
    a good one; the complete ones before it stay where they are."""
    for path in run.checkpoints(complete_only=False):
        if not (path / "trainer_state.json").exists():
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".incomplete"))


def write_final_info(run: Run, config: RunConfig, prepared, source) -> None:
    from studio.fsutil import atomic_write_json

    atomic_write_json(
        Path(run.final_dir) / "studio_run.json",
        {
            "run": run.id,
            "base_model": config.model,
            "base_model_ref": source.ref,
            "method": config.method,
            "adapter": config.method in ("lora", "qlora"),
            "backend": prepared.backend,
            "encoding": config.encoding.to_dict(),
        },
    )
