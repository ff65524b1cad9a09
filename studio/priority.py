"""The studio's own heavy work (generation, evaluation) yields the CPU to training.

On one machine a training run and the app share the cores: a chat, a comparison or ten
people watching the dashboards must not slow the run. The app therefore does its model
work in threads made for it, each lowered to `STUDIO_NICE` (default 10; 0 turns this off)
before it starts. On Linux the nice value belongs to the thread, and the threads torch's
OpenMP starts from it inherit it; the training process keeps its normal priority. When
nothing else wants the CPU, a lowered thread runs exactly as fast as before.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_local = threading.local()


def nice_level() -> int:
    try:
        return max(0, min(19, int(os.environ.get("STUDIO_NICE", "10"))))
    except ValueError:
        return 10


def lower_this_thread() -> bool:
    """Lower the calling thread's priority to the studio's nice level. A thread cannot raise
    it again without privileges, so call this only in a thread made for the work. Returns
    whether the priority was lowered (Linux only)."""
    level = nice_level()
    if level == 0 or not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < level:
            os.setpriority(os.PRIO_PROCESS, tid, level)
        return True
    except (AttributeError, OSError):
        return False


def start_yielding(target: Callable[[], None], name: str = "studio-work") -> threading.Thread:
    """Start `target` in a new daemon thread that first lowers its own priority."""

    def work() -> None:
        lower_this_thread()
        _local.yielding = True
        target()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def in_yielding_thread() -> bool:
    """Whether the calling thread is one `start_yielding` made (no need for another)."""
    return getattr(_local, "yielding", False)


def yielding(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` run at the studio's lower priority; returns its result or raises
    its exception. Thread-local state (torch's inference mode, grad mode) is not carried
    over: enter it inside `fn`."""
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    start_yielding(call).join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
