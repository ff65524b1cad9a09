"""Curves from a run's metrics.jsonl: the one plotting path for the Train tab's live curve
and the runs dashboard.

`metrics.jsonl` is append-only: a resumed run logs its steps again from the checkpoint on,
so for each (kind, step) the record of the latest session wins.
"""

from __future__ import annotations

import math

METRICS = {
    "loss": ("train", "loss"),
    "eval_loss": ("eval", "eval_loss"),
    "learning_rate": ("train", "learning_rate"),
    "grad_norm": ("train", "grad_norm"),
    "tokens_per_s": ("train", "tokens_per_s"),
    "peak_memory_mb": ("train", "peak_memory_mb"),
    # The metric the run follows (its best checkpoint, early stopping), at each evaluation;
    # with one standard error below and above it (the Train tab's error band).
    "score": ("eval", "score"),
    "score_low": ("eval", "score"),
    "score_high": ("eval", "score"),
    # Preference runs (train/preference.py): the implicit rewards of the chosen and rejected
    # replies, their margin and the share of pairs ranked right, in training and evaluation.
    "reward_chosen": ("train", "reward_chosen"),
    "reward_rejected": ("train", "reward_rejected"),
    "reward_margin": ("train", "reward_margin"),
    "reward_accuracy": ("train", "reward_accuracy"),
    "eval_reward_margin": ("eval", "eval_reward_margin"),
    "eval_reward_accuracy": ("eval", "eval_reward_accuracy"),
}
X_AXES = ("step", "tokens", "elapsed")


def latest_records(records: list[dict]) -> list[dict]:
    """One record per (kind, step): the last one written. A resumed session replaces what
    the interrupted session logged after its last checkpoint: from its first step on, the
    older session's records are dropped, so the table and the curves show the resumed
    session at once (not the old session's later steps until it passes them)."""
    by_key: dict[tuple, dict] = {}
    session = None
    for record in records:
        kind = record.get("kind")
        if kind not in ("train", "eval"):
            continue
        step = record.get("step")
        if record.get("session") != session:
            if session is not None and isinstance(step, int | float):
                by_key = {k: r for k, r in by_key.items() if (k[1] or 0) < step}
            session = record.get("session")
        by_key[(kind, step)] = record
    return sorted(by_key.values(), key=lambda r: (r.get("step", 0), r.get("kind") != "train"))


def followed_score(record: dict) -> tuple[float | None, float | None]:
    """(value, standard error) of the metric an evaluation record says the run follows
    (`metric`: `eval_loss` or `SUITE.METRIC`; else its first suite score)."""
    scores = record.get("scores") or {}
    name = record.get("metric")
    if name == "eval_loss":
        return record.get("eval_loss"), None
    found = scores.get(name) if name else next(iter(scores.values()), None)
    if not isinstance(found, dict):
        return None, None
    return found.get("value"), found.get("stderr")


def _value(record: dict, metric: str, key: str):
    if key != "score":
        return record.get(key)
    value, stderr = followed_score(record)
    if metric == "score" or value is None:
        return value
    spread = stderr or 0.0
    return value - spread if metric == "score_low" else value + spread


def series(records: list[dict], metric: str, x: str = "step") -> list[tuple[float, float]]:
    kind, key = METRICS[metric]
    points = []
    for record in latest_records(records):
        if record.get("kind") != kind:
            continue
        value, where = _value(record, metric, key), record.get(x)
        numbers = isinstance(value, int | float) and isinstance(where, int | float)
        if numbers and math.isfinite(value):
            points.append((float(where), float(value)))
    return points


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard-style exponential moving average with bias correction (weight 0: raw)."""
    if not 0 < weight < 1:
        return list(values)
    out, last = [], 0.0
    for n, v in enumerate(values, 1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def frame(
    runs: dict[str, list[dict]],
    metrics=("loss", "eval_loss"),
    x: str = "step",
    smoothing: float = 0.0,
    *,
    log: bool = False,
    keep_raw: bool = True,
    always_label_runs: bool = False,
):
    """A long-format DataFrame (x, value, series) for `gr.LinePlot`: one series per run and
    metric. The training loss is smoothed when asked (with its raw values as their own series
    unless `keep_raw` is off). With `log`, values are log10 (the plot's axis says so), since
    the line plot has no log axis of its own."""
    import pandas as pd

    label_runs = always_label_runs or len(runs) > 1
    rows = []
    for name, records in runs.items():
        for metric in metrics:
            points = series(records, metric, x)
            if log:
                points = [(a, math.log10(b)) for a, b in points if b > 0]
            if not points:
                continue
            label = _label(name, metric, label_runs, len(metrics))
            if metric == "loss" and 0 < smoothing < 1:
                xs, ys = zip(*points, strict=True)
                if log:  # smooth the loss itself, then take the log
                    ys = [10**y for y in ys]
                smoothed = smooth(list(ys), smoothing)
                if log:
                    smoothed = [math.log10(v) for v in smoothed]
                if keep_raw:
                    rows += [(a, b, f"{label} (raw)") for a, b in points]
                rows += [(a, b, label) for a, b in zip(xs, smoothed, strict=True)]
            else:
                rows += [(a, b, label) for a, b in points]
    table = pd.DataFrame(rows, columns=[x, "value", "series"])
    return table.astype({x: "float64", "value": "float64", "series": "string"})


def _label(run: str, metric: str, label_runs: bool, n_metrics: int) -> str:
    if not label_runs:
        return metric
    return run if n_metrics == 1 else f"{run} · {metric}"
