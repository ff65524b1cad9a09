"""`tokens`: the token stores, listed, removed and capped."""

from __future__ import annotations

import argparse

from studio.cli.common import CliError, open_ws


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
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


def cmd_tokens(args) -> tuple[dict, str]:
    from studio.tokens import cache

    ws = open_ws(args)
    removed = []
    if args.action == "remove":
        if not args.keys and not args.all:
            raise CliError("name the stores to remove (python -m studio tokens list), or --all")
        keys = [s.key for s in cache.list_stores(ws) if not s.in_use] if args.all else args.keys
        for key in keys:
            removed.append(cache.remove_store(ws, key).key)
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
