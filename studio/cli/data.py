"""The `data` verb: `python -m studio data ACTION ...`, the Data tab's steps from the shell.

Every action that writes a dataset version reports it under the key `version` (with
`--json`), and every action that reads one accepts that `name/vNNNN` (or a bare name: the
latest version), so steps chain in a script.
"""

from __future__ import annotations

from pathlib import Path

from studio.cli import data_clean, data_dedup, data_preference, data_quality, data_synth
from studio.cli.common import CliError, open_ws, pull_printer

# Actions written beside their own modules (cleaning, deduplication and clustering, the
# quality classifier, synthesis, preference pairs): each has `register(actions, common)`.
PARTS = (data_clean, data_dedup, data_quality, data_synth, data_preference)


def add_parser(verbs, common) -> None:
    data = verbs.add_parser(
        "data",
        parents=[common],
        help="datasets: import, clean, deduplicate, classify, balance, split, export",
        description="Work on the workspace's datasets. Every operation writes a new version "
        "(Parquet + manifest); nothing is changed in place.",
    )
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)

    imp = actions.add_parser(
        "import",
        parents=[common],
        help="import a file (.jsonl .json .csv .tsv .parquet .txt) as a dataset version",
    )
    imp.add_argument(
        "file", help="a data file, or hf:OWNER/NAME for a dataset of the Hugging Face Hub"
    )
    imp.add_argument("--config", help="hf: the dataset's configuration (a folder of its files)")
    imp.add_argument("--split", help="hf: the split (default: train when there is one)")
    imp.add_argument("--revision", help="hf: a branch, tag or commit (default: main)")
    imp.add_argument("--name", help="dataset name (default: the file's name)")
    imp.add_argument(
        "--layout",
        choices=["text", "prompt_completion", "alpaca", "messages", "sharegpt"],
        help="row layout (default: detected from the columns)",
    )
    imp.add_argument(
        "--map",
        dest="mapping",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="which column holds a field, e.g. text=body or prompt=question; repeatable",
    )
    imp.add_argument("--skip-bad", action="store_true", help="skip malformed rows (listed)")
    imp.add_argument(
        "--txt-mode",
        choices=["lines", "paragraphs"],
        help=".txt: one document per line, or documents separated by blank lines",
    )
    imp.add_argument("--encoding", help="text encoding (default: detected)")
    imp.set_defaults(func=cmd_import)

    from studio.cli.workspace import cmd_datasets_list

    ls = actions.add_parser("list", parents=[common], help="same as `datasets list`")
    ls.set_defaults(func=cmd_datasets_list)
    show = actions.add_parser("show", parents=[common], help="a version: manifest, lineage, rows")
    show.add_argument("version")
    show.add_argument("--rows", type=int, default=3, help="how many rows to print")
    show.set_defaults(func=cmd_show)
    split = actions.add_parser(
        "split", parents=[common], help="split into NAME-train and NAME-validation"
    )
    split.add_argument("version")
    split.add_argument("--validation", type=float, default=0.05, help="validation share")
    split.add_argument("--seed", type=int, default=42)
    split.set_defaults(func=cmd_split)
    export = actions.add_parser("export", parents=[common], help="write a version to a file")
    export.add_argument("version")
    export.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    export.add_argument("--out", type=Path, required=True, help="file or folder")
    export.set_defaults(func=cmd_export)
    delete = actions.add_parser("delete", parents=[common], help="delete one version")
    delete.add_argument("version")
    delete.add_argument("--yes", action="store_true", help="really delete (required)")
    delete.set_defaults(func=cmd_delete)

    for part in PARTS:
        part.register(actions, common)


def _ws(args):
    return open_ws(args)


def _fail(exc: Exception):
    return CliError(str(exc))


def _version_line(v) -> str:
    parent = f" <- {v.parent}" if v.parent else ""
    return f"{v.spec}  {v.format}  {v.rows:,} rows  {v.operation}{parent}"


def parse_mapping(items: list[str]) -> dict:
    mapping = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise CliError(f"--map wants FIELD=COLUMN, got {item!r}")
        mapping[key.strip()] = column.strip()
    return mapping


def cmd_import(args) -> tuple[dict, str]:
    from studio.data import hub
    from studio.data.ingest import import_path

    ws = _ws(args)
    mapping = parse_mapping(args.mapping) or None
    if hub.is_hub(args.file):
        version, report = hub.import_hub(
            ws,
            args.file,
            config=args.config,
            split=args.split,
            revision=args.revision,
            name=args.name,
            layout=args.layout,
            mapping=mapping,
            skip_bad=args.skip_bad,
            progress=pull_printer(),
        )
        source = f"{args.file} ({len(report['origin']['files'])} files)"
    else:
        version, report = import_path(
            ws,
            Path(args.file),
            name=args.name,
            layout=args.layout,
            mapping=mapping,
            skip_bad=args.skip_bad,
            txt_mode=args.txt_mode,
            encoding=args.encoding,
        )
        source = report["file"]
    lines = [
        f"imported {report['rows']:,} rows from {source} as {version.spec}",
        f"  encoding {report['encoding'] or '-'}, layout {report['layout']} -> {version.format}",
    ]
    if report["skipped"]:
        lines.append(f"  skipped {report['skipped']} malformed rows:")
        lines += [f"    line {i['line']}: {i['message']}" for i in report["skipped_rows"][:10]]
    return {"version": version.spec, "report": report, "manifest": version.to_dict()}, "\n".join(
        lines
    )


def cmd_show(args) -> tuple[dict, str]:
    import json

    from studio.data.store import lineage, open_version

    ws = _ws(args)
    chain = lineage(ws, args.version)
    rows = open_version(ws, chain[0]).select(range(min(args.rows, chain[0].rows))).to_list()
    version = chain[0]
    text = "\n".join(
        [_version_line(v) for v in chain]
        + [f"counts: {json.dumps(version.counts, ensure_ascii=False)}"]
        + [json.dumps(r, ensure_ascii=False)[:300] for r in rows]
    )
    return {
        "version": version.spec,
        "manifest": version.to_dict(),
        "lineage": [v.spec for v in chain],
        "rows": rows,
    }, text


def cmd_split(args) -> tuple[dict, str]:
    from studio.data.store import split_version

    train, validation = split_version(
        _ws(args), args.version, validation=args.validation, seed=args.seed
    )
    return {
        "version": train.spec,
        "train": train.spec,
        "validation": validation.spec,
    }, f"{train.spec}: {train.rows:,} rows\n{validation.spec}: {validation.rows:,} rows"


def cmd_export(args) -> tuple[dict, str]:
    from studio.data.store import export_version

    path = export_version(_ws(args), args.version, args.format, args.out)
    return {"path": str(path)}, f"wrote {path}"


def cmd_delete(args) -> tuple[dict, str]:
    from studio.data.store import delete_version

    if not args.yes:
        raise _fail(ValueError(f"add --yes to really delete {args.version}"))
    version = delete_version(_ws(args), args.version)
    return {"deleted": version.spec}, f"deleted {version.spec}"
