"""Run history and comparison from run directories written here: completed, failed, stopped
and running runs, a run copied in from another machine, curves, config diff, exports, CLI."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import yaml

from studio.runs import curves, history
from studio.runs.store import Run, RunError, open_run
from tests.conftest import REPO, child_env


def make_run(
    ws,
    run_id,
    *,
    state,
    losses,
    evals=(),
    config=None,
    tokens_per_step=100,
    seconds_per_step=2.0,
    **status,
):
    """A run directory as the trainer leaves it, written by hand."""
    root = ws.runs / run_id
    root.mkdir(parents=True)
    run = Run(root)
    base = {
        "model": "tsumugi-tiny",
        "dataset": "sample-chat-ojousama/v0001",
        "method": "lora",
        "lora": {"r": 8, "lora_alpha": 16},
        "training": {
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 2,
        },
    }
    run.config_path.write_text(yaml.safe_dump({**base, **(config or {})}))
    run.update_info(
        created=1_000_000.0 + len(list(ws.runs.iterdir())), backend="transformers", device="cpu"
    )
    for step, loss in enumerate(losses, 1):
        run.append_metrics(
            {
                "kind": "train",
                "session": 0,
                "step": step,
                "loss": loss,
                "tokens": step * tokens_per_step,
                "elapsed": step * seconds_per_step,
                "learning_rate": 1e-3,
                "grad_norm": 1.0,
                "tokens_per_s": 50.0,
                "peak_memory_mb": 800.0 + step,
            }
        )
    for step, loss in evals:
        run.append_metrics(
            {
                "kind": "eval",
                "session": 0,
                "step": step,
                "eval_loss": loss,
                "tokens": step * tokens_per_step,
                "elapsed": step * seconds_per_step,
            }
        )
    run.set_status(state, step=len(losses), **status)
    return run


@pytest.fixture
def runs(workspace):
    made = {
        "done": make_run(
            workspace,
            "r1-done",
            state="completed",
            losses=[3.0, 2.0, 1.5, 1.2],
            evals=[(2, 2.2), (4, 1.9)],
        ),
        "failed": make_run(
            workspace,
            "r2-failed",
            state="failed",
            losses=[3.0, 2.5],
            reason="oom",
            message="out of memory",
            config={"method": "full", "training": {"learning_rate": 1e-4}},
        ),
        "stopped": make_run(
            workspace,
            "r3-stopped",
            state="stopped",
            losses=[3.1, 2.4, 2.0],
            evals=[(3, 2.1)],
            reason="stop_requested",
            config={"lora": {"r": 64, "lora_alpha": 128}},
            tokens_per_step=200,
            seconds_per_step=1.0,
        ),
    }
    return made


def test_summaries_of_completed_failed_and_stopped_runs(workspace, runs):
    done = history.summarize(runs["done"])
    assert done["state"] == "completed" and done["method"] == "lora"
    assert done["final_loss"] == 1.2 and done["best_eval_loss"] == 1.9
    assert done["final_eval_loss"] == 1.9 and done["steps"] == 4
    assert done["duration_s"] == 8.0 and done["peak_memory_mb"] == 804.0
    assert done["params"] == "r=8 α=16 lr=0.001 batch=4x2"
    failed = history.summarize(runs["failed"])
    assert failed["state"] == "failed" and failed["reason"] == "oom"
    assert failed["best_eval_loss"] is None and failed["final_loss"] == 2.5
    assert failed["params"] == "lr=0.0001"  # its training section names no batch
    stopped = history.summarize(runs["stopped"])
    assert stopped["state"] == "stopped" and stopped["tokens"] == 600


def test_history_filters_and_sorts_with_missing_figures_last(workspace, runs):
    ids = [r["run"] for r in history.history(workspace, sort="best_eval_loss", descending=False)]
    assert ids == ["r1-done", "r3-stopped", "r2-failed"]  # failed has no eval loss: last
    assert [r["run"] for r in history.history(workspace, states=["failed"])] == ["r2-failed"]
    assert [r["run"] for r in history.history(workspace, text="full")] == ["r2-failed"]
    assert [r["run"] for r in history.history(workspace, text="R3")] == ["r3-stopped"]
    with pytest.raises(ValueError, match="sort must be one of"):
        history.history(workspace, sort="vibes")


def test_config_diff_shows_only_fields_that_differ(runs):
    diff = {d["field"]: d for d in history.config_diff([runs["done"], runs["stopped"]])}
    assert set(diff) == {"lora.r", "lora.lora_alpha"}
    assert (diff["lora.r"]["r1-done"], diff["lora.r"]["r3-stopped"]) == (8, 64)
    three = {d["field"] for d in history.config_diff(list(runs.values()))}
    assert {"method", "training.learning_rate", "lora.r"} <= three
    assert "dataset" not in three and "model" not in three
    assert history.config_diff([runs["done"], runs["done"]]) == []


def test_comparison_aligns_runs_by_step_tokens_or_time(runs):
    chosen = [runs["done"], runs["stopped"]]
    by_step = history.comparison(chosen, metric="loss", x="step")
    assert set(by_step["series"]) == {"r1-done", "r3-stopped"}
    stopped = by_step[by_step["series"] == "r3-stopped"]
    assert stopped["step"].tolist() == [1, 2, 3] and stopped["value"].tolist() == [3.1, 2.4, 2.0]
    by_tokens = history.comparison(chosen, metric="loss", x="tokens")
    assert by_tokens[by_tokens["series"] == "r3-stopped"]["tokens"].tolist() == [200, 400, 600]
    by_time = history.comparison(chosen, metric="loss", x="elapsed")
    assert by_time[by_time["series"] == "r1-done"]["elapsed"].max() == 8.0
    evals = history.comparison(chosen, metric="eval_loss")
    assert evals[evals["series"] == "r1-done"]["value"].tolist() == [2.2, 1.9]
    logged = history.comparison(chosen, metric="loss", log=True)
    assert logged["value"].tolist()[0] == pytest.approx(math.log10(3.0))
    smoothed = history.comparison(chosen, metric="loss", smoothing=0.5)
    assert len(smoothed) == len(by_step)  # no raw twin series in a comparison
    assert smoothed["value"].tolist()[1] == pytest.approx((0.5 * 3.0 * 0.5 + 0.5 * 2.0) / 0.75)
    with pytest.raises(ValueError, match="metric must be one of"):
        history.comparison(chosen, metric="accuracy")


def test_one_plotting_path_for_the_train_tab_and_the_dashboard(runs):
    """The Train tab's curve (one run, several metrics) and the comparison (several runs, one
    metric) are both `curves.frame`."""
    records = runs["done"].metrics()
    live = curves.frame({"r1-done": records}, smoothing=0.0)
    assert set(live["series"]) == {"loss", "eval_loss"}
    compared = history.comparison([runs["done"]], metric="loss")
    assert compared["value"].tolist() == live[live["series"] == "loss"]["value"].tolist()


def test_titles_notes_and_delete_with_confirmation(workspace, runs):
    history.set_title(runs["done"], "LoRA r=8 ベースライン")
    history.set_note(runs["done"], "first try")
    row = history.summarize(runs["done"])
    assert row["title"] == "LoRA r=8 ベースライン" and row["note"] == "first try"
    assert history.run_label(runs["done"]) == "LoRA r=8 ベースライン (r1-done)"
    assert [r["run"] for r in history.history(workspace, text="ベースライン")] == ["r1-done"]
    with pytest.raises(RunError, match="confirm with its id"):
        history.delete(runs["failed"], confirm="yes")
    assert runs["failed"].root.is_dir()
    history.delete(runs["failed"], confirm="r2-failed")
    assert not runs["failed"].root.exists()
    live = make_run(
        workspace, "r4-live", state="running", losses=[3.0], pid=__import__("os").getpid()
    )
    with pytest.raises(RunError, match="stop it before deleting"):
        history.delete(live, confirm="r4-live")


def test_a_run_copied_from_another_machine_appears(workspace, tmp_path, runs):
    elsewhere = tmp_path / "other-machine"
    shutil.copytree(runs["done"].root, elsewhere / "r9-copied")
    shutil.copytree(elsewhere / "r9-copied", workspace.runs / "r9-copied")
    assert "r9-copied" in {r["run"] for r in history.history(workspace)}
    assert history.summarize(open_run(workspace, "r9-copied"))["final_loss"] == 1.2


def test_exports_csv_and_png(runs, tmp_path):
    chosen = [runs["done"], runs["stopped"]]
    text = history.to_csv(chosen)
    lines = text.splitlines()
    assert lines[0].startswith("run,kind,session,step")
    assert len(lines) == 1 + 4 + 2 + 3 + 1  # header, done train+eval, stopped train+eval
    table = history.comparison(chosen, metric="loss", x="tokens", log=True)
    png = history.to_png(table, tmp_path / "c.png", x="tokens", metric="loss", log=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def studio(ws, *args):
    return subprocess.run(
        [sys.executable, "-m", "studio", "runs", *args, "--workspace", str(ws.root)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip


def test_cli_list_show_compare_rename_note_delete(workspace, runs, tmp_path):
    out = json.loads(
        studio(workspace, "list", "--json", "--sort", "final_loss", "--ascending").stdout
    )
    assert [r["run"] for r in out["runs"]] == ["r1-done", "r3-stopped", "r2-failed"]
    shown = json.loads(studio(workspace, "show", "r3-stopped", "--json").stdout)
    assert shown["summary"]["state"] == "stopped" and shown["config"]["lora"]["r"] == 64
    png, csv_path = tmp_path / "cmp.png", tmp_path / "cmp.csv"
    proc = studio(
        workspace,
        "compare",
        "r1-done",
        "r3-stopped",
        "--x",
        "tokens",
        "--json",
        "--png",
        str(png),
        "--csv",
        str(csv_path),
    )
    compared = json.loads(proc.stdout)
    assert [d["field"] for d in compared["config_diff"]] == ["lora.lora_alpha", "lora.r"]
    assert compared["curves"]["r3-stopped"] == [[200.0, 3.1], [400.0, 2.4], [600.0, 2.0]]
    assert png.is_file() and csv_path.read_text().startswith("run,")
    assert studio(workspace, "rename", "r1-done", "baseline").returncode == 0
    assert studio(workspace, "note", "r1-done", "keep").returncode == 0
    assert open_run(workspace, "r1-done").info()["title"] == "baseline"
    refused = studio(workspace, "delete", "r1-done")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert studio(workspace, "delete", "r1-done", "--yes").returncode == 0
    assert not (workspace.runs / "r1-done").exists()
    missing = studio(workspace, "show", "../../etc", "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["ok"] is False


def test_a_dead_run_on_a_full_disk_keeps_the_pages_answering(workspace, monkeypatch):
    """Marking a run whose process is gone needs a write; on a full disk the reader (a page's
    status poll) gets an answer, and the next look records it once there is room."""
    import errno

    from studio.runs import store
    from studio.runs.store import reconcile_run

    run = Run(workspace.runs / "20260101-000000-gone")
    run.root.mkdir(parents=True)
    run.set_status("running", pid=2**22 + 12345, started=1.0, updated=1.0)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(store, "atomic_write_json", full)
        assert reconcile_run(run) is False
    assert run.state == "running"
    assert reconcile_run(run) is True  # space freed: recorded now
    assert run.status()["reason"] == "process_gone"


def test_a_dead_process_ends_the_wait_even_when_its_status_cannot_be_written(
    workspace, monkeypatch
):
    """A full disk during Resume: the training process exits, but neither it nor its
    watcher can write status.json, which still says running. `wait` (the CLI's) must end,
    not loop forever."""
    import errno
    import threading

    from studio.runs import launcher
    from studio.train import presets
    from studio.train.start import prepare_run

    config, preset = presets.load("cpu-demo-sft")
    run = prepare_run(workspace, config, preset=preset)
    run.set_status("running", pid=None)
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Run, "set_status", full)
    with launcher._LOCK:
        launcher._WATCHERS[run.id] = proc
    watcher = threading.Thread(target=launcher._watch, args=(run, proc), daemon=True)
    watcher.start()
    assert launcher.wait(run, timeout=60, poll=0.1) == "failed"
    watcher.join(timeout=60)
    assert not watcher.is_alive()  # the watcher did not die on the OSError either


def test_a_run_that_only_starts_is_not_said_to_wait_for_another():
    from studio.ui.run_status import explain

    assert explain({"state": "queued"}, "en") == "Starting: loading the model and the data."
    waiting = explain({"state": "queued", "reason": "waiting_for_device"}, "ja")
    assert "一度に学習できるのは 1 つの実行だけ" in waiting


def test_a_resumed_run_shows_its_new_session_at_once():
    """The interrupted session logged steps 1-5 after a checkpoint at 3; the resumed session
    has logged step 4 so far: the table and the curves show 4 (new), not 5 (stale)."""
    from studio.runs.curves import latest_records

    old = [{"kind": "train", "session": 0, "step": s, "loss": 10.0 - s} for s in range(1, 6)]
    old.append({"kind": "eval", "session": 0, "step": 3, "eval_loss": 6.5})
    new = [{"kind": "train", "session": 1, "step": 4, "loss": 1.0}]
    shown = latest_records(old + new)
    assert [(r["kind"], r["step"], r["session"]) for r in shown] == [
        ("train", 1, 0), ("train", 2, 0), ("train", 3, 0), ("eval", 3, 0), ("train", 4, 1)
    ]  # fmt: skip
    assert latest_records(old) == sorted(old, key=lambda r: (r["step"], r["kind"] != "train"))


def test_one_rule_decides_who_may_be_resumed(workspace):
    """The Train tab, `train --resume` and spawn all ask `launcher.check_resumable`."""
    import os

    from studio.runs.launcher import check_resumable
    from studio.runs.store import RunError, start_time

    for state in ("stopped", "failed", "interrupted"):
        check_resumable(make_run(workspace, f"r-{state}", state=state, losses=[2.0]))
    gone = make_run(workspace, "r-gone", state="running", losses=[2.0], pid=2**22 + 7)
    check_resumable(gone)  # running, but its process is gone: it continues
    for run_id, state, extra in (
        ("r-done", "completed", {}),
        ("r-live", "running", {"pid": os.getpid(), "pid_started": start_time(os.getpid())}),
    ):
        run = make_run(workspace, run_id, state=state, losses=[2.0], **extra)
        with pytest.raises(RunError, match=f"{run_id} is {state}") as refused:
            check_resumable(run)
        assert refused.value.code == "not_resumable"
        assert refused.value.params == {"run": run_id, "state": state}


def test_a_runs_status_is_explained_as_a_key_and_parameters():
    """The library says how a run stands; the front ends only put it in words."""
    from studio.runs.status import explain_status

    killed = explain_status({"state": "failed", "reason": "killed by SIGTERM", "message": "x"})
    assert (killed.key, killed.params) == ("train.why_signal", {"signal": "SIGTERM"})
    oom = explain_status({"state": "failed", "reason": "oom", "message": "OOM. Details: 3 GiB"})
    assert (oom.key, oom.details) == ("train.why_oom", "3 GiB")
    waiting = explain_status({"state": "queued", "reason": "waiting_for_device"})
    assert waiting.key == "train.why_queued"
    done = explain_status({"state": "completed", "message": "finished 10 steps"})
    assert done.key is None and done.message == "finished 10 steps"
    crash = explain_status({"state": "failed", "reason": "error", "message": "bad data row 3"})
    assert crash.key is None and crash.message == "bad data row 3"
