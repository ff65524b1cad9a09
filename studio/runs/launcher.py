"""Start, stop and resume runs as child processes: `python -m studio train --run-dir DIR`.

The app and the CLI both go through `train.start.prepare_run` (which writes the run
directory) and `spawn` (which starts the training process, started without a shell, its
output going to the run's log file, never to an unread pipe). A watcher thread notices a
child that dies without saying why (SIGKILL, a segfault) and marks the run failed with the
signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from studio.fsutil import atomic_write_json
from studio.paths import REPO_ROOT
from studio.priority import at_normal_priority, run_ended, run_started, training_env
from studio.runs.store import ACTIVE, Run, RunError, reconcile_run, start_time

_WATCHERS: dict[str, subprocess.Popen] = {}
_LOCK = threading.Lock()


def train_command(run: Run, ws, *, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "studio", "train", "--workspace", str(ws.root)]
    cmd += ["--run-dir", str(run.root)]
    if resume:
        cmd.append("--resume")
    return cmd


def check_resumable(run: Run) -> None:
    """The one rule for Resume (the Train tab, `train --resume`, `spawn(resume=True)`): a run
    that ended without completing (stopped, failed, interrupted, or queued or running with
    its process gone) continues from its last checkpoint; a completed run, or one whose
    process still trains, cannot. Raises a RunError (code `not_resumable`, with the run and
    its state) that says which."""
    state = run.state
    if state == "completed":
        why = "it has completed; start a new run instead"
    elif state in ACTIVE and (run.alive() or _child_alive(run)):
        why = "it is still training"
    else:
        return
    raise RunError(f"{run.id} is {state}: {why}", code="not_resumable", run=run.id, state=state)


def spawn(
    run: Run,
    ws,
    *,
    resume: bool = False,
    env: dict | None = None,
    command: list[str] | None = None,
) -> subprocess.Popen:
    """Start the training process for a prepared run (or resume one) and watch it; another
    job kept in a run-like directory (a synthesis job) passes its own `command`."""
    if resume:
        check_resumable(run)
        run.clear_stop()
        run.set_status("queued", reason=None, message=None, ended=None)
    elif run.state in ACTIVE and (run.alive() or _child_alive(run)):
        raise RunError(f"{run.id} is already {run.state}")
    child_env = {**os.environ, **training_env(), **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(run.log_path, "ab") as log:
        # Started from a thread at the app's starting priority: the app itself yields the
        # CPU to its runs (studio.priority).
        proc = at_normal_priority(
            lambda: subprocess.Popen(
                command or train_command(run, ws, resume=resume),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(run.root),  # what a library writes to the working directory stays here
                env=child_env,
                start_new_session=True,  # its own process group: a second stop kills the tree
            )
        )
    atomic_write_json(run.process_path, {"pid": proc.pid, "started": start_time(proc.pid)})
    with _LOCK:
        _WATCHERS[run.id] = proc
    run_started()  # the app's own work leaves the run its cores (studio.priority)
    threading.Thread(target=_watch, args=(run, proc), daemon=True, name=f"watch-{run.id}").start()
    return proc


def _watch(run: Run, proc: subprocess.Popen) -> None:
    code = proc.wait()
    try:
        mark_exit(run, code)
    except OSError:  # a full disk: `wait` and the pages that look judge by the process
        pass
    finally:
        with _LOCK:
            _WATCHERS.pop(run.id, None)
        run_ended()


def mark_exit(run: Run, code: int) -> None:
    """After the child exits: if it could not say how it ended, say it for it (also over
    a `process_gone` that a reader wrote while the child was being reaped)."""
    status = run.status()
    if status["state"] not in ACTIVE and status.get("reason") != "process_gone":
        return
    if code < 0:
        name = signal.Signals(-code).name
        reason = f"killed by {name}"
        message = (
            f"the {run.process_name} process was killed ({name})"
            + ("; this is often the kernel's out-of-memory killer" if name == "SIGKILL" else "")
            + f". {run.kept_on_failure}"
        )
    else:
        reason, message = (
            f"exit status {code}",
            f"the {run.process_name} process exited with {code}",
        )
    run.set_status("failed", reason=reason, message=message, ended=time.time())


def stop(run: Run) -> str:
    """First call: graceful (the run saves a checkpoint at the next step and ends `stopped`).
    A second call while it still runs kills its whole process group."""
    status = run.status()
    if status["state"] not in ACTIVE:
        return "not_running"
    pid = status.get("pid") or (run.json_of(run.process_path) or {}).get("pid")
    if not (run.alive() or _child_alive(run)):
        run.set_status("interrupted", reason="process_gone", ended=time.time())
        return "gone"
    if run.stop_requested or status.get("stop_requested"):
        _kill_tree(status.get("pgid") or pid)
        run.set_status(
            "stopped",
            reason="killed",
            message=f"stopped at once: work since {run.resume_point} is lost",
            ended=time.time(),
        )
        run.clear_stop()
        return "killed"
    run.request_stop()
    run.set_status(status["state"], stop_requested=True)
    with contextlib.suppress(ProcessLookupError, PermissionError, TypeError, ValueError):
        os.kill(int(pid), signal.SIGTERM)  # the stop file alone is enough if this fails
    return "stopping"


def _child_alive(run: Run) -> bool:
    with _LOCK:
        proc = _WATCHERS.get(run.id)
    return proc is not None and proc.poll() is None


def _kill_tree(pgid) -> None:
    """Kill a run's process group; never our own (a run trained inside this process, as
    under `accelerate launch` or in tests, records the group it shares with us)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, TypeError, ValueError):
        if int(pgid) == os.getpgid(0):
            raise ValueError("our own process group")
        os.killpg(int(pgid), signal.SIGKILL)


def _gone(run: Run, proc: subprocess.Popen | None) -> bool:
    """The run's training process has ended (ours, reaped; or another's, not alive)."""
    if proc is not None:
        return proc.poll() is not None
    return not run.alive() and run.process_path.exists()


def wait(run: Run, timeout: float | None = None, poll: float = 0.5) -> str:
    """Block until the run is no longer queued or running; returns its state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _LOCK:
            proc = _WATCHERS.get(run.id)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=poll)
        else:
            time.sleep(poll)
        state = run.state
        if state not in ACTIVE and (proc is None or proc.poll() is not None):
            return state
        if state in ACTIVE and _gone(run, proc):
            # A dead process is a finished run, whatever the status file still says (its
            # last words may not have reached a full disk): say so once more, and end.
            with contextlib.suppress(OSError):
                if proc is not None:
                    mark_exit(run, proc.returncode)
                else:
                    reconcile_run(run)
            state = run.state
            return state if state not in ACTIVE else "failed"
        if deadline is not None and time.monotonic() > deadline:
            return state
