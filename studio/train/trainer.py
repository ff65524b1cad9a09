"""The transformers `Trainer` the studio trains with, and the callback that keeps the run
directory current.

A plain `Trainer` (not trl's `SFTTrainer`): the data is already encoded by the inspector's
path, so the trainer only needs the inspector's collator. trl adds nothing here and its fused
loss needs triton, which CPU installs lack.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

from studio.hardware import peak_rss_mb
from studio.labels.encode import Collator
from studio.runs.store import Run

STATUS_INTERVAL_S = 1.0
TRACKING_PROJECT = "tsumugi-studio"  # trackio's project for every studio run


def _counting(collate: Collator):
    """The inspector's collator, plus the count of real (non-padding) tokens in the batch,
    which the trainer removes before the model sees the batch."""
    import torch

    def collate_and_count(sequences):
        batch = collate(sequences)
        batch["num_tokens"] = torch.tensor(sum(len(s.input_ids) for s in sequences))
        return batch

    return collate_and_count


def peak_memory_mb(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "cuda"
    return peak_rss_mb(), "rss"


def training_arguments(run: Run, config, prepared, has_eval: bool, plan=None):
    """transformers' arguments for the run; `plan` (`evaluation.plan_for`): the suites scored
    at each evaluation and the metric the best checkpoint follows."""
    from studio.models.load import transformers_names
    from studio.train.evaluation import metric_key

    TrainingArguments = transformers_names("TrainingArguments")  # noqa: N806
    extra = {}
    if config.preference_stage:
        from studio.train.preference import trainer_parts

        _, TrainingArguments, extra = trainer_parts(config)  # noqa: N806
    t = config.training
    on_cpu = prepared.device == "cpu"
    has_eval = has_eval or bool(plan and plan.active)
    eval_strategy = t.eval_strategy if has_eval else "no"
    if has_eval and eval_strategy == "no":
        eval_strategy = "steps" if t.save_strategy == "steps" else "epoch"
    kwargs = dict(
        output_dir=str(run.checkpoints_dir),
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_grad_norm=t.max_grad_norm,
        optim=prepared.optim,
        optim_args=prepared.optim_args,
        optim_target_modules=prepared.optim_target_modules,
        bf16=prepared.precision == "bf16" and not on_cpu,
        fp16=prepared.precision == "fp16",
        use_cpu=on_cpu,
        gradient_checkpointing=t.gradient_checkpointing and prepared.backend != "unsloth",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps or (t.save_steps if eval_strategy == "steps" else None),
        save_strategy=t.save_strategy,
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        # The run folder is the record; trackers named in the config get a mirror of it:
        # trackio locally (no Space), under one project with the run's id as its name.
        report_to=list(t.report_to) or "none",
        run_name=run.id,
        project=TRACKING_PROJECT,
        trackio_static_space_id=False,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False if config.method in ("lora", "qlora") else None,
        # Liger's fused kernels (train/kernels.py): transformers patches the model with them.
        use_liger_kernel=bool(prepared.kernels and prepared.kernels.fused_loss == "liger"),
    )
    if t.gradient_checkpointing:
        kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if plan is not None and plan.metric and eval_strategy != "no":
        kwargs["metric_for_best_model"] = metric_key(plan.metric)
        kwargs["greater_is_better"] = plan.greater_is_better
    return TrainingArguments(**kwargs, **extra)


def build_trainer(run: Run, config, prepared, tok, training_data, stop, plan=None, source=None):
    from studio.models.load import transformers_names
    from studio.train import evaluation

    Trainer, TrainerCallback = transformers_names("Trainer", "TrainerCallback")  # noqa: N806
    preference = None
    if config.preference_stage:
        from studio.train import preference
        from studio.train.preference import trainer_parts

        Trainer = trainer_parts(config)[0]  # noqa: N806  (trl's, fed with the encoded pairs)

    class StudioTrainer(Trainer):
        def suite_metrics(self, prefix: str) -> dict:
            if plan is None or not plan.active:
                return {}
            found, seconds = evaluation.score_suites(
                plan, self.model, prepared.tokenizer, prepared.device, source, prefix
            )
            return {**found, f"{prefix}_suite_seconds": round(seconds, 3)}

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            if eval_dataset is not None or self.eval_dataset is not None:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            # Suites and no validation data: the evaluation is the suites alone, told to the
            # callbacks as transformers tells its own.
            metrics = self.suite_metrics(metric_key_prefix)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
            return metrics

        def evaluation_loop(self, dataloader, description, prediction_loss_only=None,
                            ignore_keys=None, metric_key_prefix="eval"):  # fmt: skip
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
            output.metrics.update(self.suite_metrics(metric_key_prefix))
            return output

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            n = inputs.pop("num_tokens", None)
            if n is not None and model.training:
                # Kept in the trainer state, so a resumed run continues the count.
                self.state.num_input_tokens_seen += int(n)
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    class RunDirectoryCallback(TrainerCallback):
        """One metrics line per log, status with progress, graceful stop."""

        def __init__(self):
            self.session_start = None
            self.session_tokens0 = 0
            self.session_step0 = 0
            earlier = run.metrics()  # what previous sessions of this run logged (resume)
            self.session = len({m.get("session", 0) for m in earlier})
            self.earlier_elapsed = max(
                (m.get("elapsed") or 0.0 for m in earlier if m.get("kind") == "train"), default=0.0
            )
            self.status_written = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.session_start = time.perf_counter()
            self.session_tokens0 = state.num_input_tokens_seen
            self.session_step0 = state.global_step
            self.elapsed0 = self.earlier_elapsed if state.global_step else 0.0
            if state.is_world_process_zero:
                run.set_status("running", step=state.global_step, max_steps=state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            if stop:
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            now = time.perf_counter()
            session_s = now - (self.session_start or now)
            tokens = state.num_input_tokens_seen * max(1, args.world_size)
            new_tokens = (state.num_input_tokens_seen - self.session_tokens0) * max(
                1, args.world_size
            )
            memory, memory_kind = peak_memory_mb(prepared.device)
            record = {
                "session": self.session,
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 4),
                "tokens": tokens,
                "elapsed": round(self.elapsed0 + session_s, 3),
                "peak_memory_mb": round(memory, 1),
                "memory_kind": memory_kind,
                "time": time.time(),
            }
            if "loss" in logs:
                record.update(kind="train", loss=logs["loss"])
                record["learning_rate"] = logs.get("learning_rate")
                record["grad_norm"] = logs.get("grad_norm")
                record["tokens_per_s"] = round(new_tokens / session_s, 1) if session_s else None
                if preference is not None:  # rewards/chosen, /rejected, /margins, accuracy
                    record.update(preference.metrics_of(logs))
            elif "eval_loss" in logs or evaluation.scores_of(logs):
                record.update(kind="eval", eval_loss=logs.get("eval_loss"))
                if preference is not None:
                    record.update(
                        {f"eval_{k}": v for k, v in preference.metrics_of(logs, "eval_").items()}
                    )
                if plan is not None and plan.metric:  # what the "score" curve follows
                    record["metric"] = plan.metric
                scores = evaluation.scores_of(logs)
                if scores:
                    record["scores"] = scores
                    record["suite_seconds"] = logs.get("eval_suite_seconds")
            elif "train_runtime" in logs:
                record.update(kind="summary", train_loss=logs.get("train_loss"))
                record["runtime_s"] = logs.get("train_runtime")
            else:
                return
            record = {k: _finite(v) for k, v in record.items()}
            run.append_metrics(record)
            steps_done = state.global_step - self.session_step0
            eta = (
                (state.max_steps - state.global_step) * session_s / steps_done
                if steps_done > 0
                else None
            )
            progress = {
                "step": state.global_step,
                "max_steps": state.max_steps,
                "epoch": record["epoch"],
                "tokens": tokens,
                "eta_s": round(eta, 1) if eta is not None else None,
            }
            for key in ("loss", "eval_loss"):
                if record.get(key) is not None:
                    progress[key] = record[key]
            if record.get("scores"):
                progress["scores"] = {k: v["value"] for k, v in record["scores"].items()}
            # The status file is fsynced; once a second is enough for any reader (the UI
            # polls at 1 Hz) and keeps a fast run's steps free of disk waits.
            if (
                now - self.status_written >= STATUS_INTERVAL_S
                or steps_done == 0
                or (state.global_step >= state.max_steps)
            ):
                run.set_status("running", **progress)
                self.status_written = now
            print(_log_line(record, state.max_steps), flush=True)

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                print(f"[studio] checkpoint saved at step {state.global_step}", flush=True)

    class BestCheckpoint(TrainerCallback):
        """A save at every new best of the plan's metric, so the best is a checkpoint even
        between save_steps (transformers then protects it from rotation), and `best.json`
        once that checkpoint exists."""

        def __init__(self):
            self.pending = None  # (step, value) of a new best not saved yet

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            value = (metrics or {}).get(evaluation.metric_key(plan.metric))
            if value is None:
                return control
            line = evaluation.score_line(metrics, plan.metric)
            if evaluation.improved(plan, value, state.best_metric):
                self.pending = (state.global_step, float(value))
                control.should_save = True
                line += " (new best)"
            if state.is_world_process_zero:
                print(f"[studio] evaluation at step {state.global_step}: {line}", flush=True)
            return control

        def on_save(self, args, state, control, **kwargs):
            if self.pending and self.pending[0] == state.global_step:
                step, value = self.pending
                if state.is_world_process_zero:
                    evaluation.write_best(run, plan, step, value)
                self.pending = None

    collate = Collator.for_settings(
        tok, config.encoding, flatten=bool(prepared.kernels and prepared.kernels.flatten)
    )
    args = training_arguments(run, config, prepared, bool(training_data.eval), plan)
    evaluates = args.eval_strategy
    if not training_data.eval and evaluates != "no":
        # Suites without validation data: transformers refuses an evaluation strategy without
        # an eval dataset when the Trainer is built; the evaluation is ours (`evaluate`).
        args.eval_strategy = type(evaluates)("no")
    # TensorBoard's event files go into the run's folder (its callback reads the folder from
    # the environment when the Trainer builds it; the default is inside checkpoints/).
    with _environment(TENSORBOARD_LOGGING_DIR=str(run.root / "tensorboard")):
        if preference is not None:
            trainer = _build_preference(
                StudioTrainer, prepared, args, training_data, RunDirectoryCallback
            )
        else:
            trainer = _build(
                StudioTrainer, prepared, args, training_data, collate, RunDirectoryCallback
            )
    if plan is not None and plan.metric and evaluates != "no":
        trainer.add_callback(BestCheckpoint())
        if plan.patience:
            EarlyStopping = transformers_names("EarlyStoppingCallback")  # noqa: N806
            trainer.add_callback(EarlyStopping(plan.patience, plan.threshold))
    trainer.args.eval_strategy = evaluates
    # Our callback prints one readable line per log; transformers' own printer would repeat it.
    trainer.remove_callback(transformers_names("PrinterCallback"))
    return trainer


def _build(trainer_class, prepared, args, training_data, collate, callback):
    return trainer_class(
        model=prepared.model,
        args=args,
        train_dataset=training_data.train,
        eval_dataset=training_data.eval or None,
        data_collator=_counting(collate),
        processing_class=prepared.tokenizer,
        callbacks=[callback()],
    )


def _build_preference(trainer_class, prepared, args, training_data, callback):
    """trl's preference trainer on the encoded pairs, with its own collator (which pads the
    prompt and each side and marks the sides' tokens as trained), counting real tokens."""
    from studio.train.preference import count_tokens

    trainer = trainer_class(
        model=prepared.model,
        args=args,
        train_dataset=training_data.train,
        eval_dataset=training_data.eval or None,
        processing_class=prepared.tokenizer,
        callbacks=[callback()],
    )
    collate = trainer.data_collator

    def collate_and_count(examples):
        import torch

        batch = collate(examples)
        batch["num_tokens"] = torch.tensor(count_tokens(batch))
        return batch

    trainer.data_collator = collate_and_count
    return trainer


@contextlib.contextmanager
def _environment(**values):
    """Environment variables set for the block and restored after it."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _log_line(record: dict, max_steps: int) -> str:
    parts = [f"[studio] step {record['step']}/{max_steps}", f"epoch {record['epoch']:.2f}"]
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}")
    if record.get("eval_loss") is not None:
        parts.append(f"eval_loss {record['eval_loss']:.4f}")
    if record.get("reward_margin") is not None:
        parts.append(f"margin {record['reward_margin']:.3f}")
    if record.get("reward_accuracy") is not None:
        parts.append(f"accuracy {record['reward_accuracy']:.2f}")
    if record.get("learning_rate") is not None:
        parts.append(f"lr {record['learning_rate']:.2e}")
    if record.get("tokens_per_s"):
        parts.append(f"{record['tokens_per_s']:.0f} tok/s")
    return " | ".join(parts)
