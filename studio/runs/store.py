"""Run directories: the only place a run's state lives.

    runs/<run id>/
      config.yaml      the resolved run config
      run.json         what ran: created, preset, command, backend, device, library versions
      status.json      state, pid, progress, reason (rewritten atomically)
      metrics.jsonl    one JSON object per logged step, append-only
      scan.json        the label inspector's report on the training data
      estimate.json    the memory estimate made before launch
      train.log        everything the training process printed
      checkpoints/     checkpoint-<step>/ (complete ones hold trainer_state.json)
      best.json        the best evaluation's metric, value, step and checkpoint
      final/           the trained adapter or model, with its tokenizer
      stop             present while a stop is requested

The UI, the CLI and the training process all read and write these files, so a run survives
an app restart, a closed browser and a copy to another machine.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import atomic_write_json, read_json, set_aside
from studio.safety import safe_name

ACTIVE = ("queued", "running")
FINISHED = ("completed", "stopped", "failed", "interrupted")
STATES = ACTIVE + FINISHED
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
PREPARED_GRACE_S = 60.0


class RunError(StudioError, RuntimeError):
    pass


@dataclass
class Run:
    root: Path

    # How the messages written for a run's process name it (a synthesis job says its own).
    process_name = "training"
    resume_point = "the last checkpoint"
    kept_on_failure = (
        "Checkpoints and metrics written before are kept; resume continues from the last "
        "checkpoint."
    )

    @property
    def id(self) -> str:
        return self.root.name

    config_path = property(lambda self: self.root / "config.yaml")
    status_path = property(lambda self: self.root / "status.json")
    metrics_path = property(lambda self: self.root / "metrics.jsonl")
    log_path = property(lambda self: self.root / "train.log")
    info_path = property(lambda self: self.root / "run.json")
    scan_path = property(lambda self: self.root / "scan.json")
    estimate_path = property(lambda self: self.root / "estimate.json")
    checkpoints_dir = property(lambda self: self.root / "checkpoints")
    final_dir = property(lambda self: self.root / "final")
    stop_path = property(lambda self: self.root / "stop")
    best_path = property(lambda self: self.root / "best.json")
    process_path = property(lambda self: self.root / "process.json")

    # --- status -------------------------------------------------------------------------
    def json_of(self, path: Path) -> dict | None:
        try:
            data = read_json(path, default=None)
        except (OSError, ValueError):
            return None  # damaged: the caller decides what that means
        return data if isinstance(data, dict) else None

    def status(self) -> dict:
        data = self.json_of(self.status_path)
        if not isinstance(data, dict) or data.get("state") not in STATES:
            # A damaged status file must not hide the run: say so and keep everything else.
            return {
                "state": "interrupted",
                "reason": "status_unreadable",
                "message": ("status.json is missing or damaged; the run's files are kept"),
            }
        return data

    def set_status(self, state: str, **fields) -> dict:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        current = self.json_of(self.status_path)
        if current is None and self.status_path.exists():
            set_aside(self.status_path)  # damaged: keep its bytes, never write over them
        current = current or {}
        current.update(fields, state=state, updated=time.time())
        atomic_write_json(self.status_path, current)
        return current

    @property
    def state(self) -> str:
        return self.status()["state"]

    def alive(self) -> bool:
        """Whether the process training this run is still there: the pid the training
        process wrote into its status, or the one its launcher recorded at spawn (the child
        needs a few seconds of imports before it writes its own)."""
        status = self.status()
        if process_alive(status.get("pid"), status.get("pid_started")):
            return True
        spawned = self.json_of(self.process_path) or {}
        return process_alive(spawned.get("pid"), spawned.get("started"))

    def info(self) -> dict:
        return self.json_of(self.info_path) or {}

    def update_info(self, **fields) -> dict:
        data = self.info()
        data.update(fields)
        atomic_write_json(self.info_path, data)
        return data

    # --- metrics ------------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=float)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def metrics(self) -> list[dict]:
        """Every logged record; a torn last line (a killed writer) is skipped."""
        if not self.metrics_path.exists():
            return []
        records = []
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    # --- checkpoints --------------------------------------------------------------------
    def checkpoints(self, *, complete_only: bool = True) -> list[Path]:
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for p in self.checkpoints_dir.iterdir():
            m = CHECKPOINT.match(p.name)
            if m and p.is_dir() and (not complete_only or (p / "trainer_state.json").exists()):
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def best(self) -> dict | None:
        """The best evaluation (`best.json`: metric, value, step, greater_is_better) with
        `path`, its checkpoint, while that checkpoint is complete on disk; else None."""
        try:
            best = read_json(self.best_path)
        except (OSError, ValueError):  # being replaced, or damaged: no best to offer
            return None
        if not isinstance(best, dict) or not CHECKPOINT.match(str(best.get("checkpoint"))):
            return None
        folder = self.checkpoints_dir / best["checkpoint"]
        if not (folder / "trainer_state.json").is_file():
            return None
        return {**best, "path": folder}

    # --- control ------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop_path.write_text(str(time.time()), encoding="utf-8")

    @property
    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stop(self) -> None:
        self.stop_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def runs_dir(ws) -> Path:
    return ws.runs


def new_run_id(ws, name: str) -> str:
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(name)[:40]}"
    run_id, n = stem, 2
    while (runs_dir(ws) / run_id).exists():
        run_id, n = f"{stem}-{n}", n + 1
    return run_id


def open_run(ws, run_id: str) -> Run:
    """A run by id; the id comes from a user or the browser, so it is checked as a name."""
    path = runs_dir(ws) / safe_name(run_id)
    if not (path / "config.yaml").is_file():
        raise RunError(
            f"no run named {run_id!r} in {runs_dir(ws)}",
            code="no_such_run",
            run=run_id,
            folder=str(runs_dir(ws)),
        )
    return Run(path)


def list_runs(ws) -> list[Run]:
    folder = runs_dir(ws)
    if not folder.is_dir():
        return []
    found = [Run(p) for p in folder.iterdir() if (p / "config.yaml").is_file()]
    return sorted(found, key=lambda r: r.id, reverse=True)


def start_time(pid: int | None = None) -> float | None:
    """When a process (default: this one) started, to tell it from a later one that reuses
    its pid; None when it cannot be read."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether `pid` is still the process that was recorded (not a reused pid)."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - float(started)) < 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def reconcile(ws) -> list[str]:
    """Mark runs whose process is gone as interrupted (app restart, reboot, kill -9 of a
    foreground run). Runs still alive are left alone, so the app re-attaches to them."""
    changed = []
    for run in list_runs(ws):
        if reconcile_run(run):
            changed.append(run.id)
    return changed


def reconcile_run(run: Run) -> bool:
    """Mark one run interrupted if it claims to be active but no process trains it."""
    if run.state not in ACTIVE or run.alive() or _ended_child(run):
        return False
    never_started = not run.process_path.exists() and not run.status().get("pid")
    recent = time.time() - (run.status().get("updated") or 0) < PREPARED_GRACE_S
    if never_started and recent:
        return False  # prepared, and its launcher may be about to start it
    try:
        run.set_status(
            "interrupted",
            reason="process_gone",
            message=f"the {run.process_name} process ended without saying why (restart or "
            f"kill); resume continues from {run.resume_point}",
            ended=time.time(),
        )
    except OSError:  # a full disk: the pages that asked keep answering; the next look retries
        return False
    return True


def _ended_child(run: Run) -> bool:
    """Whether the run's process is a child of this process that has just ended: the
    launcher's watcher here is about to record how it ended (the signal), which says more
    than `process_gone`."""
    import psutil

    pids = {run.status().get("pid"), (run.json_of(run.process_path) or {}).get("pid")}
    for pid in pids - {None}:
        try:
            if psutil.Process(int(pid)).ppid() == os.getpid():
                return True
        except (psutil.Error, TypeError, ValueError):
            continue
    return False
