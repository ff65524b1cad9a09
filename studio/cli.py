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

    gen = verbs.add_parser("generate", parents=[common], help="generate text from a model")
    _model_args(gen)
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
    gen.set_defaults(func=cmd_generate)
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
    lines += ["  " + t(f"model.note_{n['code']}", "en", **n["params"]) for n in info["notes"]]
    return info, "\n".join(lines)


def read_prompts(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read prompts from {path}: {exc}") from exc
    prompts = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                prompts.append(str(json.loads(line)["prompt"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise CliError(f"{path}:{n}: expected a JSON object with 'prompt'") from exc
        else:
            prompts.append(line)
    if not prompts:
        raise CliError(f"{path} holds no prompts")
    return prompts


def cmd_generate(args) -> tuple[dict, str]:
    from studio.generate import GenerationSettings, generate

    prompts = [args.prompt] if args.prompt is not None else read_prompts(args.prompts)
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
    loaded = _load(args)
    results = []
    for prompt in prompts:
        try:
            results.append(generate(loaded, prompt, settings, chat=args.chat, system=args.system))
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    text = "\n\n".join(
        f"### {r.prompt}\n{r.text}\n[{r.new_tokens} tokens, stop: {r.stop_reason}, {r.seconds}s]"
        for r in results
    )
    return {"model": loaded.source.name, "results": [r.to_dict() for r in results]}, text


# --- entry point -----------------------------------------------------------------------


def run(func: Callable, args) -> int:
    real_stdout = sys.stdout
    try:
        # With --json, whatever the libraries print must not corrupt the one JSON object.
        redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with redirect:
            payload, text = func(args)
    except (CliError, OSError) as exc:
        message = str(exc)
        if args.json:
            error = {"type": type(exc).__name__, "message": message}
            print(json.dumps({"ok": False, "error": error}, ensure_ascii=False), file=real_stdout)
        else:
            print(f"error: {message}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps({"ok": True, **payload}, ensure_ascii=False, default=str), file=real_stdout
        )
    else:
        print(text, file=real_stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    return run(args.func, args)
