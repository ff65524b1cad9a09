"""The app yields the CPU to the training runs it starts.

On one machine a training run and the app share the cores: ten people watching the
dashboards, a chat or a comparison must not slow the run. So `python app.py` lowers its
own priority (nice `STUDIO_NICE`, default 10; 0 turns this off) as it starts, starts
training processes from a thread kept at the priority the app was started with, and
leaves them one core fewer than torch would take (unless OMP_NUM_THREADS is set): torch's
threads wait for each other at every operation, so a run on every core slows to a third
whenever the app serves a request, however low the app's priority (docs/benchmarks.md).

On Linux the nice value belongs to each thread: every thread the app starts after lowering
its main thread (the web server, request workers, generation, torch's OpenMP workers)
inherits the lower priority, and a child process inherits the priority of the thread that
forks it. Raising a priority again needs privileges, which is why the spawner thread is
made before anything is lowered. When nothing else wants the CPU, a lowered thread runs
exactly as fast as before.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_spawner: _Spawner | None = None


def nice_level() -> int:
    try:
        return max(0, min(19, int(os.environ.get("STUDIO_NICE", "10"))))
    except ValueError:
        return 10


def thread_nice() -> int:
    """The calling thread's nice value (Linux: per thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class _Spawner:
    """A thread at the app's starting priority that runs the calls handed to it (starting
    training processes), one at a time."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="studio-spawner", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            fn, outcome, done = self.calls.get()
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                outcome["error"] = exc
            done.set()

    def run(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is self.thread:
            return fn()
        outcome: dict = {}
        done = threading.Event()
        self.calls.put((fn, outcome, done))
        done.wait()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


def lower_app_priority() -> bool:
    """Call once, first thing in the app's main thread: keep a spawner thread at the
    current priority, then lower the main thread (and so every thread it starts later).
    Returns whether the priority was lowered (Linux only, STUDIO_NICE > 0)."""
    global _spawner
    level = nice_level()
    if level == 0 or not sys.platform.startswith("linux") or _spawner is not None:
        return False
    try:
        current = thread_nice()
        _spawner = _Spawner()
        if current < level:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), level)
        return True
    except (AttributeError, OSError):
        return False


def training_env() -> dict[str, str]:
    """Environment for a training process the app starts: one torch thread fewer than the
    app's own default (at least one), unless the user set OMP_NUM_THREADS."""
    if _spawner is None or os.environ.get("OMP_NUM_THREADS"):
        return {}
    import torch

    return {"OMP_NUM_THREADS": str(max(1, torch.get_num_threads() - 1))}


def at_normal_priority(fn: Callable[[], T]) -> T:
    """`fn()` in the spawner thread when the app lowered its priority (so a process it
    starts keeps the priority the app was started with); otherwise right here."""
    return _spawner.run(fn) if _spawner is not None else fn()
