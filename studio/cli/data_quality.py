"""`python -m studio data label|classifier-train|classify|classifiers`: the quality classifier.

python -m studio data label sample-corpus --good doc-00001 doc-00002 --noise doc-00004
python -m studio data label sample-corpus --from labels.jsonl   # {"id"|"index", "label"}
python -m studio data classifier-train sample-corpus --name noise-v1 --json
python -m studio data classify sample-corpus --model noise-v1 --threshold 0.5 --json
python -m studio data classifiers
"""

from __future__ import annotations

from pathlib import Path

from studio.cli.common import CliError, open_ws
from studio.data import quality as q


def register(actions, common) -> None:
    p = actions.add_parser(
        "label",
        parents=[common],
        help="label documents good/noise for the quality classifier",
        description="Label documents of a dataset version as good or noise. Labels are kept "
        "in the workspace (quality/labels/<dataset>.jsonl), keyed by the row's id (or a hash "
        "of its text), so they carry over to later versions of the dataset. A document is "
        "named by its 'id' value or by its 0-based row number (#12 forces a row number).",
    )
    p.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    p.add_argument("--good", nargs="+", action="extend", default=[], metavar="ID")
    p.add_argument("--noise", nargs="+", action="extend", default=[], metavar="ID")
    p.add_argument(
        "--remove", nargs="+", action="extend", default=[], metavar="ID", help="forget labels"
    )
    p.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="FILE",
        help='JSON Lines of {"id": ..., "label": "good"|"noise"|null} (or "index" for a row '
        "number); null removes the label",
    )
    p.set_defaults(func=cmd_label)

    defaults = q.TrainSettings()
    p = actions.add_parser(
        "classifier-train",
        parents=[common],
        help="train a fastText good/noise classifier on the labels",
        description="Train a fastText classifier on the labels of the version's dataset. A "
        "stratified, seeded share is held out and measured (precision, recall, F1 of each "
        "class); the saved model is then trained on every label. Japanese text is split "
        "into characters (chars) or runs of one script (words) first.",
    )
    p.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    p.add_argument("--name", help="model name (default: <dataset>-<date>-<time>)")
    p.add_argument("--tokenize", choices=q.TOKENIZE_MODES, default=defaults.tokenize)
    p.add_argument("--holdout", type=float, default=defaults.holdout, help="held-out share")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--epoch", type=int, default=defaults.epoch)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--word-ngrams", type=int, default=defaults.word_ngrams)
    p.add_argument("--dim", type=int, default=defaults.dim)
    p.add_argument(
        "--no-balance", dest="balance", action="store_false", help="do not weigh classes equally"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    p.set_defaults(func=cmd_train)

    p = actions.add_parser(
        "classify",
        parents=[common],
        help="keep the documents a classifier scores good (a new version)",
        description="Score every document of a version with a saved classifier and write a "
        "new version with those scored good at or above the threshold.",
    )
    p.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    p.add_argument("--model", required=True, help="a saved classifier (see `classifiers`)")
    p.add_argument("--threshold", type=float, default=0.5, help="keep P(good) >= this")
    p.add_argument("--dry-run", action="store_true", help="only count; write no version")
    p.set_defaults(func=cmd_classify)

    actions.add_parser(
        "classifiers", parents=[common], help="list the saved quality classifiers"
    ).set_defaults(func=cmd_classifiers)


def cmd_label(args) -> tuple[dict, str]:

    ws = open_ws(args)
    wanted: dict[str, str | None] = {}
    sources = [(ref, "good") for ref in args.good] + [(ref, "noise") for ref in args.noise]
    sources += [(ref, None) for ref in args.remove]
    if args.from_file:
        sources += q.read_label_file(args.from_file)
    if not sources:
        raise CliError("nothing to label: give --good, --noise, --remove or --from")
    for ref, label in sources:
        if ref in wanted and wanted[ref] != label:
            raise CliError(f"{ref!r} is given two labels ({wanted[ref]} and {label})")
        wanted[ref] = label
    rows = q.find_rows(ws, args.version, list(wanted))
    changes: dict[int, str | None] = {}
    for ref, label in wanted.items():
        index = rows[ref]
        if index in changes and changes[index] != label:
            raise CliError(f"row {index} is given two labels ({changes[index]} and {label})")
        changes[index] = label
    report = q.set_labels(ws, args.version, changes)
    counts = report["counts"]
    text = (
        f"{report['dataset']}: {report['changed']} labelled, {report['removed']} removed; "
        f"now {counts['good']} good and {counts['noise']} noise ({report['path']})"
    )
    return report, text


def _figures_text(meta: dict) -> str:
    held = meta["heldout"]
    lines = [
        f"classifier {meta['name']} trained on {meta['trained_on']} labels of "
        f"{meta['dataset']} ({meta['labels']['good']} good, {meta['labels']['noise']} noise) "
        f"in {meta['seconds']} s",
        f"held out {held['n']} labels (trained on {held['train']}): accuracy {held['accuracy']}",
        f"{'class':<8}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}",
    ]
    for cls in q.LABELS:
        m = held[cls]
        lines.append(
            f"{cls:<8}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}"
        )
    return "\n".join(lines)


def cmd_train(args) -> tuple[dict, str]:

    ws = open_ws(args)
    settings = q.TrainSettings(
        tokenize=args.tokenize,
        holdout=args.holdout,
        seed=args.seed,
        epoch=args.epoch,
        lr=args.lr,
        word_ngrams=args.word_ngrams,
        dim=args.dim,
        balance=args.balance,
    )
    meta = q.train_classifier(
        ws, args.version, name=args.name, settings=settings, overwrite=args.overwrite
    )
    return {"model": meta["name"], **meta}, _figures_text(meta)


def cmd_classify(args) -> tuple[dict, str]:

    ws = open_ws(args)
    if args.dry_run:
        version = q.resolve(ws, args.version)
        scores = q.score_version(ws, version, args.model)
        summary = q.threshold_summary(scores, args.threshold)
        payload = {"input": version.spec, "model": args.model, **summary}
        text = (
            f"{version.spec} with {args.model} at {args.threshold}: keeps "
            f"{summary['kept']}, drops {summary['dropped']} of {summary['total']} (dry run)"
        )
        return payload, text
    done = q.apply_classifier(ws, args.version, args.model, args.threshold)
    counts = done.counts
    payload = {
        "version": done.spec,
        "parent": done.parent,
        "model": args.model,
        "threshold": args.threshold,
        "kept": counts["out"],
        "dropped": counts["in"] - counts["out"],
        "counts": counts,
        "seconds": done.seconds,
    }
    text = (
        f"{done.spec}: kept {counts['out']} of {counts['in']} documents of {done.parent} "
        f"(P(good) >= {args.threshold} by {args.model}) in {done.seconds} s"
    )
    return payload, text


def cmd_classifiers(args) -> tuple[dict, str]:

    ws = open_ws(args)
    models = q.list_classifiers(ws)
    rows = []
    for m in models:
        held = m.get("heldout") or {}
        noise = held.get("noise") or {}
        labels = m.get("labels") or {}
        rows.append(
            f"{m['name']:<32} {m.get('dataset', '?'):<20} "
            f"{labels.get('good', '?')}/{labels.get('noise', '?')} labels  "
            f"noise P {noise.get('precision', '?')} R {noise.get('recall', '?')}  "
            f"{(m.get('settings') or {}).get('tokenize', '?')}  {m.get('created', '')}"
        )
    return {"classifiers": models}, "\n".join(rows) or "no classifiers yet"
