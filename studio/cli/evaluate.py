"""`python -m studio eval SUITE [SUITE...] --models M [M...] [--sweep RUN] [--limit N]`:
the Evaluate tab, scripted.

A SUITE is a suite in the workspace (`name` for its latest version, `name/vNNNN`), a suite
file (checked, then added to the workspace as a new suite version), `lm-eval:<task>` for an
lm-evaluation-harness task, or `demo` for the bundled suites. A model is anything the model
pickers accept: the embedded model, a workspace model, `run:<id>`, `run:<id>@<step>`, a
folder or a hub id. `--sweep RUN` adds the run's base, every checkpoint and its final model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import CliError, open_ws


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    ev = verbs.add_parser(
        "eval",
        parents=[common],
        help="score models and checkpoints on evaluation suites, with standard errors",
        description=__doc__.split("\n\n", 1)[1],
    )
    ev.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help="suite name[/vNNNN], a suite file, lm-eval:<task>, or demo",
    )
    ev.add_argument("--models", nargs="+", default=[], metavar="M", help="models to score")
    ev.add_argument("--sweep", metavar="RUN", help="also every checkpoint of this run")
    ev.add_argument("--limit", type=int, help="score only the first N items of each suite")
    ev.add_argument("--shots", type=int, help="short-answer QA: use the first K fixed shots")
    ev.add_argument("--max-new-tokens", type=int, default=32, help="short-answer QA answers")
    ev.add_argument("--csv", type=Path, help="write the scores here (and items to *.items.csv)")
    ev.add_argument("--list", action="store_true", help="list suites and stored results")
    ev.add_argument("--trust-remote-code", action="store_true", help="run code shipped with it")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    ev.set_defaults(func=cmd_eval)


def cmd_eval(args) -> tuple[dict, str]:

    ws = open_ws(args)
    if args.list:
        return _list(ws)
    return _evaluate(args, ws)


def _list(ws) -> tuple[dict, str]:
    from studio.evaluate import harness, results
    from studio.evaluate.suites import suite_choices

    suites = suite_choices(ws) + harness.task_choices(ws)
    sessions = results.list_sessions(ws)
    lines = ["suites:"] + [f"  {s}" for s in suites]
    lines += ["results:"] + [
        f"  {s['id']}  {', '.join(s['suites'] or [])}  x  {', '.join(s['models'])}"
        for s in sessions
    ]
    return {"suites": suites, "sessions": sessions}, "\n".join(lines)


def _suite_specs(args, ws) -> list[str]:
    from studio.evaluate.runner import DEMO_SUITES
    from studio.evaluate.suites import import_suite

    specs = []
    for spec in args.suites:
        path = Path(spec).expanduser()
        if spec == "demo":
            specs += list(DEMO_SUITES)
        elif path.suffix in {".jsonl", ".json"} and path.is_file():
            version = import_suite(ws, path, operation="import", source=str(path))
            specs.append(f"{version.name}/{version.version}")
        else:
            specs.append(spec)
    return specs


def _evaluate(args, ws) -> tuple[dict, str]:
    from studio.evaluate import results
    from studio.evaluate.runner import demo_plan, evaluate, sweep_models
    from studio.models.pool import ModelPool, pool_opener

    if not args.suites:
        raise CliError("name at least one suite (python -m studio eval --list), or `demo`")
    specs = _suite_specs(args, ws)
    models = list(args.models)
    if args.suites == ["demo"] and not models and not args.sweep:
        models = demo_plan(ws)[1]
    if args.sweep:
        models += sweep_models(ws, args.sweep)
    if not models:
        raise CliError("name the models to score with --models (or a run with --sweep)")
    pool = ModelPool(device=None if args.device == "auto" else args.device)
    opener = pool_opener(ws, pool, trust_remote_code=args.trust_remote_code)
    options = {"max_new_tokens": args.max_new_tokens}
    if args.shots is not None:
        options["k"] = args.shots
    session = evaluate(ws, specs, models, opener, limit=args.limit, options=options)
    payload = {
        "session": session["id"],
        "file": str(results.results_dir(ws) / f"{session['id']}.json"),
        "scores": results.score_rows(session["results"], session=session["id"]),
        "comparisons": results.comparisons(session["results"]),
        "errors": session["errors"],
    }
    if args.csv:
        from studio.fsutil import atomic_write_text

        atomic_write_text(args.csv, results.scores_csv(session["results"], session["id"]))
        items = args.csv.with_suffix(".items.csv")
        atomic_write_text(items, results.items_csv(session["results"]))
        payload["csv"], payload["items_csv"] = str(args.csv), str(items)
    return payload, _text(session, payload)


def _text(session: dict, payload: dict) -> str:
    from studio.evaluate.results import format_score

    lines = []
    for r in session["results"]:
        shown = ", ".join(
            f"{name} {format_score(s['value'], s['stderr'])}" for name, s in r["metrics"].items()
        )
        lines.append(f"{r['suite_label']:<24} {r['model_label']:<28} n={_n(r)}  {shown}")
    for c in payload["comparisons"]:
        if c["difference"] is None:
            continue
        verdict = "within noise" if c["within_noise"] else "beyond noise"
        se = f" ± {c['stderr']:.3f}" if c["stderr"] is not None else ""
        lines.append(
            f"{c['suite']}: {c['model']} - {c['baseline']} = {c['difference']:+.3f}{se} "
            f"({c['metric']}, paired over {c['n']} items): {verdict}"
        )
    lines += [f"error: {e['model']}: {e['message']}" for e in payload["errors"]]
    lines.append(f"saved {payload['file']}")
    lines += [f"wrote {payload[k]}" for k in ("csv", "items_csv") if k in payload]
    return "\n".join(lines)


def _n(result: dict) -> int:
    return max((s.get("n") or 0 for s in result["metrics"].values()), default=0)
