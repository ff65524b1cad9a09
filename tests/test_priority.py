"""The studio's model work runs in threads at a lower CPU priority than training."""

import os
import sys
import threading

import pytest

from studio import priority

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux
def test_yielding_runs_lowered_and_leaves_the_caller_alone(monkeypatch):
    monkeypatch.setenv("STUDIO_NICE", "7")
    before = _nice()
    seen = priority.yielding(_nice)
    assert seen == max(before, 7)
    assert _nice() == before  # the caller's thread (and the training it spawns) is untouched


@linux
def test_results_and_errors_come_back_to_the_caller():
    assert priority.yielding(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(KeyError, match="missing"):
        priority.yielding(lambda: {}["missing"])


@linux
def test_nice_zero_turns_it_off(monkeypatch):
    monkeypatch.setenv("STUDIO_NICE", "0")
    before = _nice()
    assert priority.yielding(_nice) == before
    monkeypatch.setenv("STUDIO_NICE", "not a number")
    assert priority.nice_level() == 10


@linux
def test_generation_runs_in_a_lowered_thread(embedded, monkeypatch):
    import torch

    from studio.generate import GenerationSettings, generate

    monkeypatch.setenv("STUDIO_NICE", "9")
    seen = []
    original = embedded.model.generate

    def spy(*args, **kwargs):
        seen.append((_nice(), torch.is_inference_mode_enabled()))
        return original(*args, **kwargs)

    monkeypatch.setattr(embedded.model, "generate", spy)
    result = generate(embedded, "富士山は", GenerationSettings(max_new_tokens=3, greedy=True))
    assert result.new_tokens >= 1
    assert seen and seen[0][0] >= 9 and seen[0][1]  # lowered, and in inference mode
