"""`python -m studio train`: the same start, stop and resume as the Train tab."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from studio.cli.common import CliError, open_ws
from studio.fsutil import file_size
from studio.runs import launcher
from studio.runs.store import ACTIVE, Run, list_runs, open_run


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    tr = verbs.add_parser(
        "train",
        parents=[common],
        help="train: LoRA, QLoRA, GaLore or full fine-tuning, as a background run",
        description="Start a run from a config file or a preset name. The run trains in its "
        "own process and writes everything to workspace/runs/<run>/. Without --detach the "
        "command follows the log until the run ends; Ctrl-C stops it gracefully (a second "
        "Ctrl-C kills it). Under `accelerate launch` every process trains in place.",
    )
    tr.add_argument("config", nargs="?", help="config YAML, or a preset name (see --list)")
    tr.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field (learning_rate=1e-4, lora.r=8, max_length=512); repeatable; "
        "--settings lists every field",
    )
    tr.add_argument("--list", action="store_true", help="list the presets")
    tr.add_argument(
        "--settings",
        nargs="?",
        const="en",
        choices=("en", "ja"),
        metavar="LANG",
        help="list every setting a config or --set can change, with its default and help "
        "(the Train tab's help; LANG: en or ja)",
    )
    tr.add_argument("--check", action="store_true", help="only check data and memory; no run")
    tr.add_argument("--detach", action="store_true", help="start and return at once")
    tr.add_argument("--resume", metavar="RUN", nargs="?", const="", help="resume a run")
    tr.add_argument("--stop", metavar="RUN", help="stop a run (twice: kill it)")
    tr.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)  # the training process
    tr.set_defaults(func=cmd_train)


def cmd_train(args) -> tuple[dict, str]:
    return train(args, open_ws(args))


def train(args, ws) -> tuple[dict, str]:
    if args.run_dir:
        return _training_process(args, ws)
    if args.list:
        return _list(args)
    if args.settings:
        return _settings(args.settings)
    if args.stop:
        run = open_run(ws, args.stop)
        outcome = launcher.stop(run)
        return {"run": run.id, "stop": outcome}, f"{run.id}: {outcome}"
    if args.resume is not None:
        return _resume(args, ws)
    if not args.config:
        raise CliError("name a config file or a preset (python -m studio train --list)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _distributed(args, ws)
    return _start(args, ws)


def _list(args) -> tuple[dict, str]:
    from studio.train import presets

    found = [{"name": n, "description": presets.describe(n)} for n in presets.list_presets()]
    lines = [
        f"{p['name']:<24} {p['description'].splitlines()[0] if p['description'] else ''}"
        for p in found
    ]
    return {"presets": found}, "\n".join(lines)


def _settings(lang: str) -> tuple[dict, str]:
    import textwrap

    from studio.train.config import describe_settings

    rows = describe_settings(lang)
    lines = []
    for row in rows:
        default = "empty" if row["default"] is None else row["default"]
        lines.append(f"{row['setting']}  ({row['takes']}; default {default})")
        lines += textwrap.wrap(row["help"], 88, initial_indent="    ", subsequent_indent="    ")
    return {"settings": rows}, "\n".join(lines)


def _start(args, ws) -> tuple[dict, str]:
    from studio.cli.common import progress_printer
    from studio.train import presets
    from studio.train.start import preflight, start
    from studio.train.vram import summary_lines

    config, preset = presets.load(args.config, args.sets)
    show = progress_printer()
    checked = preflight(ws, config, progress=show)
    report = checked.scan
    if report is None:
        lines = [f"data: not checked ({checked.scan_error})"]
    else:
        lines = [
            f"data: {report.rows} rows, {report.trained_tokens:,} of {report.tokens:,} tokens "
            f"trained; {len(report.diagnostics)} finding(s)"
            + (" (BLOCKED)" if checked.blocked else "")
        ]
        lines += [f"  [{d.severity}] {d.code}: {d.count} rows" for d in report.diagnostics]
    if checked.estimate:
        lines += ["memory: " + line for line in summary_lines(checked.estimate, "en")]
        if checked.too_large:
            lines.append("memory: NOT STARTED unless allow_over_memory is set")
    if args.check:
        payload = checked.to_dict()
        payload["config"] = checked.config.to_dict()
        if report is None:  # nothing was checked: not a clean bill of health
            payload.update(ok=False, exit_code=1)
        return payload, "\n".join(lines)
    command = ["python", "-m", "studio", "train", args.config, *_sets(args.sets)]
    run = start(ws, config, preset=preset, command=command, checked=checked, progress=show)
    lines.append(f"run {run.id} started: {run.root}")
    if args.detach:
        return {"run": run.id, "dir": str(run.root), "state": run.state}, "\n".join(lines)
    print("\n".join(lines), file=sys.stderr, flush=True)
    return _follow(run)


def _sets(sets: list[str]) -> list[str]:
    return [part for s in sets for part in ("--set", s)]


def _resume(args, ws) -> tuple[dict, str]:
    if args.resume:
        run = open_run(ws, args.resume)
    else:
        resumable = [r for r in list_runs(ws) if r.state in ("stopped", "failed", "interrupted")]
        if not resumable:
            raise CliError("no stopped, failed or interrupted run to resume")
        run = resumable[0]
    launcher.check_resumable(run)  # the one rule; its RunError is shown as it is
    logged = max(0, file_size(run.log_path))
    launcher.spawn(run, ws, resume=True)
    if args.detach:
        return {"run": run.id, "dir": str(run.root), "state": run.state}, f"{run.id} resumed"
    return _follow(run, offset=logged)  # the earlier sessions' log is not repeated


def _follow(run: Run, offset: int = 0) -> tuple[dict, str]:
    """Copy the run's log to stderr until it ends; Ctrl-C asks it to stop (twice: kill)."""

    def on_interrupt(signum, frame):
        outcome = launcher.stop(run)
        print(f"\n[studio] {outcome} (Ctrl-C again to kill)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        while True:
            state = launcher.wait(run, timeout=0.5)
            offset = _copy_log(run.log_path, offset)
            if state not in ACTIVE:
                time.sleep(0.2)
                _copy_log(run.log_path, offset)
                break
    finally:
        signal.signal(signal.SIGINT, previous)
    status = run.status()
    summary = {"run": run.id, "dir": str(run.root), **status}
    final = [m for m in run.metrics() if m.get("kind") == "train"]
    summary["steps"] = status.get("step")
    if final:
        summary["last_loss"] = final[-1].get("loss")
    text = f"{run.id}: {status['state']}" + (
        f" ({status.get('message')})" if status.get("message") else ""
    )
    if status["state"] == "failed":
        summary["exit_code"] = 1
        summary["ok"] = False  # the command worked; the run did not
    return summary, text


def _copy_log(path: Path, offset: int) -> int:
    if not path.exists():
        return offset
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    if chunk:
        sys.stderr.write(chunk.decode("utf-8", errors="replace"))
        sys.stderr.flush()
    return offset + len(chunk)


def _training_process(args, ws) -> tuple[dict, str]:
    """Inside the child: train the prepared run directory."""
    from studio.train.process import execute

    run_dir = args.run_dir.resolve()
    if run_dir.parent != ws.runs.resolve():
        raise CliError(f"{run_dir} is not a run directory of {ws.runs}")
    run = Run(run_dir)
    code = execute(run, ws, resume=args.resume is not None)
    status = run.status()
    payload = {"run": run.id, **status, "exit_code": code, "ok": code == 0}
    return payload, f"{run.id}: {status['state']}"


def _distributed(args, ws) -> tuple[dict, str]:
    """Under `accelerate launch` / torchrun: the main process prepares the run directory,
    every process trains in place (no child), and they agree on the directory first."""
    import torch
    import torch.distributed as dist

    from studio.train import presets
    from studio.train.process import execute, is_main_process
    from studio.train.start import Blocked, TooLarge, preflight, prepare_run

    if not dist.is_initialized():  # the Trainer's accelerator reuses this process group
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    config, preset = presets.load(args.config, args.sets)
    paths: list = [None]
    if is_main_process():
        checked = preflight(ws, config)
        if not (checked.blocked or checked.too_large):
            command = ["accelerate", "launch", "-m", "studio", "train", args.config]
            run = prepare_run(
                ws,
                checked.config,
                preset=preset,
                command=command + _sets(args.sets),
                scan=checked.scan.to_dict() if checked.scan else None,
            )
            paths = [str(run.root)]
    dist.broadcast_object_list(paths, src=0)
    if paths[0] is None:
        if is_main_process():
            raise Blocked(checked.scan) if checked.blocked else TooLarge(checked.estimate)
        raise CliError("the main process refused to start the run")
    run = Run(Path(paths[0]))
    code = execute(run, ws)
    status = run.status()
    rank = dist.get_rank()
    payload = {"run": run.id, "rank": rank, **status, "exit_code": code, "ok": code == 0}
    return payload, f"[rank {rank}] {run.id}: {status['state']}"
