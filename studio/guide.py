"""The guided first run: the demo's whole path through the studio, one step at a time.

sample corpus -> clean -> inspect -> train the CPU demo -> compare -> chat -> evaluate ->
export. Each step calls the same library functions as its tab and its CLI verb; the guide
only chooses the demo's settings. Progress is kept in `workspace/guide.json` and read
together with the workspace itself, so a step done in its own tab counts here too.

`python -m studio guide` shows where the path stands; `python -m studio guide STEP...`
runs steps, `--skip STEP` skips one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from studio.errors import StudioError
from studio.fsutil import atomic_write_json, read_json, set_aside
from studio.paths import EMBEDDED_MODEL_NAME

STEPS = ("sample", "clean", "inspect", "train", "compare", "chat", "evaluate", "export")
# the tab that shows each step in full
TAB_OF = {
    "sample": "data",
    "clean": "data",
    "inspect": "inspect",
    "train": "train",
    "compare": "compare",
    "chat": "chat",
    "evaluate": "eval",
    "export": "export",
}
CORPUS = "sample-corpus"
CLEAN_PRESET = "ja"
TRAIN_PRESET = "cpu-demo-sft"
CHAT_MESSAGE = "お茶の美味しい淹れ方を教えて。"
DONE, SKIPPED, RUNNING, TODO = "done", "skipped", "running", "todo"


class GuideError(StudioError, RuntimeError):
    """A step that cannot run yet, with what to do first."""


def progress_path(ws):
    return ws.root / "guide.json"


def load_progress(ws) -> dict:
    """What guide.json recorded; a damaged file reads as nothing recorded (the next `mark`
    keeps its bytes as guide.json.damaged)."""
    try:
        data = read_json(progress_path(ws), {}) or {}
    except (OSError, ValueError):
        data = {}
    steps = data.get("steps") if isinstance(data, dict) else None
    return {"steps": steps if isinstance(steps, dict) else {}}


def mark(ws, step: str, state: str, **summary) -> dict:
    """Record a step's state (done, skipped, running) with a short summary of what it
    produced. A damaged guide.json is set aside (guide.json.damaged) before the write."""
    if step not in STEPS:
        raise GuideError(f"unknown step {step!r}; the steps are: {', '.join(STEPS)}")
    path = progress_path(ws)
    try:
        read_json(path, {})
    except ValueError:
        set_aside(path)
    progress = load_progress(ws)
    entry = {"state": state, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    progress["steps"][step] = {**entry, **summary}
    atomic_write_json(path, progress)
    return progress


def guide_run(ws):
    """The run the guide started (or, failing that, the newest run of the demo preset)."""
    from studio.runs.store import RunError, list_runs, open_run

    recorded = load_progress(ws)["steps"].get("train", {}).get("run")
    if recorded:
        try:
            return open_run(ws, recorded)
        except (RunError, OSError):
            pass
    return next((r for r in list_runs(ws) if r.info().get("preset") == TRAIN_PRESET), None)


def _cleaned(ws) -> str | None:
    from studio.data.registry import list_versions

    versions = [v for v in list_versions(ws.datasets) if v.name == CORPUS]
    return next((v.spec for v in reversed(versions) if v.operation == "clean"), None)


def states(ws) -> dict[str, str]:
    """Each step's state: what guide.json recorded, completed by what the workspace shows (a
    cleaned corpus, a finished fine-tune, a run still training)."""
    from studio.evaluate.runner import latest_finetune

    recorded = load_progress(ws)["steps"]
    found = {step: recorded.get(step, {}).get("state", TODO) for step in STEPS}
    if found["clean"] != DONE and _cleaned(ws):
        found["clean"] = DONE
    run = guide_run(ws)
    if run is not None and run.state in {"queued", "running"}:
        found["train"] = RUNNING
    elif found["train"] == RUNNING:  # recorded at the start; the run ended without finishing
        found["train"] = TODO
    if found["train"] != RUNNING and found["train"] != DONE and latest_finetune(ws):
        found["train"] = DONE
    # Evaluating or exporting the fine-tune in their own tabs (or the CLI) counts too.
    tuned = _guide_finetune(ws)
    if tuned and found["evaluate"] != DONE and _evaluated(ws, tuned):
        found["evaluate"] = DONE
    if tuned and found["export"] != DONE and _exported(ws, tuned):
        found["export"] = DONE
    return found


def _guide_finetune(ws) -> str | None:
    """`run:<id>` of the fine-tune the guide works with: the run its own train step made
    when it left a final model, else the newest fine-tune."""
    from studio.evaluate.runner import latest_finetune

    run = guide_run(ws)
    if run is not None and f"run:{run.id}" in ws.model_dirs(checkpoints=False):
        return f"run:{run.id}"
    return latest_finetune(ws)


def _evaluated(ws, tuned: str) -> bool:
    from studio.evaluate.results import list_sessions

    return any(tuned in (s.get("models") or []) for s in list_sessions(ws))


def _exported(ws, tuned: str) -> bool:
    run_id = tuned.removeprefix("run:")
    for marker in ws.models.glob("*/studio_export.json"):
        try:
            data = read_json(marker)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run") == run_id:
            return True
    return False


def first_open(current: dict[str, str]) -> str | None:
    """Of the steps' states, the first step neither done nor skipped (a training run counts
    as under way)."""
    return next((s for s in STEPS if current[s] in {TODO, RUNNING}), None)


def next_step(ws) -> str | None:
    return first_open(states(ws))


def is_fresh(ws) -> bool:
    """A workspace where nothing has been trained and the guide is not finished: the studio
    opens on the guide."""
    from studio.runs.store import list_runs

    return not list_runs(ws) and next_step(ws) is not None


# --- the steps -------------------------------------------------------------------------


@dataclass
class SampleSummary:
    version: str
    rows: int
    mean_chars: float
    examples: list[str]


def look_at_sample(ws, examples: int = 3) -> SampleSummary:
    from studio.data.store import document_text, open_version, resolve

    try:
        version = resolve(ws, CORPUS)
    except LookupError as exc:
        raise GuideError(
            f"the sample corpus {CORPUS} is not in this workspace (deleted?); import "
            "assets/data/corpus.jsonl in the Data tab"
        ) from exc
    data = open_version(ws, version)
    lengths = [len(document_text(row, version.format)) for row in data]
    shown = [document_text(data[i], version.format) for i in range(min(examples, len(data)))]
    summary = SampleSummary(
        version=version.spec,
        rows=len(data),
        mean_chars=round(sum(lengths) / max(1, len(lengths)), 1),
        examples=[text[:120] + ("…" if len(text) > 120 else "") for text in shown],
    )
    mark(ws, "sample", DONE, version=summary.version, rows=summary.rows)
    return summary


def clean_sample(ws):
    """The Japanese cleaning preset on the sample corpus: a new version, and its report."""
    from studio.data.clean import run_pipeline

    result = run_pipeline(ws, CORPUS, CLEAN_PRESET)
    report = result.report
    mark(ws, "clean", DONE, version=report.get("version"), kept=report["rows_out"],
         removed=report["removed"])  # fmt: skip
    return result


def demo_config(ws):
    from studio.train import presets

    config, _ = presets.load(TRAIN_PRESET)
    return config


def inspect_demo(ws):
    """The label check the demo's training will run: which tokens carry loss, and whether
    anything blocks training (the same preflight the Train tab's Check runs)."""
    from studio.train.start import preflight

    checked = preflight(ws, demo_config(ws))
    if checked.scan is None:
        raise GuideError(checked.scan_error or "the demo model's tokenizer could not be read")
    scan = checked.scan.to_dict()
    mark(
        ws,
        "inspect",
        DONE,
        rows=scan["rows"],
        trained_ratio=scan["trained_ratio"],
        blocked=checked.blocked,
    )
    return checked


def train_demo(ws):
    """Start the CPU demo preset, or return the demo run already under way or finished."""
    from studio.train.start import equivalent_command, preflight, start

    run = guide_run(ws)
    if run is not None and run.state in {"queued", "running", "completed"}:
        return run
    config = demo_config(ws)
    checked = preflight(ws, config)
    command = equivalent_command(checked.config, TRAIN_PRESET, ws.root).split()
    run = start(ws, config, preset=TRAIN_PRESET, command=command, checked=checked)
    mark(ws, "train", RUNNING, run=run.id)
    return run


def training_finished(ws, run) -> str:
    """Record the demo run's end; returns its state."""
    state = run.state
    if state == "completed":
        mark(ws, "train", DONE, run=run.id)
    return state


def wait_for_training(ws, run, *, poll: float = 2.0, report: Callable | None = None) -> str:
    while run.state in {"queued", "running"}:
        if report:
            report(run)
        time.sleep(poll)
    return training_finished(ws, run)


def finetune(ws) -> tuple[str, str]:
    """(`run:<id>`, its base model) of the guide's fine-tune (the run its own train step
    made, else the newest); GuideError before training."""
    from studio.runs.history import config_of
    from studio.runs.store import open_run

    tuned = _guide_finetune(ws)
    if tuned is None:
        raise GuideError("nothing has been trained yet: run the training step first")
    base = config_of(open_run(ws, tuned.removeprefix("run:"))).get("model")
    return tuned, str(base or EMBEDDED_MODEL_NAME)


def demo_prompts() -> list[str]:
    from studio.compare import DEMO_PROMPTS, parse_prompts

    return parse_prompts(DEMO_PROMPTS)


def persona() -> str:
    from studio.chat import DEFAULT_PERSONAS

    return next(iter(DEFAULT_PERSONAS.values()))


def greedy(max_new_tokens: int = 64):
    from studio.generate import GenerationSettings

    return GenerationSettings(max_new_tokens=max_new_tokens, greedy=True)


def compare_demo(ws, open_model):
    """The base and the fine-tune side by side on the demo prompts, greedy, as a chat with
    the persona's system prompt."""
    from studio.compare import compare

    tuned, base = finetune(ws)
    result = compare(
        open_model, [base, tuned], demo_prompts(), greedy(), chat=True, system=persona()
    )
    summary = {row["model"]: row["eos"] for row in result.summary()}
    mark(ws, "compare", DONE, models=[base, tuned], eos=summary)
    return result


def chat_demo(ws, open_model, message: str = CHAT_MESSAGE):
    """One message to the fine-tune, with the persona; returns the finished reply."""
    from studio.chat import reply
    from studio.generate import GenerationResult

    tuned, _ = finetune(ws)
    finished = None
    with open_model(tuned) as loaded:
        for part in reply(loaded, [], message, greedy(96), system=persona()):
            if isinstance(part, GenerationResult):
                finished = part
    mark(ws, "chat", DONE, model=tuned, stop=finished.stop_reason if finished else None)
    return tuned, finished


def evaluate_demo(ws, open_model, progress: Callable | None = None) -> dict:
    from studio.evaluate.runner import demo_plan, evaluate

    tuned, _ = finetune(ws)  # the demo compares the base with the fine-tune: train first
    suites, entries = demo_plan(ws, tuned)
    session = evaluate(ws, suites, entries, open_model, progress=progress)
    mark(ws, "evaluate", DONE, session=session["id"])
    return session


def export_demo(ws):
    """The fine-tune merged into its base, as a model folder under `models/`."""
    from studio.export.export import export_run
    from studio.runs.store import open_run

    tuned, _ = finetune(ws)
    done = export_run(ws, open_run(ws, tuned.removeprefix("run:")), mode="merged")
    mark(ws, "export", DONE, model=done.name)
    return done
