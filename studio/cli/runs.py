"""`python -m studio runs list|show|compare|rename|note|delete`: the Runs tab, scripted."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from studio.cli.common import CliError, open_ws
from studio.i18n import t
from studio.runs import history
from studio.runs.status import explain_status
from studio.runs.store import open_run


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    runs = verbs.add_parser("runs", parents=[common], help="training runs: history, compare")
    r_verbs = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    r_list = r_verbs.add_parser("list", parents=[common], help="every run with its figures")
    r_list.add_argument("--filter", default="", help="text in id, title, model, method, ...")
    r_list.add_argument("--state", action="append", help="only runs in this state (repeatable)")
    r_list.add_argument(
        "--sort",
        default="created",
        help="created, best_eval_loss, final_loss, tokens, duration_s or peak_memory_mb",
    )
    r_list.add_argument("--ascending", action="store_true")
    r_list.set_defaults(func=cmd_runs)
    r_show = r_verbs.add_parser("show", parents=[common], help="one run: summary, config, log")
    r_show.add_argument("run")
    r_show.set_defaults(func=cmd_runs)
    r_cmp = r_verbs.add_parser(
        "compare", parents=[common], help="overlaid curves, summary and config diff of runs"
    )
    r_cmp.add_argument("runs", nargs="+", metavar="RUN")
    r_cmp.add_argument(
        "--metric",
        default="loss",
        help="loss, eval_loss, score (the metric the run follows), learning_rate, grad_norm, "
        "tokens_per_s, ...",
    )
    r_cmp.add_argument("--x", default="step", choices=["step", "tokens", "elapsed"])
    r_cmp.add_argument("--log", action="store_true", help="log scale")
    r_cmp.add_argument("--smoothing", type=float, default=0.0)
    r_cmp.add_argument("--csv", type=Path, help="write every logged record of the runs here")
    r_cmp.add_argument("--png", type=Path, help="write the overlaid curves here")
    r_cmp.set_defaults(func=cmd_runs)
    r_title = r_verbs.add_parser("rename", parents=[common], help="give a run a display title")
    r_title.add_argument("run")
    r_title.add_argument("title")
    r_title.set_defaults(func=cmd_runs)
    r_note = r_verbs.add_parser("note", parents=[common], help="attach a note to a run")
    r_note.add_argument("run")
    r_note.add_argument("text")
    r_note.set_defaults(func=cmd_runs)
    r_del = r_verbs.add_parser("delete", parents=[common], help="delete a run's folder")
    r_del.add_argument("run")
    r_del.add_argument("--yes", action="store_true", help="really delete (required)")
    r_del.set_defaults(func=cmd_runs)


def cmd_runs(args) -> tuple[dict, str]:
    return runs(args, open_ws(args))


def runs(args, ws) -> tuple[dict, str]:
    return ACTIONS[args.action](args, ws)


def _list(args, ws):
    rows = history.history(
        ws, text=args.filter, states=args.state, sort=args.sort, descending=not args.ascending
    )
    lines = [
        f"{r['run']:<34} {r['state']:<11} {r['method'] or '':<6} {r['params']:<28} "
        f"loss {_num(r['final_loss'])} eval {_num(r['best_eval_loss'])} "
        f"{r['steps']} steps {r['tokens'] or 0:,} tok {_num(r['duration_s'], 0)} s"
        for r in rows
    ]
    return {"runs": rows}, "\n".join(lines) or "no runs"


def _show(args, ws):
    run = open_run(ws, args.run)
    summary = history.summarize(run)
    config = history.config_of(run)
    payload = {"summary": summary, "config": config, "info": run.info(), "status": run.status()}
    payload["checkpoints"] = [p.name for p in run.checkpoints()]
    payload["best"], payload["scores"] = summary["best"], summary["scores"]
    payload["log_tail"] = run.log_tail(20)
    shown = {k: v for k, v in summary.items() if k not in ("best", "scores", "early_stop")}
    lines = [f"{k}: {v}" for k, v in shown.items() if v not in (None, "")]
    said = explain_status(payload["status"])
    if said.key:  # why it waits or ended, as the Train tab says it
        lines.append("why: " + t(said.key, "en", **said.params))
    for name, score in (summary["scores"] or {}).items():  # the last evaluation's
        stderr = f" ± {score['stderr']:.4f}" if score.get("stderr") is not None else ""
        lines.append(f"score {name}: {score['value']:.4f}{stderr}")
    lines += ["checkpoints: " + (", ".join(payload["checkpoints"]) or "none"), "config:"]
    lines += ["  " + line for line in yaml.safe_dump(config, allow_unicode=True).splitlines()]
    return payload, "\n".join(lines)


def _compare(args, ws):
    chosen = [open_run(ws, r) for r in args.runs]
    table = history.comparison(
        chosen, metric=args.metric, x=args.x, smoothing=args.smoothing, log=args.log
    )
    summaries = [history.summarize(r) for r in chosen]
    diff = history.config_diff(chosen)
    payload = {
        "runs": summaries,
        "config_diff": diff,
        "metric": args.metric,
        "x": args.x,
        "log": args.log,
        "curves": {
            name: part[[args.x, "value"]].values.tolist()
            for name, part in table.groupby("series", sort=False)
        },
    }
    if args.csv:
        args.csv.write_text(history.to_csv(chosen), encoding="utf-8")
        payload["csv"] = str(args.csv)
    if args.png:
        history.to_png(table, args.png, x=args.x, metric=args.metric, log=args.log)
        payload["png"] = str(args.png)
    lines = [
        f"{s['run']:<34} {s['method'] or '':<6} {s['params']:<28} final {_num(s['final_loss'])} "
        f"best eval {_num(s['best_eval_loss'])}"
        for s in summaries
    ]
    lines.append("config differences:" if diff else "configs are identical")
    lines += ["  " + d["field"] + ": " + " | ".join(str(d[r.id]) for r in chosen) for d in diff]
    lines += [f"wrote {payload[k]}" for k in ("csv", "png") if k in payload]
    return payload, "\n".join(lines)


def _rename(args, ws):
    run = open_run(ws, args.run)
    history.set_title(run, args.title)
    return {"run": run.id, "title": run.info().get("title")}, f"{run.id}: {args.title}"


def _note(args, ws):
    run = open_run(ws, args.run)
    history.set_note(run, args.text)
    return {"run": run.id, "note": run.info().get("note")}, f"{run.id}: note saved"


def _delete(args, ws):
    run = open_run(ws, args.run)
    if not args.yes:
        raise CliError(f"deleting removes {run.root} and everything in it; add --yes to do it")
    history.delete(run, confirm=run.id)
    return {"run": run.id, "deleted": True}, f"deleted {run.id}"


def _num(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


ACTIONS = {
    "list": _list,
    "show": _show,
    "compare": _compare,
    "rename": _rename,
    "note": _note,
    "delete": _delete,
}
