"""`python -m studio data dedup|cluster|balance ...`: duplicates out, clusters rebalanced.

- `dedup VERSION` removes exact duplicates (normalised text) and near duplicates (MinHash LSH
  with rensa, confirmed by exact Jaccard), keeping the first of each cluster; writes a new
  version (reported under `version`) and saves the clusters beside it.
- `cluster VERSION --k K` groups the documents (hashed character n-gram TF-IDF + mini-batch
  k-means, seeded), prints each cluster's size, top terms and sample ids, and saves the
  assignment for `balance`.
- `balance VERSION --cap C=N --weight C=X` down-samples and/or repeats clusters into a new
  version, with the counts per cluster before and after.
"""

from __future__ import annotations

from studio.cli.common import CliError, open_ws


def register(actions, common) -> None:
    from studio.data.cluster import DEFAULT_K, DEFAULT_SEED
    from studio.data.dedup import DEFAULT_NUM_PERM, DEFAULT_SHINGLE, DEFAULT_THRESHOLD

    dedup = actions.add_parser(
        "dedup",
        parents=[common],
        help="remove exact and near-duplicate documents; writes a new version",
        description="Exact duplicates (same text after NFKC and whitespace normalisation) and "
        "near duplicates (character-shingle MinHash LSH, every candidate confirmed by the exact "
        "Jaccard similarity) are joined into clusters; the first document of each cluster in "
        "file order is kept. The clusters are saved under "
        "<workspace>/analysis/<name>/<new version>/dedup-clusters.json.",
    )
    dedup.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    dedup.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"Jaccard similarity that makes two documents near duplicates "
        f"(default {DEFAULT_THRESHOLD})",
    )
    dedup.add_argument(
        "--shingle",
        type=int,
        default=DEFAULT_SHINGLE,
        help=f"characters per shingle (default {DEFAULT_SHINGLE})",
    )
    dedup.add_argument(
        "--num-perm",
        type=int,
        default=DEFAULT_NUM_PERM,
        help=f"MinHash signature size, a multiple of 8 (default {DEFAULT_NUM_PERM})",
    )
    dedup.add_argument("--exact-only", action="store_true", help="skip near duplicates")
    dedup.add_argument(
        "--num-proc",
        type=int,
        default=0,
        help="worker processes (default: 1 below 20,000 rows, else up to 2)",
    )
    dedup.add_argument(
        "--show", type=int, default=10, help="clusters printed (and in --json; default 10)"
    )
    dedup.set_defaults(func=cmd_dedup)

    cluster = actions.add_parser(
        "cluster",
        parents=[common],
        help="cluster documents; print size, top terms and samples; save the assignment",
        description="Hashed character 2-3-gram TF-IDF and mini-batch k-means with a fixed seed. "
        "The assignment (a cluster per row) is saved under "
        "<workspace>/analysis/<name>/<version>/clusters-k<K>.json for `data balance`.",
    )
    cluster.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    cluster.add_argument("--k", type=int, default=DEFAULT_K, help=f"clusters (default {DEFAULT_K})")
    cluster.add_argument("--seed", type=int, default=DEFAULT_SEED)
    cluster.set_defaults(func=cmd_cluster)

    balance = actions.add_parser(
        "balance",
        parents=[common],
        help="cap or weight clusters (from `data cluster`); writes a new version",
        description="--cap C=N keeps at most N documents of cluster C (seeded sample); "
        "--weight C=X repeats its documents X times (2 = twice, 0.5 = a seeded half, "
        "1.5 = all once plus a seeded half again). Uses the version's saved assignment "
        "(the one for --k, or the latest).",
    )
    balance.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    balance.add_argument(
        "--cap", action="append", default=[], metavar="CLUSTER=N", help="repeatable"
    )
    balance.add_argument(
        "--weight", action="append", default=[], metavar="CLUSTER=X", help="repeatable"
    )
    balance.add_argument("--seed", type=int, default=DEFAULT_SEED)
    balance.add_argument("--k", type=int, help="which saved clustering (default: the latest)")
    balance.set_defaults(func=cmd_balance)


def _fail(exc: Exception):
    return CliError(str(exc))


def cmd_dedup(args) -> tuple[dict, str]:
    from studio.data.dedup import DedupSettings, dedup_version

    ws = open_ws(args)
    if args.num_proc < 0:
        raise _fail(ValueError("--num-proc must be 0 (automatic) or more"))
    settings = DedupSettings(
        threshold=args.threshold,
        shingle=args.shingle,
        num_perm=args.num_perm,
        exact_only=args.exact_only,
    )
    result = dedup_version(ws, args.version, settings, num_proc=args.num_proc or None)
    payload = result.to_dict(max_clusters=max(0, args.show))
    counts = payload["counts"]
    lines = [
        f"{result.parent} -> {payload['version']}: {counts['in']:,} -> {counts['out']:,} rows "
        f"in {payload['seconds']} s",
        f"  exact duplicates removed: {counts['removed']['exact_duplicate']:,}",
        f"  near duplicates removed:  {counts['removed']['near_duplicate']:,} "
        f"(threshold {settings.threshold}, {counts['confirmed_pairs']:,} of "
        f"{counts['candidate_pairs']:,} LSH candidate pairs confirmed)",
        f"  clusters: {counts['clusters']:,} (saved to {payload['clusters_file']})",
    ]
    for c in payload["clusters"]:
        kept = c["kept"]
        lines.append(f"  keep {kept['id']} (row {kept['index'] + 1}), remove:")
        lines += [
            f"    {m['id']} (row {m['index'] + 1}) {m['kind']}, Jaccard {m['jaccard']:.3f}"
            for m in c["members"][:5]
        ]
        if len(c["members"]) > 5:
            lines.append(f"    ... and {len(c['members']) - 5} more")
    return payload, "\n".join(lines)


def cmd_cluster(args) -> tuple[dict, str]:
    from studio.data.cluster import cluster_version

    ws = open_ws(args)
    result = cluster_version(ws, args.version, k=args.k, seed=args.seed)
    payload = result.summary()
    payload["source"] = payload.pop("dataset")
    lines = [
        f"{result.version}: {result.rows:,} rows in {result.k} clusters "
        f"({payload['seconds']} s); assignment saved to {result.path}",
        f"{'cluster':>7} {'size':>7} {'share':>6}  top terms / samples",
    ]
    for c in result.clusters:
        lines.append(
            f"{c.cluster:>7} {c.size:>7,} {c.share:>6.1%}  {', '.join(c.top_terms) or '-'}"
        )
        lines.append(f"{'':>24}samples: {', '.join(s['id'] for s in c.samples)}")
    return payload, "\n".join(lines)


def cmd_balance(args) -> tuple[dict, str]:
    from studio.data.cluster import balance_version, parse_rules

    ws = open_ws(args)
    caps = parse_rules(args.cap, "cap")
    weights = parse_rules(args.weight, "weight")
    result = balance_version(ws, args.version, caps=caps, weights=weights, seed=args.seed, k=args.k)
    payload = result.to_dict()
    counts = result.counts
    lines = [
        f"{result.parent} -> {result.version.spec}: {counts['in']:,} -> {counts['out']:,} rows",
        f"{'cluster':>7} {'before':>8} {'after':>8}",
    ]
    for c, n in counts["clusters"].items():
        mark = "" if n["before"] == n["after"] else "  *"
        lines.append(f"{c:>7} {n['before']:>8,} {n['after']:>8,}{mark}")
    return payload, "\n".join(lines)
