"""Suites x models: every model is opened once (through `open_model`, e.g. the shared model
pool) and every suite runs on it; each result is saved as soon as it exists.

`open_model(spec)` returns a context manager that yields a `LoadedModel` and holds it for
the block: the CLI and the UI build one on `studio.models.pool.ModelPool`, tests may pass
anything with that shape.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from studio.evaluate import EvalError, harness, results
from studio.evaluate.suites import Suite, SuiteError, open_suite
from studio.evaluate.tasks import PRIMARY, run_suite
from studio.models.load import ModelLoadError
from studio.paths import EMBEDDED_MODEL_NAME

Opener = Callable[[str], contextlib.AbstractContextManager]
DEMO_SUITES = ("sample-eval-qa", "sample-eval-rank")


@dataclass
class ModelEntry:
    spec: str  # what the model picker or --models named
    label: str  # shown in tables (the spec, or "base" / "@step" in a sweep)
    run: str | None = None
    step: int | None = None
    role: str = "model"  # model | base | checkpoint | final

    def to_dict(self) -> dict:
        return {
            "spec": self.spec,
            "label": self.label,
            "run": self.run,
            "step": self.step,
            "role": self.role,
        }


def sweep_models(ws, run_id: str) -> list[ModelEntry]:
    """The base a run started from (step 0), every complete intermediate checkpoint in step
    order, and its final model (at the run's last step; a checkpoint saved at that same
    step is the same weights and is left out)."""
    from studio.runs.history import config_of
    from studio.runs.store import RunError, open_run

    try:
        run = open_run(ws, run_id)
    except RunError as exc:
        raise EvalError(str(exc)) from exc
    base = str(config_of(run).get("model") or EMBEDDED_MODEL_NAME)
    entries = [ModelEntry(base, f"{base} (base)", run.id, 0, "base")]
    steps = {}
    for name in ws.checkpoint_dirs(run.id):
        steps[int(name.rsplit("@", 1)[1])] = name
    final = f"run:{run.id}"
    final_step = None
    if final in ws.model_dirs(checkpoints=False):
        final_step = int(run.status().get("step") or max(steps, default=0)) or None
    for step in sorted(steps):
        if step != final_step:
            entries.append(ModelEntry(steps[step], f"@{step}", run.id, step, "checkpoint"))
    if final_step is not None or final in ws.model_dirs(checkpoints=False):
        entries.append(ModelEntry(final, f"@{final_step} (final)", run.id, final_step, "final"))
    if len(entries) == 1:
        raise EvalError(
            f"run {run.id} has no saved checkpoints or final model yet; set save_steps so "
            "that it keeps checkpoints, or wait for it to finish"
        )
    return entries


def latest_finetune(ws) -> str | None:
    """`run:<id>` of the newest run that left a final model, or None."""
    from studio.runs.store import list_runs

    finished = ws.model_dirs(checkpoints=False)
    return next((f"run:{r.id}" for r in list_runs(ws) if f"run:{r.id}" in finished), None)


def demo_plan(ws, tuned: str | None = None) -> tuple[list[str], list[ModelEntry]]:
    """The demo: the bundled suites on a fine-tune's base and the fine-tune (`tuned`, a
    `run:<id>`; default the latest; only the embedded model when nothing has been trained
    yet)."""
    from studio.data.registry import list_eval_suites
    from studio.runs.history import config_of
    from studio.runs.store import open_run

    have = {d.name for d in list_eval_suites(ws)}
    suites = [s for s in DEMO_SUITES if s in have]
    if not suites:
        raise EvalError(
            "the bundled suites are not in this workspace (deleted?); run `python -m studio "
            "init` in a new workspace or upload assets/data/eval_rank.jsonl"
        )
    tuned = tuned or latest_finetune(ws)
    if tuned is None:
        return suites, [ModelEntry(EMBEDDED_MODEL_NAME, EMBEDDED_MODEL_NAME, role="base")]
    run_id = tuned.removeprefix("run:")
    base = str(config_of(open_run(ws, run_id)).get("model") or EMBEDDED_MODEL_NAME)
    return suites, [
        ModelEntry(base, base, role="base"),
        ModelEntry(tuned, tuned, run_id, None, "final"),
    ]


def resolve_suites(ws, specs: list[str]) -> list[Suite | str]:
    """Suites by name (`name`, `name/vNNNN`) or lm-eval tasks (`lm-eval:<task>`)."""
    if not specs:
        raise EvalError("pick at least one suite")
    found: list[Suite | str] = []
    for spec in specs:
        if harness.is_harness(spec):
            found.append(harness.PREFIX + harness.task_name(spec))
        else:
            found.append(open_suite(ws, spec))
    return found


def limited(suite: Suite, limit: int | None) -> Suite:
    if not limit:
        return suite
    return Suite(
        suite.name,
        suite.version,
        suite.kind,
        suite.items[: int(limit)],
        suite.shots,
        suite.settings,
        suite.path,
    )


def evaluate(
    ws,
    suites: list[str],
    models: list[ModelEntry | str],
    open_model: Opener,
    *,
    limit: int | None = None,
    options: dict | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Run every suite on every model; returns the stored session (see `results`).

    A model that cannot be loaded is recorded under `errors` and skipped; a suite that is
    malformed stops everything before any model is loaded."""
    if limit is not None and int(limit) < 1:
        raise EvalError("--limit must be at least 1")
    entries = [
        m if isinstance(m, ModelEntry) else ModelEntry(m, m or EMBEDDED_MODEL_NAME) for m in models
    ]
    if not entries:
        raise EvalError("pick at least one model")
    chosen = resolve_suites(ws, suites)
    labels = [s if isinstance(s, str) else s.label for s in chosen]
    settings = {"limit": limit, **(options or {})}
    session = results.new_session([e.to_dict() for e in entries], labels, settings)
    results.save_session(ws, session)
    total = len(entries) * len(chosen)
    for n, entry in enumerate(entries):
        try:
            with open_model(entry.spec) as loaded:
                for k, suite in enumerate(chosen):
                    label = suite if isinstance(suite, str) else suite.label
                    if progress:
                        progress((n * len(chosen) + k) / total, f"{entry.label} · {label}")
                    try:
                        result = _one(ws, loaded, suite, entry, limit, options)
                    except (EvalError, ValueError, RuntimeError) as exc:
                        # an lm-eval task that cannot run here, a tokenizer that cannot score,
                        # out of memory: reported with the model and suite, the rest goes on
                        session["errors"].append(
                            {"model": entry.label, "suite": label, "message": str(exc)}
                        )
                        continue
                    session["results"].append(result)
                    results.save_session(ws, session)
        except (ModelLoadError, OSError) as exc:
            session["errors"].append({"model": entry.label, "message": str(exc)})
        results.save_session(ws, session)
    session["state"] = "completed" if session["results"] else "failed"
    results.save_session(ws, session)
    if not session["results"]:
        raise EvalError("; ".join(f"{e['model']}: {e['message']}" for e in session["errors"]))
    if progress:
        progress(1.0, "done")
    return session


def _one(ws, loaded, suite: Suite | str, entry: ModelEntry, limit, options) -> dict:
    started = time.perf_counter()
    if isinstance(suite, str):
        items, found, info = harness.run_task(ws, loaded, suite, limit=limit)
        head = {
            "suite": suite,
            "version": info["lm_eval"],
            "suite_label": suite,
            "kind": "lm_eval",
            "primary": info["primary"],
            "higher_is_better": info["higher_is_better"],
            "task": info,
        }
    else:
        items, found = run_suite(loaded, limited(suite, limit), **(options or {}))
        primary, higher = PRIMARY[suite.kind]
        head = {
            "suite": suite.name,
            "version": suite.version,
            "suite_label": suite.label,
            "kind": suite.kind,
            "primary": primary,
            "higher_is_better": higher,
        }
    return head | {
        "model": entry.spec,
        "model_label": entry.label,
        "model_ref": loaded.source.ref,
        "run": entry.run,
        "step": entry.step,
        "role": entry.role,
        "metrics": found,
        "items": items,
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


__all__ = ["SuiteError", "evaluate", "sweep_models", "demo_plan"]
