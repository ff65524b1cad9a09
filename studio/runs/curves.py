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
}
X_AXES = ("step", "tokens", "elapsed")


def latest_records(records: list[dict]) -> list[dict]:
    """One record per (kind, step): the last one written (a resumed session overrides the
    steps an interrupted session logged after its last checkpoint)."""
    by_key: dict[tuple, dict] = {}
    for record in records:
        kind = record.get("kind")
        if kind in ("train", "eval"):
            by_key[(kind, record.get("step"))] = record
    return sorted(by_key.values(), key=lambda r: (r.get("step", 0), r.get("kind") != "train"))


def series(records: list[dict], metric: str, x: str = "step") -> list[tuple[float, float]]:
    kind, key = METRICS[metric]
    points = []
    for record in latest_records(records):
        if record.get("kind") != kind:
            continue
        value, where = record.get(key), record.get(x)
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


def frame(runs: dict[str, list[dict]], metrics=("loss", "eval_loss"), x="step", smoothing=0.0):
    """A long-format DataFrame (x, value, series) for `gr.LinePlot`, with one series per run
    and metric; the training loss is smoothed when asked (its raw values stay as well)."""
    import pandas as pd

    rows = []
    for name, records in runs.items():
        for metric in metrics:
            points = series(records, metric, x)
            if not points:
                continue
            label = f"{name} · {metric}" if len(runs) > 1 else metric
            xs, ys = zip(*points, strict=True)
            if metric == "loss" and 0 < smoothing < 1:
                rows += [(a, b, f"{label} (raw)") for a, b in points]
                rows += [
                    (a, b, label) for a, b in zip(xs, smooth(list(ys), smoothing), strict=True)
                ]
            else:
                rows += [(a, b, label) for a, b in points]
    table = pd.DataFrame(rows, columns=[x, "value", "series"])
    return table.astype({x: "float64", "value": "float64", "series": "string"})
