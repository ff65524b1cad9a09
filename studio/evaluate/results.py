"""Stored evaluation sessions and the views made of them.

A session (one click, one CLI call) is `workspace/evals/results/<session id>.json`, written
atomically after every model x suite result, so an interrupted evaluation keeps what it
finished. A result holds the suite (name, version, kind), the model (what was picked, and
for a checkpoint its run and step), every metric with its standard error and n, and the
per-item outcomes, so that sessions can be compared later item by item.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
import time
from pathlib import Path

import pandas as pd

from studio import __version__
from studio.evaluate import EvalError
from studio.evaluate import metrics as m
from studio.fsutil import atomic_write_json, read_json
from studio.safety import UnsafeInputError, safe_name

SCORE_COLUMNS = (
    "suite",
    "model",
    "step",
    "metric",
    "value",
    "stderr",
    "ci95_low",
    "ci95_high",
    "n",
    "higher_is_better",
    "session",
)


def results_dir(ws) -> Path:
    return ws.evals / "results"


def new_session(models: list[dict], suites: list[str], settings: dict) -> dict:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {
        "id": f"{stamp}-{secrets.token_hex(3)}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "studio": __version__,
        "models": models,
        "suites": suites,
        "settings": settings,
        "results": [],
        "errors": [],
        "state": "running",
    }


def save_session(ws, session: dict) -> Path:
    return atomic_write_json(results_dir(ws) / f"{session['id']}.json", session)


def load_session(ws, session_id: str) -> dict:
    try:
        name = safe_name(session_id)
    except UnsafeInputError as exc:
        raise EvalError(str(exc)) from exc
    try:
        data = read_json(results_dir(ws) / f"{name}.json")
    except ValueError as exc:
        raise EvalError(f"the results file of {session_id} is damaged: {exc}") from exc
    if not isinstance(data, dict) or "results" not in data:
        raise EvalError(f"no evaluation results named {session_id!r}")
    return data


def list_sessions(ws) -> list[dict]:
    """Every stored session, newest first: id, created, models, suites, state."""
    found = []
    for path in sorted(results_dir(ws).glob("*.json"), reverse=True):
        try:
            data = read_json(path)
        except (OSError, ValueError):
            continue  # a damaged file hides that session; it never breaks the list
        if isinstance(data, dict) and "results" in data:
            keys = ("id", "created", "suites", "state")
            found.append({k: data.get(k) for k in keys} | {"models": _model_names(data)})
    return found


def session_choices(ws) -> list[tuple[str, str]]:
    return [
        (f"{s['id']}: {', '.join(s['suites'] or [])} x {', '.join(s['models'])}", s["id"])
        for s in list_sessions(ws)
    ]


def _model_names(session: dict) -> list[str]:
    return [mod.get("label") or mod.get("spec") for mod in session.get("models") or []]


# --- views -----------------------------------------------------------------------------------


def score_rows(results: list[dict], *, session: str = "", primary_only: bool = False):
    """One row per result x metric: value, standard error, 95 % interval and n."""
    rows = []
    for r in results:
        for name, s in r["metrics"].items():
            if primary_only and name != r["primary"]:
                continue
            value, se = s.get("value"), s.get("stderr")
            half = m.NOISE_Z * se if se is not None else None
            rows.append(
                {
                    "suite": r["suite_label"],
                    "model": r["model_label"],
                    "step": r.get("step"),
                    "metric": name,
                    "value": value,
                    "stderr": se,
                    "ci95_low": value - half if half is not None and value is not None else None,
                    "ci95_high": value + half if half is not None and value is not None else None,
                    "n": s.get("n"),
                    "higher_is_better": name not in m.LOWER_IS_BETTER,
                    "session": session,
                }
            )
    return rows


def format_score(value, se) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:.1f}"
        return text + (f" ± {se:.1f}" if se is not None else "")
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else "")


def table(results: list[dict], metric_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Results as a wide table: one row per suite x model (in run order), one column per
    metric showing `value ± stderr`."""
    rows, columns = [], ["suite", "model", "step", "n"]
    for r in results:
        row = {"suite": r["suite_label"], "model": r["model_label"], "step": r.get("step")}
        for name, s in r["metrics"].items():
            label = (metric_names or {}).get(name, name)
            if label not in columns:
                columns.append(label)
            row[label] = format_score(s.get("value"), s.get("stderr"))
            row["n"] = max(row.get("n") or 0, s.get("n") or 0)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    frame["step"] = frame["step"].astype("object").where(frame["step"].notna(), "")
    return frame.fillna("")


def comparisons(results: list[dict]) -> list[dict]:
    """For each suite, every model against the suite's first model on the primary metric,
    item by item (paired): the difference, its standard error and whether it is noise."""
    found = []
    by_suite: dict[str, list[dict]] = {}
    for r in results:
        by_suite.setdefault(r["suite_label"], []).append(r)
    for suite, group in by_suite.items():
        if len(group) < 2:
            continue
        base = group[0]
        base_items = {i["id"]: i.get("score") for i in base["items"]}
        for other in group[1:]:
            items = {i["id"]: i.get("score") for i in other["items"]}
            diff = m.paired_difference(items, base_items)
            found.append(
                {
                    "suite": suite,
                    "metric": base["primary"],
                    "model": other["model_label"],
                    "baseline": base["model_label"],
                    **diff,
                }
            )
    return found


def matrix(results: list[dict], suite_label: str) -> pd.DataFrame:
    """Items x models: each model's per-item value on the suite's primary metric (1/0 for
    a hit, a reciprocal rank, a perplexity)."""
    columns = {}
    for r in results:
        if r["suite_label"] == suite_label:
            columns[r["model_label"]] = {i["id"]: i.get("score") for i in r["items"]}
    frame = pd.DataFrame(columns)
    return frame.astype("float64")


def step_rows(results: list[dict]) -> pd.DataFrame:
    """Primary scores of results that have a training step (a checkpoint sweep): step,
    value, stderr and a series name per suite and run."""
    rows = []
    for r in results:
        if r.get("step") is None:
            continue
        s = r["metrics"][r["primary"]]
        rows.append(
            {
                "step": r["step"],
                "value": s.get("value"),
                "stderr": s.get("stderr"),
                "series": f"{r['suite_label']} {r['primary']}"
                + (f" ({r['run']})" if r.get("run") else ""),
            }
        )
    frame = pd.DataFrame(rows, columns=["step", "value", "stderr", "series"])
    return frame.sort_values(["series", "step"]).reset_index(drop=True)


def scores_csv(results: list[dict], session: str = "") -> str:
    return _csv(score_rows(results, session=session), SCORE_COLUMNS)


def items_csv(results: list[dict]) -> str:
    """One row per result x item: the outcome and what explains it."""
    rows, columns = [], ["suite", "model", "step", "item", "score"]
    for r in results:
        for item in r["items"]:
            row = {
                "suite": r["suite_label"],
                "model": r["model_label"],
                "step": r.get("step"),
                "item": item["id"],
                "score": item.get("score"),
            }
            for key, value in item.items():
                if key in {"id", "score", "logprobs"} or isinstance(value, dict | list):
                    continue
                if key not in columns:
                    columns.append(key)
                row[key] = value
            rows.append(row)
    return _csv(rows, columns)


def _csv(rows: list[dict], columns) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def heatmap_png(results: list[dict], path: Path, *, title: str = "") -> Path | None:
    """The per-item matrix of every suite as one PNG: a row per model, a column per item,
    green where the model got the item right (red for a high perplexity); None without
    results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(r["suite_label"] for r in results))
    if not suites:
        return None
    plt.rcParams["font.family"] = ["Noto Sans CJK JP", "DejaVu Sans"]
    frames = [(s, matrix(results, s).T) for s in suites]  # models x items
    width = min(22.0, max(8.0, 0.16 * max(f.shape[1] for _, f in frames) + 4.0))
    heights = [0.38 * len(f) + 1.5 for _, f in frames]
    fig, axes = plt.subplots(
        len(frames),
        1,
        figsize=(width, sum(heights)),
        dpi=100,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, (suite, frame) in zip(axes[:, 0], frames, strict=True):
        primary = next(r for r in results if r["suite_label"] == suite)["primary"]
        lower = primary in m.LOWER_IS_BETTER
        image = ax.imshow(
            frame.to_numpy(dtype=float),
            aspect="auto",
            cmap="RdYlGn_r" if lower else "RdYlGn",
            vmin=None if lower else 0.0,
            vmax=None if lower else 1.0,
            interpolation="nearest",
        )
        ax.set_title(f"{suite}: {primary}", fontsize=10, loc="left")
        ax.set_yticks(range(len(frame)), [_short(str(c), 36) for c in frame.index], fontsize=8)
        step = max(1, frame.shape[1] // 60)
        labels = [str(c) for c in frame.columns][::step]
        ax.set_xticks(range(0, frame.shape[1], step), labels, fontsize=6, rotation=90)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path)


def steps_png(results: list[dict], path: Path, *, xlabel: str = "step") -> Path | None:
    """Primary score against training step, with ±1 standard error bands; None when no
    result has a step."""
    frame = step_rows(results)
    if frame.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = ["Noto Sans CJK JP", "DejaVu Sans"]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    for name, part in frame.groupby("series", sort=False):
        ax.plot(part["step"], part["value"], marker="o", label=str(name), linewidth=1.6)
        se = part["stderr"].fillna(0.0)
        ax.fill_between(part["step"], part["value"] - se, part["value"] + se, alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score (± 1 s.e.)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Path(path)


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
