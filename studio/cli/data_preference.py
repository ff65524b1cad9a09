"""`python -m studio data preference FILE --name NAME ...`: preference pairs (a prompt, a
chosen and a rejected reply) from a saved Compare grid, for DPO and its kin.

- `--prefer A --over B` chooses model A's reply over model B's on every prompt (a
  fine-tune over its base, say);
- `--marks MARKS.jsonl` takes a person's marks, one JSON object per row:
  `{"prompt_index": 0, "chosen": "A", "rejected": "B"}`, `{"prompt_index": 1, "tie": true}`
  or `{"prompt_index": 2, "skip": true}`.

FILE is what the Compare tab saves or `python -m studio generate --model A --model B`
writes: its `--json` output or its `--csv` grid. A CSV does not say whether the prompts were
asked in the chat template: `--chat` (and `--system`) say it. Ties, skipped rows, failed
replies and identical replies are not written; the counts say how many there were.
"""

from __future__ import annotations

from pathlib import Path

from studio.cli.common import CliError, open_ws


def register(actions, common) -> None:
    pref = actions.add_parser(
        "preference",
        parents=[common],
        help="preference pairs (chosen/rejected) from a saved Compare grid",
        description="Write preference pairs from a comparison saved by the Compare tab or "
        "`generate` (its JSON or its CSV grid) as a new version of form `preference`: with "
        "--prefer A --over B, A's reply is chosen over B's on every prompt; with --marks, a "
        "person's marks (JSON Lines: prompt_index with chosen/rejected, tie or skip). Ties, "
        "skipped rows, failed and identical replies are not written.",
    )
    pref.add_argument("file", type=Path, help="a saved comparison: .json or .csv")
    pref.add_argument("--name", required=True, help="the dataset to write a version of")
    pref.add_argument("--prefer", metavar="MODEL_A", help="the model whose replies are chosen")
    pref.add_argument("--over", metavar="MODEL_B", help="the model whose replies are rejected")
    pref.add_argument("--marks", type=Path, help="JSON Lines of marks, one per row")
    pref.add_argument(
        "--chat",
        action="store_true",
        help="a CSV's prompts were asked in the chat template (a JSON file says it itself)",
    )
    pref.add_argument("--system", help="with --chat on a CSV: the system prompt it was asked with")
    pref.set_defaults(func=cmd_preference)


def cmd_preference(args) -> tuple[dict, str]:
    from studio.compare import read_comparison, read_marks
    from studio.data.preference import pairs_from_marks, prefer_model, save_pairs

    if args.marks is not None and (args.prefer or args.over):
        raise CliError("give either --prefer MODEL_A --over MODEL_B or --marks FILE, not both")
    if args.marks is None and not (args.prefer and args.over):
        raise CliError("say which replies are better: --prefer MODEL_A --over MODEL_B, or --marks")
    if args.system and not args.chat:
        raise CliError("--system is the system prompt of a chat grid: add --chat")
    comparison = read_comparison(args.file, chat=args.chat, system=args.system)
    if args.marks is not None:
        marks = read_marks(args.marks)
        how = {"marks": str(args.marks)}
    else:
        marks = prefer_model(comparison, args.prefer, args.over)
        how = {"prefer": args.prefer, "over": args.over}
    rows, counts = pairs_from_marks(comparison, marks)
    ws = open_ws(args)
    version = save_pairs(
        ws,
        args.name,
        rows,
        source=str(args.file),
        settings={
            **how,
            "models": comparison["models"],
            "chat": bool(comparison.get("chat")),
            "system": comparison.get("system"),
            "generation": comparison.get("settings") or {},
        },
        counts=counts,
    )
    text = (
        f"wrote {counts['pairs']:,} pairs from {args.file} as {version.spec} "
        f"(marked {counts['marked']:,}: ties {counts['ties']:,}, skipped {counts['skipped']:,}, "
        f"unusable {counts['unusable']:,})"
    )
    return {"version": version.spec, "counts": counts, "manifest": version.to_dict()}, text
