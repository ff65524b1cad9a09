"""Evaluation while training: the workspace's suites scored on the model in training, the
best checkpoint kept, and early stopping.

The suites are scored with the Evaluate tab's code (`evaluate.tasks.run_suite`) at every
evaluation of the Trainer (`training.eval_steps`, else at each checkpoint), on the model as
it is (no reload), in eval mode and without gradients. Their scores join the evaluation's
metrics as `eval_<SUITE>.<METRIC>` (with `..._stderr` beside each), so transformers' own
machinery follows them: `metric_for_best_model` picks the best checkpoint (which checkpoint
rotation then never deletes) and `EarlyStoppingCallback` stops a run that no longer improves.
The studio adds what transformers does not do: a save at every new best (so the best is a
checkpoint even between save_steps), `best.json` in the run directory (the best's step,
value and folder, `Run.best()`, read by `run:<id>@best`), and the words for why a run stopped early.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from studio.evaluate import EvalError
from studio.evaluate.tasks import METRIC_NAMES, PRIMARY, run_suite
from studio.train.config import RunConfig, greater_is_better

STDERR = "_stderr"  # suffix of a score's standard error among the evaluation's metrics


@dataclass
class InTraining:
    """The model in training, in the shape the scoring code reads (`LoadedModel`'s)."""

    model: object
    tokenizer: object
    device: str
    source: object


@dataclass
class Plan:
    """What a run evaluates while it trains."""

    suites: list  # (the spec the config names, its open `Suite`)
    metric: str | None  # `eval_loss`, `SUITE.METRIC`, or None: no best, no early stopping
    greater_is_better: bool = False
    patience: int = 0
    threshold: float = 0.0
    max_new_tokens: int = 32

    @property
    def active(self) -> bool:
        return bool(self.suites)


def plan_for(ws, config: RunConfig) -> Plan:
    """Open the config's suites and settle the metric (`SUITE.*`: that suite's main one),
    refusing a metric its suite does not report before anything trains."""
    from studio.evaluate.suites import open_suite

    e = config.evaluation
    suites = []
    for spec in e.suites:
        try:
            suites.append((spec, open_suite(ws, spec)))
        except (LookupError, EvalError) as exc:
            raise EvalError(f"evaluation.suites: {exc}") from exc
    metric = e.best_metric(config.evaluates)
    if metric and metric != "eval_loss":
        spec, _, name = metric.rpartition(".")
        kind = dict(suites)[spec].kind
        if name == "*":
            metric = f"{spec}.{PRIMARY[kind][0]}"
        elif name not in METRIC_NAMES[kind]:
            raise EvalError(
                f"suite {spec} has no metric {name} (its metrics: {', '.join(METRIC_NAMES[kind])})",
                code="unknown_metric",
                suite=spec,
                metric=name,
                known=", ".join(METRIC_NAMES[kind]),
            )
    return Plan(
        suites=suites,
        metric=metric,
        greater_is_better=greater_is_better(metric) if metric else False,
        patience=e.early_stopping_patience,
        threshold=e.early_stopping_threshold,
        max_new_tokens=e.max_new_tokens,
    )


def score_suites(plan: Plan, model, tokenizer, device: str, source, prefix: str = "eval"):
    """Every suite of `plan` on `model` as it is: `{prefix_SUITE.METRIC: value,
    prefix_SUITE.METRIC_stderr: stderr, ...}` and the seconds it took. The model is put in
    eval mode for the scoring and back in the mode it was in."""
    import torch

    loaded = InTraining(model, tokenizer, device, source)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    try:
        with torch.no_grad():
            for spec, suite in plan.suites:
                _, found = run_suite(loaded, suite, max_new_tokens=plan.max_new_tokens)
                for name, summary in found.items():
                    value, stderr = summary.get("value"), summary.get("stderr")
                    if value is None or not math.isfinite(value):
                        continue
                    metrics[f"{prefix}_{spec}.{name}"] = float(value)
                    if stderr is not None and math.isfinite(stderr):
                        metrics[f"{prefix}_{spec}.{name}{STDERR}"] = float(stderr)
    finally:
        model.train(was_training)
    return metrics, time.perf_counter() - started


def scores_of(logs: dict) -> dict[str, dict]:
    """The suite scores among an evaluation's logged metrics: `SUITE.METRIC` -> `{value,
    stderr}`."""
    scores: dict[str, dict] = {}
    for key, value in logs.items():
        if not key.startswith("eval_") or "." not in key or key.endswith(STDERR):
            continue
        name = key.removeprefix("eval_")
        scores[name] = {"value": value, "stderr": logs.get(key + STDERR)}
    return scores


def improved(plan: Plan, value: float, best: float | None) -> bool:
    """Whether `value` beats `best` at all: a new best checkpoint, as transformers'
    `_determine_best_metric` reads it (early stopping's threshold is its own callback's)."""
    if best is None or not math.isfinite(best):
        return True
    return value > best if plan.greater_is_better else value < best


def metric_key(metric: str) -> str:
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def score_line(metrics: dict, metric: str | None = None) -> str:
    """An evaluation's scores for the log: `eval_loss 1.234 | sample-eval-rank.mrr_full
    0.612 ± 0.041 | ...`: the loss, then the scores with the followed metric first."""
    parts = []
    if metrics.get("eval_loss") is not None:
        parts.append(f"eval_loss {metrics['eval_loss']:.4f}")
    scores = scores_of(metrics)
    order = sorted(scores, key=lambda name: name != metric)
    for name in order:
        value, stderr = scores[name]["value"], scores[name]["stderr"]
        parts.append(f"{name} {value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else ""))
    return " | ".join(parts)


def write_best(run, plan: Plan, step: int, value: float) -> None:
    """`best.json` in the run directory: the best evaluation's step, value and checkpoint."""
    from studio.fsutil import atomic_write_json

    atomic_write_json(
        run.best_path,
        {
            "metric": plan.metric,
            "value": value,
            "step": step,
            "greater_is_better": plan.greater_is_better,
            "checkpoint": f"checkpoint-{step}",
        },
    )


def early_stop_of(trainer, plan: Plan) -> dict | None:
    """What stopped the run early (the metric, the patience, the best step and value), or
    None when it was not early stopping."""
    state = trainer.state
    if not plan.patience or 0 < state.max_steps <= state.global_step:  # ran to its end
        return None
    for callback in trainer.callback_handler.callbacks:
        counter = getattr(callback, "early_stopping_patience_counter", None)
        if counter is not None and counter >= plan.patience:
            return {
                "metric": plan.metric,
                "patience": plan.patience,
                "best_step": state.best_global_step,
                "best_value": state.best_metric,
                "step": state.global_step,
            }
    return None
