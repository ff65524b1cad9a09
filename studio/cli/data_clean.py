"""`python -m studio data clean VERSION [--pipeline FILE|PRESET]` and `data pipelines`.

`clean` runs a cleaning pipeline (the same YAML the Data tab saves; default: the Japanese
preset) over a dataset version and writes the kept rows as a new version, reported under
`version`. `pipelines` lists the bundled presets and, with `--filters`, every filter with
its parameters.
"""

from __future__ import annotations

from studio.cli.common import CliError, open_ws


def register(actions, common) -> None:
    clean = actions.add_parser(
        "clean",
        parents=[common],
        help="run a cleaning pipeline over a version; writes a new version",
        description="Run the cleaning filters over a dataset version. Each document is removed "
        "by the first step that rejects it; rewriting steps (nfkc, pii_mask) change the text. "
        "The kept rows become a new version whose manifest holds the pipeline and the counts.",
    )
    clean.add_argument("version", help="dataset NAME (latest version) or NAME/vNNNN")
    clean.add_argument(
        "--pipeline",
        default="ja",
        help="a pipeline YAML file, or a preset: ja (default), en, mixed",
    )
    clean.add_argument(
        "--num-proc",
        type=int,
        default=0,
        help="worker processes (default: 1 below 20,000 rows, else every core up to 8)",
    )
    clean.add_argument(
        "--samples", type=int, default=5, help="removed documents shown per step (default 5)"
    )
    clean.add_argument(
        "--dry-run", action="store_true", help="report what would be removed; write nothing"
    )
    clean.add_argument(
        "--allow-most-removed",
        action="store_true",
        help="save even when the pipeline removes more than half of the rows",
    )
    clean.set_defaults(func=cmd_clean)

    pipelines = actions.add_parser(
        "pipelines", parents=[common], help="list the cleaning presets (and filters)"
    )
    pipelines.add_argument(
        "--filters", action="store_true", help="also list every filter and its parameters"
    )
    pipelines.add_argument("--show", metavar="PRESET", help="print one preset's YAML")
    pipelines.set_defaults(func=cmd_pipelines)


def _fail(exc: Exception):
    return CliError(str(exc))


def cmd_clean(args) -> tuple[dict, str]:
    from studio.data.clean import report_text, resolve_pipeline, run_pipeline

    ws = open_ws(args)
    if args.num_proc < 0:
        raise _fail(ValueError("--num-proc must be 0 (automatic) or more"))
    pipeline = resolve_pipeline(args.pipeline)
    result = run_pipeline(
        ws,
        args.version,
        pipeline,
        num_proc=args.num_proc or None,
        samples=max(0, args.samples),
        dry_run=args.dry_run,
        allow_most_removed=args.allow_most_removed,
    )
    report = result.report
    payload = {
        "source": report["source"],
        "pipeline": pipeline.name or str(args.pipeline),
        "rows_in": report["rows_in"],
        "rows_out": report["rows_out"],
        "removed": report["removed"],
        "bytes_removed": report["bytes_removed"],
        "seconds": report["seconds"],
        "num_proc": report["num_proc"],
        "steps": report["steps"],
        "histogram": report["histogram"],
    }
    if result.version is not None:
        payload["version"] = result.version.spec
        payload["manifest"] = result.version.to_dict()
    else:
        payload["dry_run"] = True
    return payload, report_text(report)


def cmd_pipelines(args) -> tuple[dict, str]:
    from studio.data.clean import list_presets, preset
    from studio.data.filters import FILTERS

    if args.show:
        p = preset(args.show)
        return {"preset": args.show, "pipeline": p.to_dict()}, p.to_yaml().rstrip()
    presets = list_presets()
    lines = ["presets (python -m studio data clean VERSION --pipeline NAME):"]
    for p in presets:
        if "error" in p:
            lines.append(f"  {p['name']:<8} ERROR {p['error']}")
        else:
            lines.append(
                f"  {p['name']:<8} {p['enabled']}/{p['steps']} steps on  {p['description']}"
            )
    payload: dict = {"presets": presets}
    if args.filters:
        filters = []
        lines.append("filters:")
        for spec in FILTERS.values():
            params = [
                {
                    "name": q.name,
                    "type": q.kind,
                    "default": q.default,
                    "min": q.min,
                    "max": q.max,
                    "choices": list(q.choices),
                    "help": q.help,
                }
                for q in spec.params
            ]
            filters.append(
                {
                    "name": spec.name,
                    "rewrites": spec.rewrites,
                    "origin": spec.origin,
                    "hojichar": spec.hojichar,
                    "help": spec.help,
                    "params": params,
                }
            )
            kind = "rewrites" if spec.rewrites else "drops"
            lines.append(f"  {spec.name:<32} {kind:<8} {spec.help}")
            for q in spec.params:
                lines.append(f"      {q.name} ({q.kind}, default {q.default!r}): {q.help}")
        payload["filters"] = filters
    return payload, "\n".join(lines)
