"""Runs as child processes, driven the way the CLI and the app drive them: `python -m studio
train`, SIGKILL mid-run, resume, a queue of two, stop twice, `accelerate launch` with two
CPU processes, and the CPU demo's finished model answering in the persona's style."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import REPO, child_env, wait_until

pytestmark = pytest.mark.slow


def studio(ws, *args, timeout=600):
    proc = subprocess.run(
        [sys.executable, "-m", "studio", *args, "--workspace", str(ws.root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )
    return proc


def payload(proc) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    return json.loads(lines[-1])


def losses(run) -> dict[float, float]:
    from studio.runs.curves import series

    return dict(series(run.metrics(), "loss"))


def test_cli_trains_a_preset_in_a_child_and_reports_the_run(workspace):
    from studio.runs.store import open_run

    proc = studio(workspace, "train", "cpu-demo-sft", "--set", "max_steps=3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = payload(proc)
    assert out["ok"] and out["state"] == "completed" and out["steps"] == 3
    assert "step 3/3" in proc.stderr  # the log was followed on stderr
    run = open_run(workspace, out["run"])
    assert run.info()["command"] == [
        "python",
        "-m",
        "studio",
        "train",
        "cpu-demo-sft",
        "--set",
        "max_steps=3",
    ]
    assert run.status()["pid"] != os.getpid()  # trained in its own process
    assert "[studio] step 3/3" in run.log_path.read_text()
    assert json.loads(run.scan_path.read_text())["rows"] == 330
    assert json.loads(run.estimate_path.read_text())["fits"] is True


def test_cli_rejects_bad_configs_before_starting(workspace, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tsumugi-tiny\ntraining: {learning_rate: fast, epochs: 3}\n")
    proc = studio(workspace, "train", str(bad), "--json")
    assert proc.returncode == 1
    error = payload(proc)["error"]["message"]
    assert "training" in error and ("epochs" in error or "learning_rate" in error)
    proc = studio(workspace, "train", "cpu-demo-sft", "--set", "lora.rank=8")
    assert proc.returncode == 1 and "unknown field 'lora.rank'" in proc.stderr
    assert not list(workspace.runs.iterdir())  # nothing was started
    proc = studio(workspace, "train", "cpu-demo-sft", "--set", "stage=pretrain")
    assert proc.returncode == 1
    assert "line 1: a messages row cannot be used for continued pre-training" in proc.stderr
    assert not list(workspace.runs.iterdir())  # refused before a run directory was made
    listed = payload(studio(workspace, "train", "--list", "--json"))
    assert "cpu-demo-sft" in {p["name"] for p in listed["presets"]}
    check = payload(studio(workspace, "train", "qwen2.5-7b-qlora", "--check", "--json"))
    assert check["scan"] is None and "not downloaded yet" in check["scan_error"]
    assert check["estimate"]["parts"]["weights"] > 3 * 2**30  # estimated from the preset
    proc = studio(workspace, "train", "qwen2.5-7b-qlora", "--json")  # starting fetches: offline
    assert proc.returncode == 1 and "hub" in payload(proc)["error"]["message"]
    assert not list(workspace.runs.iterdir())


def test_sigkill_mid_run_is_reported_and_resume_reproduces_the_curve(workspace):
    from studio.runs import launcher
    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import prepare_run

    sets = ["max_steps=24", "save_steps=5", "logging_steps=1", "validation_split=0"]
    config, preset = presets.load("cpu-demo-sft", sets)
    straight = prepare_run(workspace, config, preset=preset)
    assert execute(straight, workspace) == 0

    run = prepare_run(workspace, config, preset=preset)
    proc = launcher.spawn(run, workspace)
    wait_until(lambda: run.last_checkpoint() is not None and (run.status().get("step") or 0) > 6)
    os.kill(proc.pid, signal.SIGKILL)
    assert launcher.wait(run, timeout=30) == "failed"
    status = run.status()
    assert status["reason"] == "killed by SIGKILL" and "resume" in status["message"]
    kept = losses(run)
    assert kept  # metrics written before the kill are intact

    launcher.spawn(run, workspace, resume=True)
    assert launcher.wait(run, timeout=300) == "completed", run.log_tail()
    expected, resumed = losses(straight), losses(run)
    assert sorted(resumed) == sorted(expected)
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), step
    assert "resuming from checkpoint-" in run.log_path.read_text()


def test_second_run_queues_until_the_first_ends(workspace):
    from studio.runs import launcher
    from studio.train import presets
    from studio.train.start import prepare_run

    config, preset = presets.load("cpu-demo-sft", ["max_steps=15", "save_steps=100"])
    first = prepare_run(workspace, config, preset=preset)
    second = prepare_run(workspace, config, preset=preset)
    launcher.spawn(first, workspace)
    wait_until(lambda: first.state == "running")
    launcher.spawn(second, workspace)
    wait_until(lambda: (second.status().get("pid") or 0) > 0)
    time.sleep(1.5)
    assert first.state == "running" and second.state == "queued"
    assert launcher.wait(first, timeout=300) == "completed"
    assert launcher.wait(second, timeout=300) == "completed"
    assert second.status()["started"] >= first.status()["ended"] - 0.5


def test_stop_is_graceful_once_and_kills_the_second_time(workspace):
    from studio.runs import launcher
    from studio.train import presets
    from studio.train.start import prepare_run

    config, preset = presets.load("cpu-demo-sft", ["max_steps=400", "save_steps=1000"])
    graceful = prepare_run(workspace, config, preset=preset)
    launcher.spawn(graceful, workspace)
    wait_until(lambda: (graceful.status().get("step") or 0) >= 2)
    assert launcher.stop(graceful) == "stopping"
    assert launcher.wait(graceful, timeout=60) == "stopped"
    assert graceful.last_checkpoint() is not None  # saved at the step it stopped on
    assert graceful.status()["reason"] == "stop_requested"

    hard = prepare_run(workspace, config, preset=preset)
    launcher.spawn(hard, workspace)
    wait_until(lambda: hard.state == "running")
    assert launcher.stop(hard) == "stopping"
    assert launcher.stop(hard) == "killed"
    assert launcher.wait(hard, timeout=30) == "stopped"
    assert hard.status()["reason"] == "killed"
    assert launcher.stop(hard) == "not_running"


def test_accelerate_launch_trains_one_run_with_two_cpu_processes(workspace):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    assert accelerate, "accelerate's launcher is installed with requirements.txt"
    cmd = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--num_cpu_threads_per_process", "1",
        "-m", "studio", "train", "cpu-demo-sft", "--set", "max_steps=3", "--set", "logging_steps=1",
        "--workspace", str(workspace.root), "--json",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
        env=child_env(PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES=""),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(o["rank"] for o in outs) == [0, 1]
    assert len({o["run"] for o in outs}) == 1  # both processes trained the same run
    from studio.runs.store import open_run

    run = open_run(workspace, outs[0]["run"])
    assert run.state == "completed" and run.info()["world_size"] == 2
    assert run.info()["command"][:2] == ["accelerate", "launch"]
    train = [m for m in run.metrics() if m["kind"] == "train"]
    assert [m["step"] for m in train] == [1, 2, 3]
    # two processes each take a batch per step: an epoch goes twice as fast
    config = yaml.safe_load(run.config_path.read_text())
    assert config["training"]["per_device_train_batch_size"] == 4
    assert train[0]["epoch"] == pytest.approx(2 * 4 / 73, abs=0.02)


PROMPTS = ["こんにちは。", "お茶の美味しい淹れ方を教えて。", "富士山の高さは？"]
PERSONA = ("ですわ", "ますわ", "ますの", "わたくし", "ごきげんよう", "ませ")


def test_cpu_demo_changes_the_style_and_stops_at_end_of_turn(workspace):
    """The Train tab's default preset, as a newcomer runs it: the finished model answers in
    the persona's style and ends its turns, where the base model does neither."""
    from studio.generate import GenerationSettings, generate
    from studio.models.load import load_model, resolve_source

    started = time.monotonic()
    proc = studio(workspace, "train", "cpu-demo-sft", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = payload(proc)
    minutes = (time.monotonic() - started) / 60
    assert out["state"] == "completed"
    settings = GenerationSettings(max_new_tokens=80, greedy=True)

    def answers(spec):
        model = load_model(resolve_source(spec, named_dirs=workspace.model_dirs()))
        return [
            generate(model, p, settings, chat=True, system="あなたは上品なお嬢様です。")
            for p in PROMPTS
        ]

    tuned = answers(f"run:{out['run']}")
    base = answers("tsumugi-tiny")
    print(f"demo trained in {minutes:.1f} min; loss {out['last_loss']:.3f}")
    for r in tuned:
        print("tuned:", r.stop_reason, r.text)
    assert sum(r.stop_reason == "eos" for r in tuned) >= 2
    assert sum(any(w in r.text for w in PERSONA) for r in tuned) >= 2
    assert not any(any(w in r.text for w in PERSONA) for r in base)
    # the chat's warning stays quiet on the persona model where it ends its turns
    assert sum("length_no_eos" in r.warnings for r in tuned) <= 1
    assert not any("literal_eos" in r.warnings for r in tuned)

    # what the Compare tab shows a newcomer: base and fine-tune side by side
    from studio.compare import compare
    from studio.models.pool import ModelPool

    pool = ModelPool()
    named = workspace.model_dirs()
    grid = compare(
        lambda spec: pool.use(resolve_source(spec, named_dirs=named)),
        ["tsumugi-tiny", f"run:{out['run']}"],
        PROMPTS,
        settings,
        chat=True,
        system="あなたは上品なお嬢様です。",
    )
    base_row, tuned_row = grid.summary()
    assert tuned_row["eos"] >= 2 and tuned_row["eos"] > base_row["eos"]
    assert [c.text for c in grid.cells if c.model != "tsumugi-tiny"] == [r.text for r in tuned]
    assert len(pool.loaded()) == 1  # the run is an adapter: one base serves both columns


# The embedded model's template with <|im_end|> moved outside the {% generation %} block:
# the end of each assistant turn is masked away, so the model never learns to stop.
EOS_MASKED_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}"
    "{% endgeneration %}{{ '<|im_end|>' + '\\n' }}{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_a_model_trained_without_eos_gets_the_chat_warning(workspace, tmp_path):
    """The mistake the inspector blocks, trained anyway: replies run into the limit, the
    chat says so, and adapter switching over its checkpoints gives what each checkpoint
    gives when loaded alone."""
    from studio.chat import reply
    from studio.generate import GenerationSettings, generate
    from studio.models.load import load_model, resolve_source
    from studio.models.pool import ModelPool

    config = yaml.safe_load((REPO / "presets" / "cpu-demo-sft.yaml").read_text())
    config.pop("description")
    config["encoding"]["chat_template"] = EOS_MASKED_TEMPLATE
    config["training"].update(num_train_epochs=3, eval_strategy="no", save_steps=25)
    config["validation_split"] = 0.0
    path = tmp_path / "no-eos.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    check = payload(studio(workspace, "train", str(path), "--check", "--json"))
    assert check["blocked"]  # the inspector sees the masked end of turn
    proc = studio(workspace, "train", str(path), "--set", "allow_blocked=true", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = payload(proc)["run"]

    settings = GenerationSettings(max_new_tokens=60, greedy=True)
    pool = ModelPool()
    named = workspace.model_dirs()
    with pool.use(resolve_source(f"run:{run_id}", named_dirs=named)) as loaded:
        results = [
            list(reply(loaded, [], p, settings, system="あなたは上品なお嬢様です。"))[-1]
            for p in PROMPTS
        ]
    for r in results:
        print("no-eos:", r.stop_reason, r.warnings, r.text[:60])
    assert all("length_no_eos" in r.warnings for r in results)

    checkpoints = list(workspace.checkpoint_dirs(run_id))
    assert len(checkpoints) >= 2
    for spec in [*checkpoints, checkpoints[0]]:
        with pool.use(resolve_source(spec, named_dirs=named)) as loaded:
            shared = generate(loaded, PROMPTS[1], settings, chat=True).text
        alone = load_model(resolve_source(spec, named_dirs=named))
        assert shared == generate(alone, PROMPTS[1], settings, chat=True).text
    assert len(pool.loaded()) == 1


def test_a_new_app_reattaches_to_a_live_run_and_marks_a_dead_one(workspace):
    """The run was started by another process (a detached CLI, or the app before a
    restart): this process is not its parent, yet it sees it live, stops it, and notices
    when a run's process is gone."""
    from studio.runs import launcher
    from studio.runs.store import open_run, reconcile

    out = payload(
        studio(
            workspace,
            "train",
            "cpu-demo-sft",
            "--set",
            "max_steps=400",
            "--set",
            "save_steps=1000",
            "--detach",
            "--json",
        )
    )
    run = open_run(workspace, out["run"])
    wait_until(lambda: run.state == "running" and (run.status().get("step") or 0) >= 1)
    assert reconcile(workspace) == []  # alive: left alone, re-attached from disk
    step = run.status()["step"]
    wait_until(lambda: run.status()["step"] > step, timeout=60)  # and it keeps training
    assert launcher.stop(run) == "stopping"  # not our child: SIGTERM by pid + the stop file
    wait_until(lambda: run.state == "stopped", timeout=60)
    assert run.last_checkpoint() is not None

    launcher.spawn(run, workspace, resume=True)
    wait_until(lambda: run.state == "running")
    os.killpg(run.status()["pgid"], signal.SIGKILL)
    wait_until(lambda: run.state != "running", timeout=30)
    # our watcher saw the signal; a process that was not the parent finds the run dead
    assert run.status()["reason"] == "killed by SIGKILL"
    run.set_status("running")  # as if the app had been down when it died
    assert reconcile(workspace) == [run.id]
    assert run.state == "interrupted" and "resume" in run.status()["message"]


def test_a_run_that_fails_is_not_ok_in_json(workspace, tmp_path):
    """Trained anyway although no token carries loss (a template that rewrites earlier
    turns: assistant turns cannot be found): the run fails, the exit status is 1 and the
    JSON says ok: false, not ok: true with state failed."""
    template = EOS_MASKED_TEMPLATE.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    template = template.replace(
        "message['content']", "(message['content'] if loop.last else message['content'][:2])"
    )
    config = yaml.safe_load((REPO / "presets" / "cpu-demo-sft.yaml").read_text())
    config.pop("description")
    config["encoding"]["chat_template"] = template
    config["training"].update(max_steps=2, eval_strategy="no")
    path = tmp_path / "unmarked.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    proc = studio(workspace, "train", str(path), "--set", "allow_blocked=true", "--json")
    out = payload(proc)
    assert proc.returncode == 1 and out["state"] == "failed" and out["ok"] is False
