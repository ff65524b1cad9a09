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

Only the web server itself is started from the spawner, at the starting priority: on a busy
machine a server at nice 10 answers a new page or client after the others' work, and
twenty people opening the studio together timed out (issue 19). Its event loop and the
threads it hands routes to (the page, /config, uploads, the queue's bookkeeping) stay at
the user's priority; the work behind every event (a handler, each step of a streaming
one) is handed to worker threads that lower themselves first (`lowered`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_spawner: _Spawner | None = None
_workers: ThreadPoolExecutor | None = None
_END = object()


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


def lower_this_thread() -> None:
    """Lower the calling thread to the app's nice level (always permitted)."""
    level = nice_level()
    try:
        if thread_nice() < level:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), level)
    except (AttributeError, OSError):
        pass


def _run_lowered(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` in a lowered worker thread, with the caller's context
    variables (gradio's request, progress and event id live there); waits for it."""
    global _workers
    if _workers is None:
        # More workers than gradio runs handlers at once (40), so this is never the limit.
        _workers = ThreadPoolExecutor(64, "studio-work", initializer=lower_this_thread)
    context = contextvars.copy_context()
    return _workers.submit(context.run, fn, *args, **kwargs).result()


def lowered(fn: Callable | None) -> Callable | None:
    """`fn`, made to run in the app's lowered worker threads when the app lowered its
    priority (a generator: each of its steps); otherwise `fn` itself. Coroutines run in
    the event loop and are left alone. The signature is kept (gradio reads it)."""
    if fn is None or _spawner is None:
        return fn
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return fn
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args, **kwargs):
            iterator = _run_lowered(fn, *args, **kwargs)
            try:
                while (item := _run_lowered(next, iterator, _END)) is not _END:
                    yield item
            finally:
                _run_lowered(iterator.close)

        return steps

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _run_lowered(fn, *args, **kwargs)

    return call


_runs = 0  # training processes the app started that still run
_default_threads: int | None = None
_runs_lock = threading.Lock()


def run_started() -> None:
    """A training run the app started is running: the app's own torch work (generation,
    comparison, evaluation) uses one thread until it ends, since the run has the other
    cores. torch's threads wait for each other at every operation, so one of them starved by
    the run stalled them all: a 64-token generation took 60 times longer (issue 20,
    docs/benchmarks.md "Responsiveness")."""
    global _runs, _default_threads
    if _spawner is None:
        return
    import torch

    with _runs_lock:
        if _runs == 0:
            _default_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _runs += 1


def run_ended() -> None:
    """The other end of `run_started`: the last run gone, the app's threads come back."""
    global _runs
    if _spawner is None:
        return
    import torch

    with _runs_lock:
        _runs = max(0, _runs - 1)
        if _runs == 0 and _default_threads:
            torch.set_num_threads(_default_threads)


def training_env() -> dict[str, str]:
    """Environment for a training process the app starts: one torch thread fewer than the
    app's own default (at least one), unless the user set OMP_NUM_THREADS."""
    if _spawner is None or os.environ.get("OMP_NUM_THREADS"):
        return {}
    import torch

    default = _default_threads if _runs else torch.get_num_threads()  # not the 1 of a run
    return {"OMP_NUM_THREADS": str(max(1, default - 1))}


def at_normal_priority(fn: Callable[[], T]) -> T:
    """`fn()` in the spawner thread when the app lowered its priority (so a process it
    starts keeps the priority the app was started with); otherwise right here."""
    return _spawner.run(fn) if _spawner is not None else fn()
