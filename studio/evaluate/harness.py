"""lm-evaluation-harness tasks on a model the studio has loaded, in this process.

`lm_eval` is an optional extra (`pip install -r requirements-eval.txt`): it brings its own
task library (JSQuAD, JCommonsenseQA, JNLI and the rest of the Japanese leaderboard tasks)
and the exact prompts and metrics those leaderboards report, which a hand-written suite
cannot match. Nothing is downloaded: a task's data must be local. Task YAMLs placed in
`workspace/evals/harness/` are found by name, and a relative `data_files` path in them is
read from the YAML's own folder, e.g.

    task: my_jcqa
    dataset_path: json
    dataset_kwargs: {data_files: {test: jcqa.jsonl}}
    test_split: test
    output_type: multiple_choice
    doc_to_text: "質問: {{question}}\\n回答:"
    doc_to_choice: "{{choices}}"
    doc_to_target: label
    metric_list: [{metric: acc}, {metric: acc_norm}]

A suite named `lm-eval:<task>` in the CLI or the Evaluate tab runs through this bridge, and
its result has the same shape as the built-in suites' (metrics with standard errors and
per-item outcomes), so it is shown, stored and exported beside them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import yaml

from studio.evaluate import EvalError
from studio.evaluate import metrics as m
from studio.safety import UnsafeInputError, YamlRefused, load_yaml, safe_name

PREFIX = "lm-eval:"
INSTALL_HINT = (
    "lm-evaluation-harness is not installed, so lm-eval tasks cannot run. It is an optional "
    "extra: `pip install -r requirements-eval.txt` (lm-eval 0.4.13), then restart the studio."
)
_QUIET = ("lm-eval", "lm_eval", "datasets")


class HarnessUnavailable(EvalError):
    """lm_eval is not installed (or does not import)."""


def available() -> tuple[bool, str]:
    """(True, version) when lm_eval can be imported, else (False, why)."""
    if importlib.util.find_spec("lm_eval") is None:
        return False, INSTALL_HINT
    try:
        import lm_eval
    except Exception as exc:  # a broken install: say so instead of a traceback
        return False, f"lm-evaluation-harness is installed but does not import: {exc}"
    return True, getattr(lm_eval, "__version__", "")


def tasks_dir(ws) -> Path:
    return ws.evals / "harness"


def is_harness(spec: str) -> bool:
    return (spec or "").startswith(PREFIX)


def task_name(spec: str) -> str:
    name = (spec or "").removeprefix(PREFIX).strip()
    try:
        return safe_name(name)
    except UnsafeInputError as exc:
        raise EvalError(f"{spec!r} is not an lm-eval task name") from exc


def local_tasks(ws) -> dict[str, Path]:
    """Task name -> YAML file, for every task YAML in `workspace/evals/harness/`."""
    found = {}
    for path in sorted(tasks_dir(ws).glob("*.y*ml")):
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, YamlRefused):
            data = None  # `!function` tags and the like: lm_eval reads it by name
        name = data.get("task") if isinstance(data, dict) else path.stem
        if isinstance(name, str):
            found[name] = path
    return found


def task_choices(ws) -> list[str]:
    return [PREFIX + name for name in local_tasks(ws)]


def _task_config(path: Path) -> dict | str:
    """The task as a config dict with `data_files` made absolute (relative to the YAML's
    folder), or its name when the YAML needs lm_eval's own loader."""
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, YamlRefused):
        return path.stem
    if not isinstance(data, dict) or "include" in data:
        return data.get("task", path.stem) if isinstance(data, dict) else path.stem
    kwargs = dict(data.get("dataset_kwargs") or {})
    files = kwargs.get("data_files")
    if isinstance(files, str):
        files = _absolute(files, path.parent)
    elif isinstance(files, dict):
        files = {split: _absolute(f, path.parent) for split, f in files.items()}
    if files is not None:
        kwargs["data_files"] = files
        data["dataset_kwargs"] = kwargs
    return data


def _absolute(value, folder: Path):
    if isinstance(value, list):
        return [_absolute(v, folder) for v in value]
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def run_task(ws, loaded, spec: str, *, limit: int | None = None, batch_size: int = 16):
    """Run one lm-eval task on `loaded`; returns (items, metrics, info) like `tasks.run_suite`
    plus what identifies the task (name, lm_eval version, n-shot)."""
    ok, why = available()
    if not ok:
        raise HarnessUnavailable(why)
    name = task_name(spec)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    for logger in _QUIET:
        logging.getLogger(logger).setLevel(logging.ERROR)
    local = local_tasks(ws)
    task = _task_config(local[name]) if name in local else name
    manager = TaskManager(
        include_path=str(tasks_dir(ws)) if local else None, include_defaults=name not in local
    )
    model = HFLM(
        pretrained=loaded.model,
        tokenizer=loaded.tokenizer,
        batch_size=batch_size,
        device=str(loaded.device),
    )
    try:
        out = lm_eval.simple_evaluate(
            model=model,
            tasks=[task],
            task_manager=manager,
            limit=limit,
            log_samples=True,
            bootstrap_iters=0,
            verbosity="ERROR",
        )
    except (KeyError, ValueError, FileNotFoundError, ConnectionError, OSError) as exc:
        raise EvalError(_explain(name, exc)) from exc
    except Exception as exc:  # lm_eval raises many kinds; the user needs the message
        raise EvalError(_explain(name, exc)) from exc
    if not out or name not in out.get("results", {}):
        raise EvalError(f"lm-eval returned no results for {name!r}")
    return _shape(name, out)


def _explain(name: str, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = (
        f"Put a task YAML for {name!r} with local data (dataset_path: json, data_files) in "
        "workspace/evals/harness/, or have the task's dataset in the local Hugging Face cache; "
        "nothing is downloaded."
    )
    return f"lm-eval task {name!r} failed: {type(exc).__name__}: {text}. {hint}"


def _shape(name: str, out: dict):
    samples = out.get("samples", {}).get(name, [])
    reported = out["results"][name]
    metric_names = [k.split(",")[0] for k in reported if "," in k and "_stderr" not in k]
    items = []
    for sample in sorted(samples, key=lambda s: s.get("doc_id", 0)):
        item = {"id": f"doc-{sample.get('doc_id')}"}
        for metric in metric_names:
            value = sample.get(metric)
            if isinstance(value, int | float) and not isinstance(value, bool):
                item[metric] = float(value)
        items.append(item)
    found = {}
    for metric in metric_names:
        per_item = [i[metric] for i in items if metric in i]
        if len(per_item) == len(items) and items:
            found[metric] = m.summary(per_item)
        else:  # a corpus-level metric (BLEU, F1 over the set): lm_eval's own figure
            value = _number(next((v for k, v in reported.items() if k.split(",")[0] == metric)))
            se = _number(
                reported.get(next((k for k in reported if k.startswith(f"{metric}_stderr")), ""))
            )
            found[metric] = {"value": value, "stderr": se, "n": len(items)}
    primary = metric_names[0] if metric_names else None
    for item in items:
        item["score"] = item.get(primary)
    higher = out.get("higher_is_better", {}).get(name, {})
    info = {
        "task": name,
        "lm_eval": out.get("config", {}).get("lm_eval_version") or available()[1],
        "n_shot": out.get("n-shot", {}).get(name),
        "primary": primary,
        "higher_is_better": bool(higher.get(primary, True)) if primary else True,
    }
    return items, found, info


def _number(value):
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
