"""The app lowers its own CPU priority and starts training runs at the priority it was
started with, so that what the app does (dashboards, generation) never slows a run."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, child_env

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")

SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys, threading
    from studio import priority

    lowered = priority.lower_app_priority()
    seen = {"lowered": lowered, "main": priority.thread_nice()}
    t = threading.Thread(target=lambda: seen.update(later=priority.thread_nice()))
    t.start(); t.join()
    probe = [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"]
    run = lambda: subprocess.run(probe, capture_output=True, text=True).stdout.strip()
    seen["child_from_spawner"] = int(priority.at_normal_priority(run))
    seen["child_from_main"] = int(run())
    seen["training_env"] = priority.training_env()
    import torch
    seen["torch_threads"] = torch.get_num_threads()
    priority.run_started()  # a run the app started trains: the app's own work takes 1 thread
    seen["while_training"] = torch.get_num_threads()
    seen["training_env_while_training"] = priority.training_env()
    priority.run_ended()
    seen["after_training"] = torch.get_num_threads()
    print(json.dumps(seen))
    """
)


def _run(**env) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(PYTHONPATH=str(REPO), **env),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@linux
def test_the_app_lowers_itself_but_not_the_processes_it_spawns():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    seen = _run(STUDIO_NICE="7", OMP_NUM_THREADS="")
    assert seen["lowered"]
    assert seen["main"] == seen["later"] == max(start, 7)  # threads made later inherit it
    assert seen["child_from_main"] == max(start, 7)
    assert seen["child_from_spawner"] == start  # a training run keeps the user's priority
    # one torch thread fewer than the app's default, leaving a core to the app
    assert seen["training_env"] == {"OMP_NUM_THREADS": str(max(1, seen["torch_threads"] - 1))}
    # while a run it started trains, the app's torch work leaves the run its cores
    assert seen["while_training"] == 1 and seen["after_training"] == seen["torch_threads"]
    assert seen["training_env_while_training"] == seen["training_env"]  # a second run too


@linux
def test_nice_zero_turns_it_off():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    seen = _run(STUDIO_NICE="0")
    assert not seen["lowered"]
    assert seen["main"] == seen["child_from_spawner"] == seen["child_from_main"] == start
    assert seen["training_env"] == {}


def test_a_bad_setting_falls_back_to_the_default(monkeypatch):
    from studio.priority import nice_level

    monkeypatch.setenv("STUDIO_NICE", "not a number")
    assert nice_level() == 10
    monkeypatch.setenv("STUDIO_NICE", "99")
    assert nice_level() == 19
