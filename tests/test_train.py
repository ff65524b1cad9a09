"""Training library: run config, presets, data through the inspector's path, and runs
trained in this process (the same `execute` the child process runs)."""

from __future__ import annotations

import errno
import json

import pytest
import yaml

from studio.labels.encode import Collator, EncodingSettings, encode_example, pack, resolve_tokens
from studio.runs.store import Run, list_runs, reconcile
from studio.train import presets
from studio.train.config import ConfigError, RunConfig, apply_sets, settable_fields
from studio.train.data import DataError, build, read_rows, split_rows
from studio.train.process import execute
from studio.train.start import prepare_run

TINY = {"training": {"max_steps": 4, "save_steps": 2, "logging_steps": 1}}


def demo(workspace, *sets, name="cpu-demo-sft"):
    config, preset = presets.load(name, list(sets))
    return config, preset


def train_here(workspace, config, preset=None, *, resume_run=None):
    run = resume_run or prepare_run(workspace, config, preset=preset)
    code = execute(run, workspace, resume=resume_run is not None)
    return run, code


# --- config -----------------------------------------------------------------------------


def test_config_uses_transformers_names_and_reads_yaml_floats():
    config = RunConfig.from_dict(
        yaml.safe_load("training: {learning_rate: 2e-4, max_steps: 10.0}\nlora: {r: 8}")
    )
    assert config.training.learning_rate == pytest.approx(2e-4)  # YAML 1.1 read it as text
    assert config.training.max_steps == 10 and config.lora.r == 8
    for name in (
        "learning_rate",
        "max_steps",
        "num_train_epochs",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "lora_alpha",
        "use_rslora",
        "use_dora",
    ):
        assert name in settable_fields()


@pytest.mark.parametrize(
    "data, words",
    [
        ({"learning_rat": 1}, ["unknown field", "learning_rat"]),
        ({"training": {"bogus": 1}}, ["in training", "bogus"]),
        ({"training": {"learning_rate": "fast"}}, ["training.learning_rate", "a number"]),
        ({"lora": {"r": 2.5}}, ["lora.r", "an integer"]),
        ({"lora": {"use_dora": "sometimes"}}, ["lora.use_dora", "true/false"]),
        ({"method": "prefix"}, ["method must be one of"]),
        ({"encoding": {"packing": "tight"}}, ["encoding", "packing"]),
        ({"training": {"per_device_train_batch_size": 0}}, ["greater than 0"]),
        ({"validation_split": 1.5}, ["validation_split"]),
        ({"training": "fast"}, ["training must be a mapping"]),
    ],
)
def test_bad_configs_name_the_field(data, words):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(data)
    for word in words:
        assert word in str(err.value)


def test_integer_fields_follow_the_annotations():
    from studio.train.config import is_integer_field

    assert is_integer_field("training.max_steps") and is_integer_field("encoding.max_length")
    assert is_integer_field("training.eval_steps")  # int | None
    assert not is_integer_field("training.learning_rate")
    assert not is_integer_field("lora.use_dora")  # a bool is not a number of things


def test_set_overrides_bare_and_dotted_names():
    data = apply_sets(
        RunConfig().to_dict(),
        [
            "learning_rate=1e-3",
            "lora.r=4",
            "max_length=128",
            "lora.target_modules=[q_proj, v_proj]",
        ],
    )
    config = RunConfig.from_dict(data)
    assert config.training.learning_rate == pytest.approx(1e-3)
    assert config.lora.r == 4 and config.encoding.max_length == 128
    assert config.lora.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="unknown field 'learning'"):
        apply_sets({}, ["learning=1"])
    assert apply_sets({}, ["packing=off"])["encoding"]["packing"] == "off"  # not YAML's False
    assert RunConfig.from_dict(yaml.safe_load("encoding: {packing: off}")).encoding.packing == "off"
    with pytest.raises(ConfigError, match="did you mean lora.target_modules, galore"):
        apply_sets({}, ["target_modules=[q_proj]"])  # two sections have it: say which
    with pytest.raises(ConfigError, match="key=value"):
        apply_sets({}, ["learning_rate"])


def test_config_round_trips_through_yaml():
    config = RunConfig.from_dict({"method": "galore", "galore": {"rank": 64}, **TINY})
    again = RunConfig.from_dict(yaml.safe_load(config.to_yaml()))
    assert again == config


def test_every_preset_loads_and_real_models_carry_architecture():
    names = presets.list_presets()
    assert {"cpu-demo-sft", "cpu-demo-pretrain", "calm2-7b-galore"} <= set(names)
    for name in names:
        config, preset = presets.load(name)
        assert preset == name and presets.describe(name, "ja") and presets.describe(name, "en")
        if config.model != "tsumugi-tiny":
            assert config.architecture["hidden_size"] > 0, name
    with pytest.raises(ConfigError, match="no preset named"):
        presets.load("no-such-preset")


# --- data ---------------------------------------------------------------------------------


def test_stage_needs_matching_rows(workspace):
    with pytest.raises(DataError, match=r"line 1: a messages row cannot be used for continued"):
        read_rows(workspace, ["sample-chat-ojousama"], "pretrain")
    with pytest.raises(DataError, match="response marker"):
        read_rows(workspace, ["sample-corpus"], "sft", EncodingSettings())
    with pytest.raises(DataError, match="no dataset 'nope'"):
        read_rows(workspace, ["nope"], "sft")


def test_split_is_by_row_and_reproducible():
    rows = [{"text": str(i)} for i in range(100)]
    train, held = split_rows(rows, 0.1, seed=1)
    assert len(held) == 10 and len(train) == 90
    assert split_rows(rows, 0.1, seed=1) == (train, held)
    assert not {r["text"] for r in held} & {r["text"] for r in train}


def test_trainer_batches_are_the_inspectors_batches(workspace):
    """What the inspector shows is what trains: the first batch the Trainer hands the model
    equals the inspector's collated batch for the same sequences."""
    import torch

    from studio.models.load import load_tokenizer
    from studio.train import backends
    from studio.train.process import resolve_model
    from studio.train.trainer import build_trainer

    config, _ = demo(workspace, "max_steps=1")
    run = prepare_run(workspace, config)
    config = RunConfig.from_dict(yaml.safe_load(run.config_path.read_text()))
    source = resolve_model(workspace, config)
    tokenizer = load_tokenizer(source)
    tok = resolve_tokens(tokenizer, config.encoding)
    data = build(workspace, config, tok)
    prepared = backends.prepare(config, source, tokenizer)
    trainer = build_trainer(run, config, prepared, tok, data, stop=False)
    batch = next(iter(trainer.get_train_dataloader()))
    # Which sequences did the sampler pick? Find each batch row among the encoded sequences.
    picked = []
    for row in batch["input_ids"].tolist():
        matches = [s for s in data.train if row[: len(s.input_ids)] == s.input_ids]
        picked.append(max(matches, key=lambda s: len(s.input_ids)))
    expected = Collator.for_settings(tok, config.encoding)(picked)
    assert batch.pop("num_tokens").item() == sum(len(s.input_ids) for s in picked)
    assert set(batch) == set(expected)
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    # and those sequences are the inspector's encode_example + pack of the training rows
    rows, _ = read_rows(workspace, config.datasets, "sft")
    train_rows, _ = split_rows(rows, config.validation_split, config.training.seed)
    again = pack(
        [encode_example(r, tok, config.encoding, row=i) for i, r in enumerate(train_rows)],
        config.encoding,
        tok,
    )
    assert [s.input_ids for s in again] == [s.input_ids for s in data.train]
    assert [s.labels for s in again] == [s.labels for s in data.train]


# --- runs in this process -------------------------------------------------------------------


def test_a_run_writes_config_status_metrics_checkpoints_and_an_adapter(workspace):
    config, preset = demo(workspace, "max_steps=4", "save_steps=2", "logging_steps=1")
    run, code = train_here(workspace, config, preset)
    assert code == 0
    status = run.status()
    assert status["state"] == "completed" and status["step"] == 4
    saved = RunConfig.from_dict(yaml.safe_load(run.config_path.read_text()))
    assert saved.dataset == "sample-chat-ojousama/v0001"  # resolved to the exact version
    train = [m for m in run.metrics() if m["kind"] == "train"]
    assert [m["step"] for m in train] == [1, 2, 3, 4]
    for key in (
        "loss",
        "learning_rate",
        "grad_norm",
        "tokens",
        "tokens_per_s",
        "elapsed",
        "peak_memory_mb",
        "epoch",
    ):
        assert train[-1][key] is not None, key
    assert train[-1]["tokens"] > train[0]["tokens"] > 0
    assert any(m["kind"] == "eval" for m in run.metrics())
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2", "checkpoint-4"]
    final = run.final_dir
    assert (final / "adapter_model.safetensors").is_file()
    assert (final / "tokenizer.json").is_file() and not (final / "training_args.bin").exists()
    info = run.info()
    assert info["backend"] == "transformers" and info["device"] == "cpu"
    assert info["precision"] == "fp32" and info["versions"]["torch"]
    assert 0 < info["trainable_parameters"] < info["total_parameters"]
    assert f"run:{run.id}" in workspace.model_dirs()


def test_graceful_stop_then_resume_reproduces_the_uninterrupted_curve(workspace):
    sets = ("max_steps=6", "save_steps=3", "logging_steps=1", "validation_split=0")
    config, preset = demo(workspace, *sets)
    straight, _ = train_here(workspace, config, preset)
    expected = {m["step"]: m["loss"] for m in straight.metrics() if m["kind"] == "train"}

    run = prepare_run(workspace, config, preset=preset)
    import threading

    def stop_when_running():
        import time

        while (run.status().get("step") or 0) < 1:
            time.sleep(0.05)
        run.request_stop()  # as the Stop button does: ends after the next step, saving

    threading.Thread(target=stop_when_running, daemon=True).start()
    assert execute(run, workspace) == 0
    assert run.state == "stopped"
    stopped_at = run.last_checkpoint()
    assert stopped_at is not None and not (run.final_dir).exists()
    step = int(stopped_at.name.split("-")[1])
    assert 1 <= step < 6

    assert execute(run, workspace, resume=True) == 0
    assert run.state == "completed"
    from studio.runs.curves import series

    resumed = dict(series(run.metrics(), "loss"))
    assert sorted(resumed) == sorted(float(s) for s in expected)
    for s, loss in expected.items():
        assert resumed[float(s)] == pytest.approx(loss, rel=1e-4, abs=1e-5), s
    tokens = [m["tokens"] for m in run.metrics() if m["kind"] == "train"]
    assert tokens[-1] == [m["tokens"] for m in straight.metrics() if m["kind"] == "train"][-1]


def test_out_of_memory_fails_with_advice_and_keeps_earlier_work(workspace, monkeypatch):
    import torch

    config, preset = demo(workspace, "max_steps=6", "save_steps=2", "validation_split=0")
    calls = {"n": 0}
    from studio.train import trainer

    original = trainer.Collator.__call__

    def collate_then_oom(self, sequences):
        calls["n"] += 1
        if calls["n"] > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, sequences)

    monkeypatch.setattr(trainer.Collator, "__call__", collate_then_oom)
    run, code = train_here(workspace, config, preset)
    assert code == 1
    status = run.status()
    assert status["state"] == "failed" and status["reason"] == "oom"
    assert "per_device_train_batch_size" in status["message"]
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2"]
    assert len([m for m in run.metrics() if m["kind"] == "train"]) >= 2


def test_a_cpu_allocation_failure_is_out_of_memory_not_an_exception():
    import torch

    from studio.train.process import classify

    with pytest.raises(RuntimeError) as raised:  # torch's CPU allocator, not OutOfMemoryError
        torch.empty(2**50, dtype=torch.uint8)
    reason, message = classify(raised.value)
    assert reason == "oom" and "per_device_train_batch_size" in message
    try:  # wrapped by a library on the way up
        raise ValueError("forward failed") from raised.value
    except ValueError as wrapped:
        assert classify(wrapped)[0] == "oom"
    assert classify(RuntimeError("shape mismatch"))[0] == "exception"


def test_a_run_the_estimate_says_cannot_fit_is_not_started(workspace):
    from studio.train.start import TooLarge, preflight, start

    config, preset = presets.load("cpu-demo-sft", ["lora.r=1000000", "max_steps=2"])
    checked = preflight(workspace, config)
    assert checked.too_large and checked.to_dict()["too_large"]
    with pytest.raises(TooLarge, match="allow_over_memory"):
        start(workspace, config, preset=preset, checked=checked)
    assert list_runs(workspace) == []
    allowed, _ = presets.load("cpu-demo-sft", ["lora.r=1000000", "allow_over_memory=true"])
    assert not preflight(workspace, allowed).too_large


def test_disk_full_while_saving_keeps_the_complete_checkpoints(workspace, monkeypatch):
    import torch

    config, preset = demo(workspace, "max_steps=6", "save_steps=2", "validation_split=0")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f):
            with open(f, "wb") as out:
                out.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    run, code = train_here(workspace, config, preset)
    assert code == 1
    status = run.status()
    assert status["state"] == "failed" and status["reason"] == "disk_full"
    assert "resume" in status["message"]
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2"]
    assert (run.checkpoints_dir / "checkpoint-4.incomplete").is_dir()
    assert run.last_checkpoint().name == "checkpoint-2"


def test_model_folder_without_weights_fails_clearly(workspace, tmp_path):
    import shutil

    from studio.paths import EMBEDDED_MODEL_DIR

    folder = tmp_path / "no-weights"
    shutil.copytree(EMBEDDED_MODEL_DIR, folder)
    (folder / "model.safetensors").unlink()
    config, preset = demo(workspace, "max_steps=2", f"model={folder}")
    run, code = train_here(workspace, config, preset)
    assert code == 1
    status = run.status()
    assert status["state"] == "failed" and status["reason"] == "model"
    assert "has no weights" in status["message"]


def test_pretrain_stage_on_chat_rows_fails_with_the_line(workspace):
    config, preset = demo(workspace, "max_steps=2", "stage=pretrain")
    run, code = train_here(workspace, config, preset)
    assert code == 1
    assert run.status()["reason"] == "data"
    assert "line 1" in run.status()["message"]


def test_continued_pretraining_packs_documents_with_eos_between(workspace):
    config, preset = demo(workspace, "max_steps=2", "save_steps=2", name="cpu-demo-pretrain")
    assert config.encoding.stage == "pretrain" and config.encoding.packing == "isolated"
    run, code = train_here(workspace, config, preset)
    assert code == 0 and run.state == "completed"
    assert (run.final_dir / "model.safetensors").is_file()  # full fine-tuning: a whole model
    from studio.models.load import load_tokenizer
    from studio.train.process import resolve_model

    tokenizer = load_tokenizer(resolve_model(workspace, config))
    tok = resolve_tokens(tokenizer, config.encoding)
    shared = 0
    for seq in build(workspace, config, tok).train:
        starts = [i for i, p in enumerate(seq.position_ids) if p == 0]
        shared += len(starts) > 1  # several documents share a sequence ...
        for start in starts[1:]:
            assert seq.input_ids[start - 1] == tokenizer.eos_token_id  # ... each ends in EOS
            assert seq.input_ids[start] == tokenizer.bos_token_id
    assert shared > 0


def test_galore_trains_on_cpu(workspace):
    config, preset = demo(
        workspace,
        "max_steps=2",
        "method=galore",
        "galore.rank=8",
        "galore.update_proj_gap=1",
        "save_steps=100",
    )
    run, code = train_here(workspace, config, preset)
    assert code == 0, run.log_tail()
    assert run.info()["optim"] == "galore_adamw"
    assert run.info()["trainable_parameters"] == run.info()["total_parameters"]


def test_qlora_on_cpu_explains_it_needs_cuda(workspace):
    config, preset = demo(workspace, "max_steps=2", "method=qlora")
    run, code = train_here(workspace, config, preset)
    assert code == 1
    assert run.status()["reason"] == "method" and "CUDA" in run.status()["message"]


def test_lora_options_reach_peft(workspace):
    from studio.models.load import load_tokenizer
    from studio.train import backends
    from studio.train.process import resolve_model

    config, _ = demo(
        workspace,
        "lora.r=4",
        "lora.use_rslora=true",
        "lora.use_dora=true",
        "lora.target_modules=[q_proj, v_proj]",
    )
    source = resolve_model(workspace, config)
    prepared = backends.prepare(config, source, load_tokenizer(source))
    peft_config = prepared.model.peft_config["default"]
    assert peft_config.r == 4 and peft_config.use_rslora and peft_config.use_dora
    assert set(peft_config.target_modules) == {"q_proj", "v_proj"}
    assert prepared.backend == "transformers"


# --- run directories ----------------------------------------------------------------------


def test_damaged_status_and_dead_processes_are_reported_not_hidden(workspace):
    config, _ = demo(workspace)
    run = prepare_run(workspace, config)
    run.status_path.write_text("{not json")
    assert run.status()["state"] == "interrupted"
    assert run.status()["reason"] == "status_unreadable"
    fresh = prepare_run(workspace, config)  # prepared, its launcher about to start it
    assert fresh.id not in reconcile(workspace) and fresh.state == "queued"
    other = prepare_run(workspace, config)
    other.set_status("running", pid=2**22 + 12345, pid_started=1.0)
    assert other.id in reconcile(workspace)
    assert other.state == "interrupted" and "resume" in other.status()["message"]
    assert {r.id for r in list_runs(workspace)} == {run.id, fresh.id, other.id}


def test_metrics_reader_skips_a_torn_line_and_latest_session_wins(tmp_path):
    from studio.runs.curves import series

    run = Run(tmp_path)
    run.append_metrics({"kind": "train", "session": 0, "step": 1, "loss": 2.0})
    run.append_metrics({"kind": "train", "session": 0, "step": 2, "loss": 1.5})
    run.append_metrics({"kind": "train", "session": 1, "step": 2, "loss": 1.4})
    with open(run.metrics_path, "a") as f:
        f.write('{"kind": "train", "st')
    assert series(run.metrics(), "loss") == [(1.0, 2.0), (2.0, 1.4)]
    assert json.loads(run.metrics_path.read_text().splitlines()[0])["loss"] == 2.0


def test_one_way_to_override_a_config_for_the_train_tab_and_set():
    """`RunConfig.with_overrides` (the Train tab's fields) and `apply_sets` (`--set`) give the
    same config for the same choices."""
    from studio.train import presets
    from studio.train.config import ConfigError, RunConfig, apply_sets

    config, _ = presets.load("cpu-demo-sft")
    typed = config.with_overrides(
        {"training.max_steps": 7.0, "max_length": 128, "lora.r": 4, "learning_rate": 1e-4}
    )
    assert typed.training.max_steps == 7 and isinstance(typed.training.max_steps, int)
    assert typed.encoding.max_length == 128 and typed.lora.r == 4
    sets = ["training.max_steps=7", "max_length=128", "lora.r=4", "learning_rate=1e-4"]
    assert RunConfig.from_dict(apply_sets(config.to_dict(), sets)) == typed
    with pytest.raises(ConfigError, match="unknown field 'lora.rank'"):
        config.with_overrides({"lora.rank": 4})
    with pytest.raises(ConfigError):
        config.with_overrides({"training.max_steps": "many"})
