"""Run history and comparison, read from run directories only.

Runs made by the app, by the CLI, before a restart or on another machine (a run folder
copied into `workspace/runs/`) all appear. A run's display title and note live in its
`run.json`; the run id (its folder name) never changes, so nothing that refers to it breaks.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import yaml

from studio.errors import InputError
from studio.runs import curves
from studio.runs.store import ACTIVE, Run, RunError, list_runs, reconcile

SORT_KEYS = ("created", "best_eval_loss", "final_loss", "tokens", "duration_s", "peak_memory_mb")


def config_of(run: Run) -> dict:
    try:
        data = yaml.safe_load(run.config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def key_params(config: dict) -> str:
    """The few settings that tell runs of one dataset apart (method and its size, lr, batch)."""
    training = config.get("training") or {}
    method = config.get("method", "?")
    parts = []
    if method in ("lora", "qlora"):
        lora = config.get("lora") or {}
        parts.append(f"r={lora.get('r')} α={lora.get('lora_alpha')}")
        if lora.get("use_dora"):
            parts.append("DoRA")
        if lora.get("use_rslora"):
            parts.append("rsLoRA")
    elif method == "galore":
        parts.append(f"rank={(config.get('galore') or {}).get('rank')}")
    batch = training.get("per_device_train_batch_size")
    accumulation = training.get("gradient_accumulation_steps") or 1
    parts.append(f"lr={training.get('learning_rate')}")
    if batch:
        parts.append(f"batch={batch}x{accumulation}")
    return " ".join(parts)


def summarize(run: Run) -> dict:
    """One row of the history table."""
    status, info, config = run.status(), run.info(), config_of(run)
    records = curves.latest_records(run.metrics())
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r["eval_loss"] for r in records if r.get("kind") == "eval" and r.get("eval_loss")]
    scored = [r["scores"] for r in records if r.get("kind") == "eval" and r.get("scores")]
    best = run.best()
    # Training time: what the metrics say, else from the start of training (not of queueing)
    # to its end; a run that never started training has none.
    started = status.get("started")
    ended = status.get("ended") or (time.time() if status["state"] in ACTIVE else None)
    elapsed = max((r.get("elapsed") or 0 for r in records), default=0) or None
    if elapsed is None and started and ended:
        elapsed = ended - started
    dataset = config.get("dataset", info.get("dataset"))
    return {
        "run": run.id,
        "title": info.get("title") or "",
        "state": status["state"],
        "reason": status.get("reason"),
        "message": status.get("message"),
        "early_stop": status.get("early_stop"),
        "created": info.get("created") or started,
        "base_model": config.get("model", info.get("base_model")),
        "method": config.get("method", info.get("method")),
        "params": key_params(config),
        "dataset": ", ".join(dataset) if isinstance(dataset, list) else dataset,
        "final_loss": train[-1].get("loss") if train else None,
        "final_eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        # The best evaluation of the metric the run follows (evaluation while training),
        # and the last evaluation's suite scores.
        "best_score": best_text(best),
        "best": {**best, "path": str(best["path"])} if best else None,
        "scores": scored[-1] if scored else None,
        "steps": status.get("step") or (train[-1].get("step") if train else 0),
        "max_steps": status.get("max_steps"),
        "tokens": status.get("tokens") or (train[-1].get("tokens") if train else 0),
        "duration_s": round(elapsed, 1) if elapsed else None,
        "peak_memory_mb": max((r.get("peak_memory_mb") or 0 for r in train), default=None),
        "memory_kind": train[-1].get("memory_kind") if train else None,
        "backend": info.get("backend"),
        "device": info.get("device"),
        "note": info.get("note") or "",
    }


def best_text(best: dict | None) -> str | None:
    """`0.787 mrr_full @40`: a run's best evaluation for a table cell."""
    if not best or best.get("value") is None:
        return None
    metric = str(best.get("metric") or "").rsplit(".", 1)[-1]
    return f"{best['value']:.4g} {metric} @{best.get('step')}"


def history(
    ws,
    *,
    text: str = "",
    states: list[str] | None = None,
    sort: str = "created",
    descending: bool = True,
) -> list[dict]:
    """Every run's summary, filtered by free text (id, title, model, method, dataset, note)
    and state, sorted by one of SORT_KEYS (runs without the figure last)."""
    reconcile(ws)
    if sort not in SORT_KEYS:
        raise InputError(f"sort must be one of {', '.join(SORT_KEYS)}")
    rows = [summarize(r) for r in list_runs(ws)]
    needle = text.strip().lower()
    if needle:
        fields = ("run", "title", "base_model", "method", "params", "dataset", "note", "state")
        rows = [r for r in rows if any(needle in str(r.get(f) or "").lower() for f in fields)]
    if states:
        rows = [r for r in rows if r["state"] in states]
    present = [r for r in rows if r.get(sort) is not None]
    missing = [r for r in rows if r.get(sort) is None]
    present.sort(key=lambda r: r[sort], reverse=descending)
    return present + missing


def config_diff(runs: list[Run]) -> list[dict]:
    """The config fields whose values differ between the runs (dotted names), each with the
    value per run; fields equal in all runs are left out."""
    flat = [_flatten(config_of(r)) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append({"field": key, **{r.id: v for r, v in zip(runs, values, strict=True)}})
    return rows


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "architecture":
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def comparison(
    runs: list[Run],
    *,
    metric: str = "loss",
    x: str = "step",
    smoothing: float = 0.0,
    log: bool = False,
):
    """Overlaid curves of one metric (the same `curves.frame` the Train tab draws)."""
    if metric not in curves.METRICS:
        raise InputError(f"metric must be one of {', '.join(curves.METRICS)}")
    if x not in curves.X_AXES:
        raise InputError(f"x must be one of {', '.join(curves.X_AXES)}")
    return curves.frame(
        {run_label(r): r.metrics() for r in runs},
        metrics=(metric,),
        x=x,
        smoothing=smoothing,
        log=log,
        keep_raw=False,
        always_label_runs=True,
    )


def run_label(run: Run) -> str:
    title = run.info().get("title")
    return f"{title} ({run.id})" if title else run.id


def run_choices(ws) -> list[tuple[str, str]]:
    """(label, run id) for a run picker, newest first, titled runs under their title."""
    return [(run_label(r), r.id) for r in list_runs(ws)]


def to_csv(runs: list[Run]) -> str:
    """Every logged record of the runs, one row each, with the run id first."""
    buffer = io.StringIO()
    keys = [
        "run",
        "kind",
        "session",
        "step",
        "epoch",
        "tokens",
        "elapsed",
        "loss",
        "eval_loss",
        "learning_rate",
        "grad_norm",
        "tokens_per_s",
        "peak_memory_mb",
    ]
    writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for run in runs:
        for record in curves.latest_records(run.metrics()):
            writer.writerow({"run": run.id, **record})
    return buffer.getvalue()


def to_png(table, path: Path, *, x: str, metric: str, log: bool = False) -> Path:
    """The comparison figure as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # CJK run titles need a CJK font; DejaVu (matplotlib's own) covers the rest.
    plt.rcParams["font.family"] = ["Noto Sans CJK JP", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    for name, part in table.groupby("series", sort=False):
        values = 10 ** part["value"] if log else part["value"]
        ax.plot(part[x], values, label=str(name), linewidth=1.6)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel({"step": "step", "tokens": "tokens seen", "elapsed": "seconds"}[x])
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if len(table):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path)


def set_title(run: Run, title: str) -> None:
    run.update_info(title=title.strip()[:120])


def set_note(run: Run, note: str) -> None:
    run.update_info(note=note.strip()[:4000])


def delete(run: Run, *, confirm: str) -> None:
    """Remove a run's folder. `confirm` must be the run id: deleting is never implicit.
    An active run is refused (stop it first)."""
    if confirm != run.id:
        raise RunError(f"to delete {run.id}, confirm with its id")
    if run.state in ACTIVE and run.alive():
        raise RunError(f"{run.id} is {run.state}; stop it before deleting it")
    shutil.rmtree(run.root)
