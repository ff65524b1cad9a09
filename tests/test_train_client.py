"""The Train tab through gradio_client, on `python app.py` as a user starts it; and the
promise that the CLI and the UI produce the same run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, child_env, generate_args, wait_state
from tests.conftest import train_form as form

pytestmark = [pytest.mark.client, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(running_app):
    from gradio_client import Client

    return Client(running_app["url"], analytics_enabled=False, verbose=False)


def test_check_shows_the_scan_the_estimate_and_the_command(client):
    message, scan, estimate, command = client.predict(*form(), "en", api_name="/train_check")
    assert message == ""
    assert "330 rows" in scan and "No problems found" in scan
    assert 'data-fits="true"' in estimate and "Expected peak" in estimate
    from studio.hardware import pick_device

    if pick_device() == "cpu":  # the GPU figures say they are a GPU's
        assert "No GPU here: this run trains on the CPU" in estimate
    assert command.startswith("python -m studio train --workspace ")
    assert "cpu-demo-sft" in command
    _, _, _, changed = client.predict(
        *form(**{"training.learning_rate": 0.001, "lora.r": 8}), "en", api_name="/train_check"
    )
    assert "--set training.learning_rate=0.001" in changed and "--set lora.r=8" in changed
    ja = client.predict(*form(), "ja", api_name="/train_check")
    assert "行" in ja[1] and "GiB" in ja[2]


def test_a_bad_value_is_reported_and_starts_nothing(client, running_app):
    runs_before = set((running_app["workspace"] / "runs").glob("*"))
    message, *_ = client.predict(
        *form(**{"training.per_device_train_batch_size": 0}), "en", api_name="/train_start"
    )
    assert "per_device_train_batch_size must be greater than 0" in message
    assert set((running_app["workspace"] / "runs").glob("*")) == runs_before


def test_a_run_the_inspector_finds_broken_is_refused_unless_allowed(client, running_app):
    runs = running_app["workspace"] / "runs"
    before = set(runs.glob("*"))
    broken = form(**{"training.max_steps": 2})
    broken[1], broken[3] = "teaching-chat-broken/v0001", "seed-004-broken"
    message, scan, *_ = client.predict(*broken, "en", api_name="/train_start")
    assert "label inspector found problems" in message and "eos_masked" in message
    ja, *_ = client.predict(*broken, "ja", api_name="/train_start")
    assert "ラベル検査" in ja and "eos_masked" in ja  # in the page's language
    assert 'data-code="eos_masked"' in scan
    assert set(runs.glob("*")) == before
    allowed = form(**{"training.max_steps": 2, "allow_blocked": True})
    allowed[1], allowed[3] = broken[1], broken[3]
    message, *_, picked = client.predict(*allowed, "en", api_name="/train_start")
    assert message.startswith("Started run ")
    wait_state(client, picked if isinstance(picked, str) else picked["value"], ["completed"])


def test_a_run_the_estimate_says_cannot_fit_is_refused_unless_allowed(client, running_app):
    runs = running_app["workspace"] / "runs"
    before = set(runs.glob("*"))
    huge = form(**{"training.max_steps": 2, "lora.r": 1_000_000})
    message, _, estimate, *_ = client.predict(*huge, "en", api_name="/train_start")
    assert message.startswith("⚠️ Not started: the memory estimate says"), message
    assert "Train even when the memory estimate does not fit" in message
    assert 'data-fits="false"' in estimate
    ja, *_ = client.predict(*huge, "ja", api_name="/train_start")
    assert "開始しませんでした" in ja
    assert set(runs.glob("*")) == before
    # the user may insist (here on a tiny limit that the 2-step demo run is far from needing)
    allowed = form(**{"training.max_steps": 2, "gpu_memory_gib": 0.001, "allow_over_memory": True})
    message, *_, picked = client.predict(*allowed, "en", api_name="/train_start")
    assert message.startswith("Started run "), message
    wait_state(client, picked if isinstance(picked, str) else picked["value"], ["completed"])


def test_start_stop_resume_from_the_ui(client, running_app):
    message, _, _, _, picked = client.predict(
        *form(**{"training.max_steps": 300, "training.save_steps": 1000}),
        "en",
        api_name="/train_start",
    )
    assert message.startswith("Started run ")
    run_id = picked if isinstance(picked, str) else picked["value"]
    wait_state(client, run_id, ["running"])
    status, _, log = client.predict(
        run_id, 0.0, "loss", "step", "linear", "en", api_name="/train_status"
    )
    message = client.predict(run_id, "en", api_name="/train_stop")
    assert message.startswith(f"Stopping {run_id}")
    status = wait_state(client, run_id, ["stopped"], timeout=120)
    assert "stopped" in status
    assert 'class="run-note"' in status and "run-message" not in status  # as asked: not red
    message, _ = client.predict(run_id, "en", api_name="/train_resume")
    assert message.startswith(f"Resumed run {run_id}")
    wait_state(client, run_id, ["running"])
    client.predict(run_id, "en", api_name="/train_stop")
    status = wait_state(client, run_id, ["stopped"], timeout=120)
    _, plot, log = client.predict(
        run_id, 0.0, "loss", "step", "linear", "en", api_name="/train_status"
    )
    assert "resuming from checkpoint-" in log or "checkpoint saved" in log


def test_cli_and_ui_produce_identical_run_directories(client, running_app):
    from studio.runs.store import Run

    ws = running_app["workspace"]
    message, _, _, _, picked = client.predict(
        *form(**{"training.max_steps": 3}),
        "en",
        api_name="/train_start",
    )
    ui_run = Run(ws / "runs" / (picked if isinstance(picked, str) else picked["value"]))
    wait_state(client, ui_run.id, ["completed"])
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--set", "max_steps=3",
         "--workspace", str(ws), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli_run = Run(ws / "runs" / json.loads(proc.stdout)["run"])

    def files(run):
        return sorted(str(p.relative_to(run.root)) for p in run.root.rglob("*") if p.is_file())

    assert files(ui_run) == files(cli_run)
    assert ui_run.config_path.read_text() == cli_run.config_path.read_text()
    assert yaml.safe_load(cli_run.config_path.read_text())["training"]["max_steps"] == 3
    ui_losses = [m["loss"] for m in ui_run.metrics() if m["kind"] == "train"]
    cli_losses = [m["loss"] for m in cli_run.metrics() if m["kind"] == "train"]
    assert ui_losses == pytest.approx(cli_losses, rel=1e-5)
    assert ui_run.info()["preset"] == cli_run.info()["preset"] == "cpu-demo-sft"
    assert json.loads(ui_run.scan_path.read_text()) | {"seconds": 0} == json.loads(
        cli_run.scan_path.read_text()
    ) | {"seconds": 0}
    # The live curve's other views: learning rate against tokens seen.
    _, plot, _ = client.predict(
        ui_run.id, 0.0, "learning_rate", "tokens", "linear", "en", api_name="/train_status"
    )
    rows = [r for r in plot["data"] if r[1] is not None]  # the value alone: ui/plots.py
    assert {r[2] for r in rows} == {"learning_rate"}
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and rows[-1][0] > 1000
    # What the run trained is a model every tab can use: the Model tab generates with it.
    kwargs = generate_args(
        model=f"run:{ui_run.id}", prompt="こんにちは", chat=True, max_new_tokens=8, greedy=True
    )
    text, stats = client.predict(**kwargs, api_name="/generate")
    assert text and "tokens" in stats


def test_runs_history_and_comparison_through_the_client(client, running_app):
    from studio.runs.store import list_runs
    from studio.workspace import open_workspace

    ws = open_workspace(running_app["workspace"])
    ids = [r.id for r in list_runs(ws)][:2]
    assert len(ids) == 2
    history_table = client.predict("", [], "created", "en", api_name="/runs_history")
    assert {row[0] for row in history_table["data"]} >= set(ids)
    caption, plot, summary, diff = client.predict(
        ids, "loss", "tokens", "log", 0.0, "ja", api_name="/runs_compare"
    )
    assert "log10" in caption and "トークン数" in caption
    assert [row[0] for row in summary["data"]] == ["#1", "#2"]
    assert summary["headers"][1] == "実行 ID"
    assert diff["headers"][1:] == ids
    png = client.predict(ids, "loss", "step", "linear", 0.5, api_name="/runs_export_png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_check_takes_the_evaluation_settings_and_says_the_evaluation_pass(client):
    """The Train tab's evaluation fields reach the config: the check's estimate names the
    evaluation pass, the equivalent command carries the settings, and a metric the suite
    does not report is refused in the page's language before anything starts."""
    chosen = {
        "evaluation.suites": ["sample-eval-rank"],
        "evaluation.metric_for_best_model": "sample-eval-rank.mrr_full",
        "evaluation.early_stopping_patience": 2,
    }
    message, _, estimate, command = client.predict(*form(**chosen), "en", api_name="/train_check")
    assert message == ""
    assert "evaluation pass" in estimate
    assert "--set evaluation.early_stopping_patience=2" in command
    assert "evaluation.suites" in command and "sample-eval-rank.mrr_full" in command
    wrong = {**chosen, "evaluation.metric_for_best_model": "sample-eval-rank.acc"}
    message, *_ = client.predict(*form(**wrong), "ja", api_name="/train_check")
    assert "評価セット sample-eval-rank には指標 acc がありません" in message


def test_the_kernel_settings_reach_the_config(client):
    """The Train tab's attention and fused-loss fields reach the config and the equivalent
    command (`off` quoted, as YAML 1.1 would read it as false)."""
    chosen = {"training.attention": "sdpa", "training.fused_loss": "off"}
    message, _, _, command = client.predict(*form(**chosen), "en", api_name="/train_check")
    assert message == ""
    assert "--set training.attention=sdpa" in command
    assert "training.fused_loss=" in command and "off" in command.split("fused_loss=")[1]
    flash = {"training.attention": "flash_attention_2"}
    message, *_ = client.predict(*form(**flash), "ja", api_name="/train_check")
    assert "flash-attn パッケージ" in message and "auto にしてください" in message
