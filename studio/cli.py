"""`python -m studio <verb>`: the same library functions the UI calls, for scripts.

Every verb takes `--workspace` and `--json`. With `--json` exactly one JSON object is
printed on stdout (`{"ok": true, ...}` or `{"ok": false, "error": {...}}`); anything the
libraries print goes to stderr. The exit status is 0 on success, 1 on failure and 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class CliError(RuntimeError):
    """A failure the user can act on; its message is shown as is."""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)"
    )
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return common


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="",
        help="embedded model name (default), a workspace model, a local folder or a hub id",
    )
    p.add_argument("--trust-remote-code", action="store_true", help="run code shipped with it")
    p.add_argument("--allow-pickle", action="store_true", help="allow *.bin pickle weights")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")


def build_parser() -> argparse.ArgumentParser:
    from studio.generate import GenerationSettings  # light: torch is imported lazily there

    common = _common()
    parser = argparse.ArgumentParser(
        prog="python -m studio",
        description="Tsumugi Studio from the command line: the same steps as the web UI.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    verbs.add_parser(
        "init", parents=[common], help="create or open the workspace and register samples"
    ).set_defaults(func=cmd_init)
    verbs.add_parser(
        "env", parents=[common], help="device, precision, backend and library versions"
    ).set_defaults(func=cmd_env)

    datasets = verbs.add_parser("datasets", parents=[common], help="datasets in the workspace")
    ds_verbs = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)
    ds_verbs.add_parser(
        "list", parents=[common], help="list dataset versions and evaluation suites"
    ).set_defaults(func=cmd_datasets_list)

    model = verbs.add_parser("model", parents=[common], help="inspect a base model")
    m_verbs = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = m_verbs.add_parser(
        "info", parents=[common], help="size, context, special tokens, chat template, checks"
    )
    _model_args(info)
    info.set_defaults(func=cmd_model_info)

    gen = verbs.add_parser(
        "generate",
        parents=[common],
        help="generate text from a model, or from several side by side",
        description="Generate replies to one prompt or a list of prompts. With several "
        "--model/--adapter the same prompts, settings and seed go to every model and the "
        "result is a grid (prompts x models) with how each reply ended and a repetition "
        "score; adapters over one base share it.",
    )
    gen.add_argument(
        "--model",
        action="append",
        default=[],
        help="embedded model name (default), a workspace model, run:<id>, run:<id>@<step>, a "
        "local folder or a hub id; repeat it to compare models",
    )
    gen.add_argument(
        "--adapter",
        action="append",
        default=[],
        help="a LoRA adapter folder or run to load over --model; repeatable",
    )
    gen.add_argument(
        "--with-base", action="store_true", help="with --adapter: also answer with the base"
    )
    gen.add_argument("--trust-remote-code", action="store_true", help="run code shipped with it")
    gen.add_argument("--allow-pickle", action="store_true", help="allow *.bin pickle weights")
    gen.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt")
    src.add_argument("--prompts", type=Path, help="file: one prompt per line, or JSONL 'prompt'")
    gen.add_argument("--chat", action="store_true", help="wrap prompts in the chat template")
    gen.add_argument("--system", help="system prompt (with --chat)")
    defaults = GenerationSettings()
    gen.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    gen.add_argument("--temperature", type=float, default=defaults.temperature)
    gen.add_argument("--top-p", type=float, default=defaults.top_p)
    gen.add_argument("--top-k", type=int, default=defaults.top_k)
    gen.add_argument("--repetition-penalty", type=float, default=defaults.repetition_penalty)
    gen.add_argument("--seed", type=int, default=defaults.seed)
    gen.add_argument("--greedy", action="store_true", help="no sampling")
    gen.add_argument("--csv", type=Path, help="also write the grid as CSV here")
    gen.add_argument("--markdown", type=Path, help="also write the grid as a Markdown table")
    gen.set_defaults(func=cmd_generate)

    ins = verbs.add_parser(
        "inspect",
        parents=[common],
        help="which tokens carry loss, and the mistakes that ruin a fine-tune",
        description="Encode a dataset exactly as training would, check every row and print "
        "the diagnostics. Exit status 3 when an error-level problem is found.",
    )
    _model_args(ins)
    ins.add_argument("--data", required=True, help="JSONL/JSON file, or dataset NAME[/vNNNN]")
    ins.add_argument("--settings", type=Path, help="settings profile YAML (fields or encoding:)")
    ins.add_argument("--stage", choices=["sft", "pretrain"])
    ins.add_argument("--loss", choices=["auto", "completion", "assistant", "all"])
    ins.add_argument("--max-length", type=int)
    ins.add_argument("--truncation-side", choices=["right", "left"])
    ins.add_argument("--packing", choices=["off", "isolated", "concatenated"])
    ins.add_argument("--chat-template", type=Path, help="file with a Jinja chat template")
    ins.add_argument("--no-add-eos", dest="add_eos", action="store_false", default=None)
    ins.add_argument("--add-special-tokens", choices=["auto", "yes", "no"])
    ins.add_argument("--pad-token")
    ins.add_argument("--response-template")
    ins.add_argument("--mask-pad-token-id", action="store_true", default=None)
    ins.add_argument("--limit", type=int, help="check only the first N rows")
    ins.add_argument("--show-row", type=int, help="also print the tokens of this row")
    ins.add_argument("--write-fixed", type=Path, help="write the fixed settings to this YAML")
    ins.add_argument(
        "--repair",
        action="store_true",
        help="write a repaired copy of the data (typed end markers removed, unanswered rows "
        "dropped) as a new dataset version; a file is first imported into the workspace",
    )
    ins.add_argument("--lang", choices=["en", "ja"], default="en", help="message language")
    ins.set_defaults(func=cmd_inspect)

    tr = verbs.add_parser(
        "train",
        parents=[common],
        help="train: LoRA, QLoRA, GaLore or full fine-tuning, as a background run",
        description="Start a run from a config file or a preset name. The run trains in its "
        "own process and writes everything to workspace/runs/<run>/. Without --detach the "
        "command follows the log until the run ends; Ctrl-C stops it gracefully (a second "
        "Ctrl-C kills it). Under `accelerate launch` every process trains in place.",
    )
    tr.add_argument("config", nargs="?", help="config YAML, or a preset name (see --list)")
    tr.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field (learning_rate=1e-4, lora.r=8, max_length=512); repeatable",
    )
    tr.add_argument("--list", action="store_true", help="list the presets")
    tr.add_argument("--check", action="store_true", help="only check data and memory; no run")
    tr.add_argument("--detach", action="store_true", help="start and return at once")
    tr.add_argument("--resume", metavar="RUN", nargs="?", const="", help="resume a run")
    tr.add_argument("--stop", metavar="RUN", help="stop a run (twice: kill it)")
    tr.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)  # the training process
    tr.set_defaults(func=cmd_train)

    runs = verbs.add_parser("runs", parents=[common], help="training runs: history, compare")
    r_verbs = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    r_list = r_verbs.add_parser("list", parents=[common], help="every run with its figures")
    r_list.add_argument("--filter", default="", help="text in id, title, model, method, ...")
    r_list.add_argument("--state", action="append", help="only runs in this state (repeatable)")
    r_list.add_argument(
        "--sort",
        default="created",
        help="created, best_eval_loss, final_loss, tokens, duration_s or peak_memory_mb",
    )
    r_list.add_argument("--ascending", action="store_true")
    r_list.set_defaults(func=cmd_runs)
    r_show = r_verbs.add_parser("show", parents=[common], help="one run: summary, config, log")
    r_show.add_argument("run")
    r_show.set_defaults(func=cmd_runs)
    r_cmp = r_verbs.add_parser(
        "compare", parents=[common], help="overlaid curves, summary and config diff of runs"
    )
    r_cmp.add_argument("runs", nargs="+", metavar="RUN")
    r_cmp.add_argument(
        "--metric",
        default="loss",
        help="loss, eval_loss, learning_rate, grad_norm, tokens_per_s, ...",
    )
    r_cmp.add_argument("--x", default="step", choices=["step", "tokens", "elapsed"])
    r_cmp.add_argument("--log", action="store_true", help="log scale")
    r_cmp.add_argument("--smoothing", type=float, default=0.0)
    r_cmp.add_argument("--csv", type=Path, help="write every logged record of the runs here")
    r_cmp.add_argument("--png", type=Path, help="write the overlaid curves here")
    r_cmp.set_defaults(func=cmd_runs)
    r_title = r_verbs.add_parser("rename", parents=[common], help="give a run a display title")
    r_title.add_argument("run")
    r_title.add_argument("title")
    r_title.set_defaults(func=cmd_runs)
    r_note = r_verbs.add_parser("note", parents=[common], help="attach a note to a run")
    r_note.add_argument("run")
    r_note.add_argument("text")
    r_note.set_defaults(func=cmd_runs)
    r_del = r_verbs.add_parser("delete", parents=[common], help="delete a run's folder")
    r_del.add_argument("run")
    r_del.add_argument("--yes", action="store_true", help="really delete (required)")
    r_del.set_defaults(func=cmd_runs)

    ex = verbs.add_parser(
        "export",
        parents=[common],
        help="export a finished run: merged model or adapter, into workspace/models/",
    )
    ex.add_argument("run", help="run id (python -m studio runs list)")
    ex.add_argument("--adapter", action="store_true", help="the LoRA adapter alone, not merged")
    ex.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ex.add_argument("--name", help="folder name under workspace/models/ (default: run id)")
    ex.set_defaults(func=cmd_export)
    mg = verbs.add_parser(
        "merge", parents=[common], help="merge several fine-tunes from a recipe YAML"
    )
    mg.add_argument("recipe", type=Path, help="merge recipe (see studio/export/recipe.py)")
    mg.set_defaults(func=cmd_merge)
    from studio.guide import STEPS

    gd = verbs.add_parser(
        "guide",
        parents=[common],
        help="the guided first run: where it stands; run or skip its steps",
        description="sample -> clean -> inspect -> train -> compare -> chat -> evaluate -> "
        "export, with the demo's settings. With no STEP, shows each step's state.",
    )
    gd.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        help=f"steps to run in order ({', '.join(STEPS)}), or `next`, or `all`",
    )
    gd.add_argument("--skip", nargs="+", default=[], metavar="STEP", help="mark steps skipped")
    gd.set_defaults(func=cmd_guide)
    tk = verbs.add_parser(
        "tokens",
        parents=[common],
        help="token stores: datasets encoded once, shared by Inspect, Check and training",
        description="Every dataset encoded for a model and its settings is kept in "
        "workspace/.cache/tokens/ (about 2-4 bytes a token) so that checks, runs and resumes "
        "never tokenize it again. List them, remove some, or set the size cap (least "
        "recently used stores go first when it is exceeded).",
    )
    t_verbs = tk.add_subparsers(dest="action", metavar="ACTION", required=True)
    t_verbs.add_parser(
        "list", parents=[common], help="stores with their size, data, tokenizer, last use"
    ).set_defaults(func=cmd_tokens)
    t_rm = t_verbs.add_parser("remove", parents=[common], help="delete stores")
    t_rm.add_argument("keys", nargs="*", metavar="KEY", help="store keys (a unique prefix works)")
    t_rm.add_argument("--all", action="store_true", help="every store not in use")
    t_rm.set_defaults(func=cmd_tokens)
    t_cap = t_verbs.add_parser(
        "cap", parents=[common], help="show or set the size cap (GB), then evict down to it"
    )
    t_cap.add_argument("gb", nargs="?", type=float, help="new cap in GB")
    t_cap.set_defaults(func=cmd_tokens)
    from studio.data.command import add_parser as add_data_parser
    from studio.evaluate.command import add_parser as add_eval_parser

    add_data_parser(verbs, common)
    add_eval_parser(verbs, common)
    return parser


# --- verbs -----------------------------------------------------------------------------


def _workspace(args):
    from studio.workspace import WorkspaceError, open_workspace

    try:
        return open_workspace(args.workspace)
    except WorkspaceError as exc:
        raise CliError(str(exc)) from exc


def cmd_init(args) -> tuple[dict, str]:
    ws = _workspace(args)
    summary = ws.summary()
    lines = [f"Workspace ready at {ws.root}"]
    lines += [
        f"  {d['name']} {d['version']} ({d['format']}, {d['rows']} rows)"
        for d in summary["datasets"]
    ]
    return summary, "\n".join(lines)


def cmd_env(args) -> tuple[dict, str]:
    from studio.hardware import device_report, library_versions

    report = {"device": device_report(), "versions": library_versions()}
    d = report["device"]
    lines = [
        f"device: {d['device']} ({d['dtype']}), backend: {d['backend']}",
        f"unsloth: {d['unsloth']['reason']}",
    ]
    lines += [f"{k}: {v or 'not installed'}" for k, v in report["versions"].items()]
    return report, "\n".join(lines)


def cmd_datasets_list(args) -> tuple[dict, str]:
    from studio.data.registry import list_datasets, list_eval_suites

    ws = _workspace(args)
    datasets = [d.to_dict() for d in list_datasets(ws)]
    suites = [d.to_dict() for d in list_eval_suites(ws)]
    rows = [
        f"{d['name']:<28} {d['version']}  {d['format']:<18} {d['rows']:>7} rows  {d['operation']}"
        for d in datasets + suites
    ]
    return {"datasets": datasets, "eval_suites": suites}, "\n".join(rows) or "no datasets"


def _load(args):
    from studio.models.load import ModelLoadError, load_model, resolve_source

    ws = _workspace(args)
    try:
        source = resolve_source(args.model, named_dirs=ws.model_dirs())
        return load_model(
            source,
            device=None if args.device == "auto" else args.device,
            trust_remote_code=args.trust_remote_code,
            allow_pickle=args.allow_pickle,
        )
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc


def cmd_model_info(args) -> tuple[dict, str]:
    from studio.i18n import t
    from studio.models.info import describe

    info = describe(_load(args))
    lines = [
        f"{info['name']}: {info['architecture']}, {info['parameters']:,} parameters",
        f"  layers {info['layers']}, hidden {info['hidden_size']}, "
        f"context {info['context_length']}, vocab {info['vocab_size']}",
        f"  {info['dtype']} on {info['device']}, loaded in {info['load_seconds']} s",
        "  special tokens: "
        + ", ".join(f"{e['role']}={e['token']}({e['id']})" for e in info["special_tokens"]),
    ]
    family = info["family"]
    ends = ", ".join(f"{e['token']}({e['id']})" for e in family["end_tokens"]) or "none"
    lines.append(
        f"  family {family['family']}, end-of-turn tokens {ends}, "
        f"assistant turns found by: {family['spans']}"
    )
    lines += ["  " + t(f"model.note_{n['code']}", "en", **n["params"]) for n in info["notes"]]
    return info, "\n".join(lines)


def cmd_generate(args) -> tuple[dict, str]:
    from studio.compare import PromptsError, compare, read_prompts
    from studio.fsutil import atomic_write_text
    from studio.generate import GenerationSettings
    from studio.models.load import ModelLoadError, resolve_source
    from studio.models.pool import ModelPool, pool_opener
    from studio.paths import EMBEDDED_MODEL_NAME

    try:
        prompts = [args.prompt] if args.prompt is not None else read_prompts(args.prompts)
    except PromptsError as exc:
        raise CliError(str(exc)) from exc
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        greedy=args.greedy,
    )
    try:
        settings.validate()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    ws = _workspace(args)
    if len(args.model) > 1 and args.adapter:
        raise CliError("give one --model as the base of --adapter, or several --model alone")
    models = [m or EMBEDDED_MODEL_NAME for m in args.model] or [EMBEDDED_MODEL_NAME]
    columns = ([*models] if args.with_base else []) + args.adapter if args.adapter else models
    pool = ModelPool(device=None if args.device == "auto" else args.device)
    opener = pool_opener(
        ws, pool, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle
    )

    def open_model(column: str):
        return opener(column, base=models[0] if column in args.adapter else None)

    try:
        result = compare(
            open_model,
            columns,
            prompts,
            settings,
            chat=args.chat,
            system=args.system,
            keep_going=False,
        )
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    for path, text in ((args.csv, result.to_csv()), (args.markdown, result.to_markdown())):
        if path is not None:
            atomic_write_text(path, text)
    payload = result.to_dict()
    if len(columns) == 1:  # one model: its replies as a plain list
        payload["model"] = resolve_source(columns[0], named_dirs=ws.model_dirs()).name
        payload["results"] = payload["cells"]
    text = "\n\n".join(
        f"### {c.prompt}"
        + (f"  [{c.model}]" if len(columns) > 1 else "")
        + f"\n{c.text}\n[{c.new_tokens} tokens, stop: {c.stop_reason}"
        + (", repetitive" if c.repetitive else "")
        + f", {c.seconds}s]"
        for c in result.cells
    )
    return payload, text


def _inspect_settings(args):
    import dataclasses

    from studio.labels.encode import EncodingSettings
    from studio.labels.profiles import ProfileError, read_settings_file

    settings = EncodingSettings()
    if args.settings:
        try:
            settings = read_settings_file(args.settings)[0]
        except ProfileError as exc:
            raise CliError(str(exc)) from exc
    # Every setting has a flag of the same name (the chat template is read from a file).
    changes = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(EncodingSettings)
        if field.name != "chat_template" and getattr(args, field.name) is not None
    }
    if args.chat_template:
        try:
            changes["chat_template"] = args.chat_template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the chat template: {exc}") from exc
    try:
        return settings.replace(**changes)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _data_path(args) -> tuple[Path, str, bool]:
    """(data file, its name, whether it is a dataset version of the workspace)."""
    candidate = Path(args.data).expanduser()
    if candidate.is_file():
        return candidate, candidate.name, False
    return _dataset_path(args, candidate)


def _dataset_path(args, candidate: Path) -> tuple[Path, str, bool]:
    from studio.data.records import dataset_file
    from studio.data.registry import find_version

    if candidate.suffix in {".jsonl", ".json"}:
        raise CliError(f"no file at {args.data}")
    try:
        version = find_version(_workspace(args), args.data)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    return dataset_file(version), f"{version.name}/{version.version}", True


def progress_printer(stream=None):
    """Encoding progress for a terminal: a bar redrawn in place on a TTY, else a line
    every few seconds (a log file, CI)."""
    import time

    stream = stream or sys.stderr
    tty = stream.isatty()
    shown = {"at": 0.0, "state": "", "width": 0}

    def show(progress) -> None:
        now = time.monotonic()
        line = progress.line()
        done = progress.state == "encoding" and progress.fraction == 1.0
        if tty:
            stream.write("\r" + line.ljust(shown["width"]) + ("\n" if done else ""))
            shown["width"] = 0 if done else len(line)
        elif progress.state != shown["state"] or now - shown["at"] >= 5 or done:
            stream.write(line + "\n")
            shown["at"] = now
        else:
            return
        shown["state"] = progress.state
        stream.flush()

    return show


def cmd_inspect(args) -> tuple[dict, str]:
    from jinja2 import TemplateError

    from studio.data.records import RecordError
    from studio.labels.diagnose import explain
    from studio.labels.fixes import apply_settings
    from studio.labels.inspect import (
        examples_of,
        inspect_rows,
        load_target,
        rows_at,
        scan,
        scan_dataset,
    )
    from studio.labels.inspect import suggest_fixes as suggest
    from studio.labels.profiles import dump
    from studio.labels.view import chips, trained_text
    from studio.models.load import ModelLoadError, resolve_source

    settings = _inspect_settings(args)
    path, data_name, registered = _data_path(args)
    ws = _workspace(args)
    try:
        target = load_target(
            resolve_source(args.model, named_dirs=ws.model_dirs()),
            trust_remote_code=args.trust_remote_code,
        )
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    try:
        if registered and args.limit is None:  # through its token store (kept for later)
            report = scan_dataset(ws, [data_name], target, settings, progress=progress_printer())
        else:
            report = scan(examples_of(path, limit=args.limit), target, settings)
        fixes = suggest(report, target, settings, path)
        shown = rows_at(path, args.show_row, 1) if args.show_row is not None else []
    except (RecordError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    except TemplateError as exc:  # a broken --chat-template: a message, not a traceback
        raise CliError(f"the chat template cannot be rendered: {exc}") from exc
    payload = report.to_dict()
    payload["data"] = data_name
    for entry, diag in zip(payload["diagnostics"], report.diagnostics, strict=True):
        entry["message"], entry["fix"] = explain(diag, args.lang)
    payload["fixes"] = [f.to_dict() for f in fixes]
    if args.write_fixed:
        fixed = apply_settings(settings, fixes)
        actions = [f.action for f in fixes if f.kind == "settings"]
        from studio.fsutil import atomic_write_text

        atomic_write_text(args.write_fixed, dump(fixed, fixes=actions))
        payload["fixed_settings"] = str(args.write_fixed)
    lines = [
        f"{data_name}: {report.rows} rows, {payload['trained_ratio']:.1%} of "
        f"{report.tokens} tokens trained, {report.truncated_rows} truncated "
        f"({report.seconds:.2f} s, {target.name})"
    ]
    if report.spans:
        lines.append(f"assistant turns found by: {report.spans}")
    for entry in payload["diagnostics"]:
        rows = ", ".join(map(str, entry["rows"][:10]))
        lines.append(f"[{entry['severity']}] {entry['code']} ({entry['count']} rows: {rows})")
        lines.append(f"    {entry['message']}")
        lines.append(f"    fix: {entry['fix']}")
    if not payload["diagnostics"]:
        lines.append("no problems found")
    if shown:
        inspection = inspect_rows(shown, target, settings)
        payload["row"] = [s.to_dict() for s in inspection.sequences]
        special = inspection.tokens.special_ids
        for seq in inspection.sequences:
            lines.append(f"row {args.show_row}: position  id  label  role  text")
            for chip in chips(seq, target.tokenizer, special):
                for i in range(chip.start, chip.end):
                    text = repr(chip.text) if i == chip.start else ""
                    lines.append(
                        f"  {i:>5} {seq.input_ids[i]:>6} {seq.labels[i]:>6}  {chip.role:<7} {text}"
                    )
            lines.append("  trained text: " + " | ".join(trained_text(seq, target.tokenizer)))
    if args.write_fixed:
        lines.append(f"fixed settings written to {args.write_fixed}")
    data_fixes = [f for f in fixes if f.kind == "data"]
    if args.repair and data_fixes:
        repaired = _repair(args, path, data_name, data_fixes[0])
        payload["repaired"] = repaired.to_dict()
        lines.append(
            f"repaired copy: {repaired.name}/{repaired.version} ({repaired.rows} rows); "
            f"the original is unchanged"
        )
    payload["exit_code"] = 3 if report.blocked else 0
    return payload, "\n".join(lines)


def _repair(args, path: Path, data_name: str, fix):
    from studio.data.records import RecordError, import_file
    from studio.data.registry import find_version
    from studio.labels.fixes import repair_dataset
    from studio.safety import UnsafeInputError

    ws = _workspace(args)
    try:
        if "/" in data_name and not Path(args.data).expanduser().is_file():
            version = find_version(ws, data_name)
        else:  # a loose file: import it first, so the repair has a parent version
            version = import_file(ws, path, operation="import", source=str(path))
        return repair_dataset(
            ws,
            version,
            fix.params["literals"],
            drop_unanswered=fix.params["drop_unanswered"],
            trailing=fix.params.get("trailing", []),
        )
    except (LookupError, RecordError, UnsafeInputError, ValueError) as exc:
        raise CliError(f"cannot repair the data: {exc}") from exc


def cmd_train(args) -> tuple[dict, str]:
    from studio.train.command import train

    return train(args, _workspace(args))


def cmd_runs(args) -> tuple[dict, str]:
    from studio.runs.command import runs

    return runs(args, _workspace(args))


def cmd_guide(args) -> tuple[dict, str]:
    from studio import guide
    from studio.data.store import DataError
    from studio.evaluate import EvalError
    from studio.export.export import ExportError
    from studio.models.load import ModelLoadError
    from studio.models.pool import ModelPool, pool_opener
    from studio.train.launch import Blocked

    ws = _workspace(args)
    bad = [s for s in args.steps if s not in (*guide.STEPS, "all", "next")]
    bad += [s for s in args.skip if s not in guide.STEPS]
    if bad:
        raise CliError(f"unknown step {bad[0]!r}; the steps are: {', '.join(guide.STEPS)}")
    current = guide.states(ws)
    wanted: list[str] = []
    for step in args.steps:
        if step == "all":
            wanted += [s for s in guide.STEPS if current[s] != guide.DONE]
        elif step == "next":
            wanted += [s for s in [guide.first_open(current)] if s]
        else:
            wanted.append(step)
    for step in args.skip:
        guide.mark(ws, step, guide.SKIPPED)
    opener = pool_opener(ws, ModelPool())
    lines, done = [], {}
    try:
        for step in dict.fromkeys(wanted):
            done[step] = _guide_step(guide, ws, step, opener)
            lines.append(f"{step}: {done[step]}")
    except (guide.GuideError, DataError, EvalError, ExportError, ModelLoadError) as exc:
        raise CliError(f"{step}: {exc}") from exc
    except Blocked as exc:
        raise CliError(f"{step}: training is blocked: {exc}") from exc
    current = guide.states(ws)
    lines += [f"{n}. {s:<9} {current[s]}" for n, s in enumerate(guide.STEPS, 1)]
    return {"ran": done, "steps": current, "next": guide.next_step(ws)}, "\n".join(lines)


def _guide_step(guide, ws, step: str, opener) -> str:
    """Run one guide step; a line saying what it produced."""
    if step == "sample":
        s = guide.look_at_sample(ws)
        return f"{s.version}: {s.rows} documents, {s.mean_chars} characters on average"
    if step == "clean":
        r = guide.clean_sample(ws).report
        return f"{r['version']}: kept {r['rows_out']:,} of {r['rows_in']:,} documents"
    if step == "inspect":
        scan = guide.inspect_demo(ws).scan.to_dict()
        return (
            f"{scan['rows']} conversations, {100 * scan['trained_ratio']:.1f}% of tokens "
            f"trained, {'blocked' if scan['blocked'] else 'ready to train'}"
        )
    if step == "train":
        run = guide.train_demo(ws)
        state = guide.wait_for_training(ws, run)
        if state != "completed":
            raise guide.GuideError(
                f"run {run.id} ended {state}: python -m studio runs show {run.id}"
            )
        return f"run {run.id} completed"
    if step == "compare":
        rows = guide.compare_demo(ws, opener).summary()
        return "; ".join(f"{r['model']}: {r['eos']}/{r['replies']} end at EOS" for r in rows)
    if step == "chat":
        model, result = guide.chat_demo(ws, opener)
        return f"{model}: {result.text if result else ''}"
    if step == "evaluate":
        session = guide.evaluate_demo(ws, opener)
        return f"results {session['id']} (python -m studio eval --list)"
    exported = guide.export_demo(ws)
    return f"models/{exported.name} ({exported.bytes / 2**20:.1f} MiB)"


def cmd_export(args) -> tuple[dict, str]:
    from studio.export.export import ExportError, export_run
    from studio.models.load import ModelLoadError
    from studio.runs.store import RunError, open_run

    ws = _workspace(args)
    try:
        run = open_run(ws, args.run)
        done = export_run(
            ws, run, mode="adapter" if args.adapter else "merged", dtype=args.dtype, name=args.name
        )
    except (ExportError, RunError, ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    text = (
        f"exported {run.id} as {done.mode} ({done.dtype}) to {done.path}: "
        f"{done.bytes / 2**20:.1f} MiB in {done.seconds} s; stops on ids {done.eos_token_ids}"
    )
    return done.to_dict(), text


def cmd_tokens(args) -> tuple[dict, str]:
    from studio.tokens import cache

    ws = _workspace(args)
    removed = []
    if args.action == "remove":
        if not args.keys and not args.all:
            raise CliError("name the stores to remove (python -m studio tokens list), or --all")
        keys = [s.key for s in cache.list_stores(ws) if not s.in_use] if args.all else args.keys
        for key in keys:
            try:
                removed.append(cache.remove_store(ws, key).key)
            except cache.StoreError as exc:
                raise CliError(str(exc)) from exc
    elif args.action == "cap":
        if args.gb is not None:
            if args.gb <= 0:
                raise CliError("the cap must be a positive number of GB")
            ws.update_meta(token_cache_gb=args.gb)
        removed = [s.key for s in cache.evict(ws)]
    stores = cache.list_stores(ws)
    total = sum(s.bytes for s in stores)
    cap = cache.cap_bytes(ws)
    payload = {
        "stores": [s.to_dict() for s in stores],
        "bytes": total,
        "cap_bytes": cap,
        "removed": removed,
    }
    lines = [f"removed {key}" for key in removed]
    for s in stores:
        what = s.made_by_text()
        lines.append(
            f"{s.key[:12]}  {s.bytes / 2**20:9,.1f} MiB  {s.tokens:>14,} tokens  "
            f"{s.bytes_per_token:4.2f} B/token  {', '.join(s.sources)}  [{s.tokenizer}; {what}]"
            + ("  (in use)" if s.in_use else "")
        )
    lines.append(
        f"{len(stores)} store(s), {total / 2**30:.2f} GB of {cap / 2**30:.1f} GB "
        f"({cache.tokens_dir(ws)})"
    )
    return payload, "\n".join(lines)


def cmd_merge(args) -> tuple[dict, str]:
    from studio.export.merge import merge
    from studio.export.recipe import MergeRecipe, RecipeError

    ws = _workspace(args)
    try:
        report = merge(ws, MergeRecipe.read(args.recipe))
    except (RecipeError, RuntimeError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    text = (
        f"merged {len(report['weights'])} sources ({report['method']}) into {report['path']} "
        f"in {report['seconds']} s, peak memory {report['peak_rss_mb']} MiB"
    )
    return report, text


# --- entry point -----------------------------------------------------------------------


def run(func: Callable, args) -> int:
    from studio.safety import UnsafeInputError

    real_stdout = sys.stdout
    try:
        # With --json, whatever the libraries print must not corrupt the one JSON object.
        redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with redirect:
            payload, text = func(args)
    except (CliError, OSError, UnsafeInputError) as exc:  # a bad name or path: its message
        message = str(exc)
        if args.json:
            error = {"type": type(exc).__name__, "message": message}
            print(json.dumps({"ok": False, "error": error}, ensure_ascii=False), file=real_stdout)
        else:
            print(f"error: {message}", file=sys.stderr)
        return 1
    # A verb may report a finding through the exit status (inspect: 3 = errors found).
    status = payload.pop("exit_code", 0)
    # ... and whether what it did succeeded (train: a run that failed is not ok).
    ok = bool(payload.pop("ok", True))
    if args.json:
        print(json.dumps({"ok": ok, **payload}, ensure_ascii=False, default=str), file=real_stdout)
    else:
        print(text, file=real_stdout)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    return run(args.func, args)
