"""`python -m studio runs list|show|compare|rename|note|delete`: the Runs tab, scripted."""

from __future__ import annotations

import yaml

from studio.cli import CliError
from studio.runs import history
from studio.runs.store import RunError, open_run


def runs(args, ws) -> tuple[dict, str]:
    try:
        return ACTIONS[args.action](args, ws)
    except (RunError, ValueError) as exc:
        raise CliError(str(exc)) from exc


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
    payload["log_tail"] = run.log_tail(20)
    lines = [f"{k}: {v}" for k, v in summary.items() if v not in (None, "")]
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
