"""`export` and `merge`: a finished run as a model or adapter; several fine-tunes merged."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import open_ws


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    from studio.export.gguf import QUANTS

    ex = verbs.add_parser(
        "export",
        parents=[common],
        help="export a finished run: merged model or adapter, into workspace/models/",
    )
    ex.add_argument(
        "run", help="run id (python -m studio runs list); RUN@best: its best checkpoint"
    )
    ex.add_argument(
        "--best",
        action="store_true",
        help="the run's best checkpoint (evaluation while training), not its final model",
    )
    ex.add_argument("--adapter", action="store_true", help="the LoRA adapter alone, not merged")
    ex.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ex.add_argument("--name", help="folder name under workspace/models/ (default: run id)")
    ex.add_argument(
        "--gguf",
        action="store_true",
        help="GGUF files for llama.cpp, Ollama and LM Studio (merged, converted and quantized "
        "by llama.cpp, then checked against the model); RUN may also be a workspace model",
    )
    ex.add_argument(
        "--quant",
        action="append",
        choices=list(QUANTS),
        help="with --gguf: a quantization to write (repeat for several; default q8_0 and q4_k_m)",
    )
    ex.add_argument(
        "--no-check", action="store_true", help="with --gguf: skip the self-check against the model"
    )
    ex.add_argument(
        "--prompts",
        type=Path,
        help="with --gguf: check on these prompts (one per line, or JSONL) instead of the run's "
        "held-out rows",
    )
    ex.add_argument(
        "--ollama",
        nargs="?",
        const="",
        metavar="NAME",
        help="with --gguf: register the result with `ollama create` (ollama must be on PATH)",
    )
    ex.set_defaults(func=cmd_export)
    ig = verbs.add_parser(
        "install-gguf",
        parents=[common],
        help="install llama.cpp for GGUF export: its converter and the llama-cpp-python package, "
        "built once from one source distribution",
    )
    ig.add_argument(
        "--sdist", type=Path, help="a llama_cpp_python-0.3.36.tar.gz already here (no download)"
    )
    ig.set_defaults(func=cmd_install_gguf)
    mg = verbs.add_parser(
        "merge", parents=[common], help="merge several fine-tunes from a recipe YAML"
    )
    mg.add_argument("recipe", type=Path, help="merge recipe (see studio/export/recipe.py)")
    mg.set_defaults(func=cmd_merge)


def cmd_export(args) -> tuple[dict, str]:
    from studio.export.export import export_run
    from studio.runs.store import open_run

    ws = open_ws(args)
    if args.gguf:
        return export_gguf_cmd(ws, args)
    run_id, at = args.run.removeprefix("run:"), ""
    if run_id.endswith("@best"):
        run_id, at = run_id.removesuffix("@best"), "best"
    run = open_run(ws, run_id)
    done = export_run(
        ws,
        run,
        mode="adapter" if args.adapter else "merged",
        dtype=args.dtype,
        name=args.name,
        best=args.best or at == "best",
    )
    text = (
        f"exported {run.id} as {done.mode} ({done.dtype}) to {done.path}: "
        f"{done.bytes / 2**20:.1f} MiB in {done.seconds} s; stops on ids {done.eos_token_ids}"
    )
    return done.to_dict(), text


def export_gguf_cmd(ws, args) -> tuple[dict, str]:
    import sys

    from studio.compare import read_prompts
    from studio.export.gguf import check_table, export_gguf, register_ollama

    prompts = read_prompts(args.prompts) if args.prompts else None
    spec = args.run + ("@best" if args.best and "@" not in args.run else "")
    done = export_gguf(
        ws,
        spec,
        quants=args.quant or None,
        name=args.name,
        check=not args.no_check,
        prompts=prompts,
        progress=lambda step: print(f"... {step}", file=sys.stderr, flush=True),
    )
    payload = done.to_dict()
    lines = [
        f"exported {spec} as GGUF to {done.path} in {done.seconds} s "
        f"({done.bytes / 2**20:.1f} MiB): " + ", ".join(done.files.values()),
    ]
    if done.check is not None:
        lines.append(check_table(done.check, "en"))
    if done.status == "failed":
        lines.append(f"the check FAILED: {done.reason} (the files are kept)")
    if args.ollama is not None and done.status != "failed":
        tag, _ = register_ollama(ws, done.name, model_name=args.ollama or None)
        payload["ollama"] = tag
        lines.append(f"registered with Ollama as {tag}: `ollama run {tag}`")
    if done.status == "failed":  # the files are kept; the exit status says it failed
        payload.update(ok=False, exit_code=1)
    return payload, "\n".join(lines)


def cmd_install_gguf(args) -> tuple[dict, str]:
    import sys

    from studio.export import llama_cpp

    done = llama_cpp.install(args.sdist, log=lambda text: print(text, file=sys.stderr, flush=True))
    return done, f"llama.cpp {done['version']} is installed: GGUF export is ready"


def cmd_merge(args) -> tuple[dict, str]:
    from studio.export.merge import merge
    from studio.export.recipe import MergeRecipe

    ws = open_ws(args)
    report = merge(ws, MergeRecipe.read(args.recipe))
    text = (
        f"merged {len(report['weights'])} sources ({report['method']}) into {report['path']} "
        f"in {report['seconds']} s, peak memory {report['peak_rss_mb']} MiB"
    )
    return report, text
