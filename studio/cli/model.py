"""`model info` and `generate`: look at a base model, generate with one or several."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import CliError, model_args, open_ws, pull_printer


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    from studio.generate import GenerationSettings  # light: torch is imported lazily there

    model = verbs.add_parser("model", parents=[common], help="inspect a base model")
    m_verbs = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = m_verbs.add_parser(
        "info", parents=[common], help="size, context, special tokens, chat template, checks"
    )
    model_args(info)
    info.set_defaults(func=cmd_model_info)
    pull = m_verbs.add_parser(
        "pull",
        parents=[common],
        help="download a model from the Hugging Face Hub into its cache, with progress",
        description="Lists the repository's files and size, then downloads them into "
        "huggingface_hub's cache (shared with other tools): safetensors weights and the small "
        "files, not pickle weights unless --allow-pickle. Ctrl-C stops it; pulling again "
        "continues where it stopped. A gated model needs its license accepted on the website "
        "and a token (HF_TOKEN, or `hf auth login`).",
    )
    pull.add_argument("repo", help="OWNER/NAME, e.g. Qwen/Qwen2.5-0.5B-Instruct")
    pull.add_argument("--revision", help="a branch, tag or commit (default: main)")
    pull.add_argument("--allow-pickle", action="store_true", help="also fetch *.bin pickles")
    pull.add_argument("--list", action="store_true", help="only list the files and the size")
    pull.set_defaults(func=cmd_model_pull)

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


def _load(args):
    from studio.models.load import load_model, resolve_source

    ws = open_ws(args)
    source = resolve_source(args.model, named_dirs=ws.model_dirs(gguf=True))
    return load_model(
        source,
        device=None if args.device == "auto" else args.device,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
    )


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
    from studio.compare import compare, read_prompts
    from studio.fsutil import atomic_write_text
    from studio.generate import GenerationSettings
    from studio.models.load import resolve_source
    from studio.models.pool import ModelPool, pool_opener
    from studio.paths import EMBEDDED_MODEL_NAME

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
    settings.validate()
    ws = open_ws(args)
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

    result = compare(
        open_model,
        columns,
        prompts,
        settings,
        chat=args.chat,
        system=args.system,
        keep_going=False,
    )
    for path, text in ((args.csv, result.to_csv()), (args.markdown, result.to_markdown())):
        if path is not None:
            atomic_write_text(path, text)
    payload = result.to_dict()
    if len(columns) == 1:  # one model: its replies as a plain list
        payload["model"] = resolve_source(columns[0], named_dirs=ws.model_dirs(gguf=True)).name
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


def cmd_model_pull(args) -> tuple[dict, str]:
    import sys

    from studio.models import hub

    found = hub.listing(args.repo, args.revision, allow_pickle=args.allow_pickle)
    lines = [f"{found.repo} @ {found.revision[:12]}: {found.total_bytes / 2**20:,.1f} MiB to fetch"]
    for f in found.files:
        why = "" if f.fetch else "  (skipped: pickle; --allow-pickle to fetch)"
        lines.append(f"  {f.name:<48} {f.size / 2**20:>10,.1f} MiB{why}")
    payload = found.to_dict()
    if args.list:
        return payload, "\n".join(lines)
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        folder = hub.pull(found, progress=pull_printer())
    except KeyboardInterrupt:  # Ctrl-C reached the download too: what arrived stays
        raise hub.PullStopped(found.repo) from None
    payload["path"] = str(folder)
    return payload, f"pulled {found.repo} into {folder}; use it as --model {found.repo}"
