"""`export` and `merge`: a finished run as a model or adapter; several fine-tunes merged."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import open_ws


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
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
    ex.set_defaults(func=cmd_export)
    mg = verbs.add_parser(
        "merge", parents=[common], help="merge several fine-tunes from a recipe YAML"
    )
    mg.add_argument("recipe", type=Path, help="merge recipe (see studio/export/recipe.py)")
    mg.set_defaults(func=cmd_merge)


def cmd_export(args) -> tuple[dict, str]:
    from studio.export.export import export_run
    from studio.runs.store import open_run

    ws = open_ws(args)
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
