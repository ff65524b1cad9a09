"""The studio's own training path on a CUDA GPU: does it train, and what does it cost?

For each case a model of a preset's real architecture (its `architecture:` block) is built
with random weights (memory and speed equal those of the real weights; nothing is
downloaded), saved as safetensors with the bundled tiny model's tokenizer into a workspace
on the GPU machine, and trained with the preset's own settings for a few steps:

- `cli05`: `python -m studio train qwen2.5-0.5b-lora --set ...`, the real command, in its
  own process as a user runs it (run.json, metrics, checkpoints, estimate.json are read back).
- `lora05`, `lora15`, `qlora7`, `galore05`, `galore7`: the same functions the command calls
  (`start.preflight`, `start.prepare_run`, `process.execute`), each in a fresh process so
  that `torch.cuda.max_memory_allocated()` / `max_memory_reserved()` are this run's alone.
- `overhead05`: the studio's trainer against trl's `SFTTrainer` on the same model, batches
  and steps (the functions of bench/train_overhead.py), alternating A B A B.

Tokens/s counts real (non-padding) tokens between the end of the warm-up steps and the last
step (from the run's metrics.jsonl, so the checkpoint at the end is excluded). The device's
own peak (nvidia-smi memory.used, polled every 100 ms, CUDA context included) is compared
with the estimate's `total`; `max_memory_allocated` with the estimate's `allocated`.

The device commands used for docs/benchmarks.md (2026-11-22, one H100 80GB, Python 3.12,
torch 2.11.0+cu130, transformers 5.17.0, accelerate 1.15.0 from the image; peft 0.21.2,
trl 1.15.0, datasets 4.8.5, dill, multiprocess, galore-torch 1.0 and bitsandbytes 0.50.2
carried as wheels in .whl/, see the device README; bitsandbytes' wheel repacked with only
its cpu and cuda130 libraries to fit the 64 MiB limit):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    PYTHONUNBUFFERED=1 python3 bench/gpu_train.py --out $OUT --ws /tmp/ws \
        --cases cli05,lora05,lora15,galore05,qlora7
    PYTHONUNBUFFERED=1 python3 bench/gpu_train.py --out $OUT --ws /tmp/ws --deadline-s 555 \
        --cases qlora7cap,qlora7capx,galore05x,overhead05,galore7
    # after studio/hardware.py's prefer_expandable_segments:
    PYTHONUNBUFFERED=1 python3 bench/gpu_train.py --out $OUT --ws /tmp/ws --deadline-s 330 \
        --cases cli05,cliqlora7

Results go to $OUT/gpu_results.json (one entry per case, merged across calls).

Locally (CPU), `--cases smoke` runs a scaled-down model through the same code in fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
)
TINY = REPO / "assets" / "models" / "tsumugi-tiny"

# case -> (preset, model folder, preset whose architecture the model has, extra --set, warm-up
# steps excluded from tokens/s, process timeout in s)
CASES = {
    "cli05": ("qwen2.5-0.5b-lora", "qwen2.5-0.5b-random", "qwen2.5-0.5b-lora", [], 5, 240),
    "lora05": ("qwen2.5-0.5b-lora", "qwen2.5-0.5b-random", "qwen2.5-0.5b-lora", [], 5, 240),
    "lora15": ("qwen2.5-1.5b-lora", "qwen2.5-1.5b-random", "qwen2.5-1.5b-lora", [], 3, 300),
    "qlora7": ("qwen2.5-7b-qlora", "qwen2.5-7b-random", "qwen2.5-7b-qlora", [], 1, 420),
    # GaLore with the calm2-7b preset's settings (rank 128, 8-bit states, batch 2 x 1024,
    # accumulation 16, checkpointing) on the 0.5B architecture, and on calm2-7b's own.
    "galore05": ("calm2-7b-galore", "qwen2.5-0.5b-random", "qwen2.5-0.5b-lora", [], 2, 300),
    "galore7": (
        "calm2-7b-galore",
        "calm2-7b-random",
        "calm2-7b-galore",
        ["save_steps=1000"],
        1,
        560,
    ),
    "clismoke": (
        "qwen2.5-0.5b-lora",
        "smoke-random",
        None,
        ["precision=fp32", "max_length=256", "per_device_train_batch_size=2"],
        1,
        300,
    ),
    "smoke": (
        "qwen2.5-0.5b-lora",
        "smoke-random",
        None,
        ["precision=fp32", "max_length=256", "per_device_train_batch_size=2"],
        1,
        300,
    ),
}
STEPS = {"cli05": 25, "lora05": 25, "lora15": 15, "qlora7": 4, "galore05": 6, "galore7": 3}
# Variants: case -> (base case, cap in GiB, environment). The cap limits torch's allocator
# with torch.cuda.set_per_process_memory_fraction, as on a 24 GB card (23.4 GiB left beside
# the CUDA context); `x` adds PyTorch's expandable segments.
EXPANDABLE = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
VARIANTS = {
    "qlora7cap": ("qlora7", 23.4, {}),
    "qlora7capx": ("qlora7", 23.4, EXPANDABLE),
    "lora15cap": ("lora15", 23.4, {}),
    "lora15x": ("lora15", None, EXPANDABLE),
    "galore05x": ("galore05", None, EXPANDABLE),
}
# The real command on the 7B QLoRA preset (the allocator setting the studio chooses shows
# in nvidia-smi's peak).
CASES["cliqlora7"] = CASES["qlora7"]
STEPS["cliqlora7"] = STEPS["qlora7"]
for _name, (_base, _cap, _env) in VARIANTS.items():
    CASES[_name] = CASES[_base]
    STEPS[_name] = STEPS[_base]
SMOKE_ARCH = {
    "model_type": "qwen2",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 6000,
    "tie_word_embeddings": True,
    "max_position_embeddings": 2048,
}


def log(msg: str) -> None:
    print(f"[gpu_train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- models -----------------------------------------------------------------------------------


def architecture(arch_preset: str | None) -> dict:
    if arch_preset is None:
        return dict(SMOKE_ARCH)
    from studio.train import presets

    config, _ = presets.load(arch_preset)
    return dict(config.architecture)


def build_model(folder: Path, arch: dict) -> dict:
    """Random weights of the given architecture, bf16 (fp32 without CUDA), as safetensors,
    with the bundled tokenizer. Returns facts about what was built."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if (folder / "config.json").is_file():
        return {"built": False}
    started = time.perf_counter()
    a = dict(arch)
    model_type = a.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **a, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    tmp = folder.with_name("." + folder.name)  # the workspace ignores dot folders
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in TOKENIZER_FILES:
        shutil.copy(TINY / name, tmp / name)
    tok_cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    tok_cfg["model_max_length"] = a.get("max_position_embeddings", 32768)
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    tmp.rename(folder)
    del model
    return {"built": True, "parameters": params, "seconds": round(time.perf_counter() - started, 1)}


# --- one case in its own process ----------------------------------------------------------------


def sets_for(case: str, model: str) -> list[str]:
    _, _, _, extra, _, _ = CASES[case]
    steps = STEPS.get(case, 3)
    return [
        f"model={model}",
        f"max_steps={steps}",
        "logging_steps=1",
        f"save_steps={steps}",
    ] + extra


def throughput(metrics: list[dict], warmup: int) -> dict:
    train = [m for m in metrics if m.get("kind") == "train"]
    out: dict = {"logged_steps": len(train)}
    if not train:
        return out
    last = train[-1]
    first = next((m for m in train if m["step"] >= warmup), None)
    if first is not None and last["step"] > first["step"]:
        tokens = last["tokens"] - first["tokens"]
        seconds = last["elapsed"] - first["elapsed"]
        out.update(
            measured_steps=last["step"] - first["step"],
            measured_tokens=tokens,
            measured_seconds=round(seconds, 3),
            tokens_per_s=round(tokens / seconds, 1) if seconds > 0 else None,
            seconds_per_step=round(seconds / (last["step"] - first["step"]), 3),
        )
    out["memory_by_step"] = [
        [m.get("step"), m.get("kind"), m.get("peak_memory_mb")] for m in metrics
    ]
    out["first_loss"] = train[0].get("loss")
    out["last_loss"] = last.get("loss")
    out["metrics_peak_memory_mb"] = max(m.get("peak_memory_mb") or 0 for m in metrics)
    out["memory_kind"] = last.get("memory_kind")
    out["total_tokens"] = last["tokens"]
    out["steps"] = last["step"]
    return out


def describe_run(run, warmup: int) -> dict:
    info = run.info()
    estimate = run.json_of(run.estimate_path) or {}
    out = {
        "run": run.id,
        "status": run.status(),
        "backend": info.get("backend"),
        "device": info.get("device"),
        "precision": info.get("precision"),
        "optim": info.get("optim"),
        "notes": info.get("notes"),
        "trainable_parameters": info.get("trainable_parameters"),
        "total_parameters": info.get("total_parameters"),
        "versions": info.get("versions"),
        "data": info.get("data"),
        "checkpoints": [p.name for p in run.checkpoints()],
        "final_files": sorted(p.name for p in run.final_dir.glob("*"))
        if run.final_dir.exists()
        else [],
        "estimate": {
            k: estimate.get(k) for k in ("allocated", "total", "parts_gib", "overlap", "settings")
        }
        if estimate
        else None,
    }
    out.update(throughput(run.metrics(), warmup))
    data = out.get("data") or {}
    if data.get("sequences"):
        out["mean_sequence_tokens"] = round(data["tokens"] / data["sequences"], 1)
    return out


def run_case(case: str, ws_path: Path) -> dict:
    """Inside a fresh process: build the model if need be, then train through the studio's
    own functions and report."""
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import torch

    from studio.train import presets
    from studio.workspace import open_workspace

    preset, model, arch_preset, _, warmup, _ = CASES[case]
    _, cap_gib, env = VARIANTS.get(case, (case, None, {}))
    ws = open_workspace(ws_path)
    result: dict = {"case": case, "preset": preset, "model": model, "env": env}
    result["model_build"] = build_model(ws.models / model, architecture(arch_preset))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        if cap_gib:
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(cap_gib * 2**30 / total)
            result["cap_gib"] = cap_gib
    config, preset_name = presets.load(preset, sets_for(case, model))
    return train_and_describe(ws, config, preset_name, warmup, result)


def train_and_describe(ws, config, preset_name: str, warmup: int, result: dict) -> dict:
    """Check, prepare and train a run in this process as the CLI does, then add to `result`
    its exit code, wall time, CUDA memory peaks and `describe_run`."""
    import torch

    from studio.runs.store import Run
    from studio.train.process import execute
    from studio.train.start import preflight, prepare_run

    checked = preflight(ws, config)
    if checked.blocked:
        result["error"] = "blocked by the inspector"
        result["scan"] = checked.scan.to_dict()
        return result
    run = prepare_run(
        ws,
        checked.config,
        preset=preset_name,
        scan=checked.scan.to_dict() if checked.scan else None,
        estimate=checked.estimate.to_dict() if checked.estimate else None,
    )
    started = time.perf_counter()
    result["exit_code"] = execute(run, ws)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if torch.cuda.is_available():
        result["max_memory_allocated"] = torch.cuda.max_memory_allocated()
        result["max_memory_reserved"] = torch.cuda.max_memory_reserved()
        result["device_name"] = torch.cuda.get_device_name(0)
    result.update(describe_run(Run(run.root), warmup))
    return result


def run_overhead(ws_path: Path, steps: int = 20, repeats: int = 2) -> dict:
    """The studio trainer vs trl's SFTTrainer (bench/train_overhead.py's baseline) on the
    0.5B model with the qwen2.5-0.5b-lora settings."""
    import gc

    import torch
    import yaml

    sys.path.insert(0, str(REPO / "bench"))
    import train_overhead as to

    from studio.labels.encode import resolve_tokens
    from studio.models.load import load_tokenizer
    from studio.train import data, presets
    from studio.train.config import RunConfig
    from studio.train.process import resolve_model
    from studio.train.start import prepare_run
    from studio.workspace import open_workspace

    ws = open_workspace(ws_path)
    model = "qwen2.5-0.5b-random"
    build_model(ws.models / model, architecture("qwen2.5-0.5b-lora"))
    sets = [f"model={model}", f"max_steps={steps}", "validation_split=0", "save_steps=100000"]
    config, preset = presets.load("qwen2.5-0.5b-lora", sets)
    run = prepare_run(ws, config, preset=preset)
    config = RunConfig.from_dict(yaml.safe_load(run.config_path.read_text()))
    source = resolve_model(ws, config)
    tokenizer = load_tokenizer(source)
    tok = resolve_tokens(tokenizer, config.encoding)
    env = (ws, run, config, source, tokenizer, tok, data.build(ws, config, tok))
    studio_s, bare_s, baseline, tokens, errors = [], [], None, 0, []
    for _ in range(repeats):
        trainer = to.studio_trainer(*env)
        studio_s.append(to.timed(trainer))
        tokens = trainer.state.num_input_tokens_seen
        del trainer
        gc.collect()
        torch.cuda.empty_cache()
        trainer, baseline = to.bare_trainer(*env)
        try:
            bare_s.append(to.timed(trainer))
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(f"{baseline}: {type(exc).__name__}: {exc}")
        del trainer
        gc.collect()
        torch.cuda.empty_cache()
    out = {
        "baseline": baseline,
        "steps": steps,
        "tokens": tokens,
        "studio_seconds": [round(s, 2) for s in studio_s],
        "baseline_seconds": [round(s, 2) for s in bare_s],
        "errors": errors,
    }
    if studio_s and bare_s:
        out["studio_tokens_per_s"] = round(tokens / min(studio_s), 1)
        out["baseline_tokens_per_s"] = round(tokens / min(bare_s), 1)
        out["ratio_studio_over_baseline_speed"] = round(min(bare_s) / min(studio_s), 3)
    return out


# --- the parent: one process per case, the device's memory polled --------------------------------


class SmiPoll:
    """Peak memory.used of GPU 0 (MiB) from nvidia-smi while a case runs."""

    def __init__(self):
        self.peak = None
        self.proc = None

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
                + ["-lms", "100"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                value = int(line.strip().split()[0])
                self.peak = value if self.peak is None else max(self.peak, value)

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def cli_case(case: str, ws_path: Path, timeout: int) -> dict:
    """`python -m studio train` as a user types it."""
    from studio.runs.store import Run
    from studio.workspace import open_workspace

    preset, model, arch_preset, _, warmup, _ = CASES[case]
    ws = open_workspace(ws_path)
    result: dict = {"case": case, "preset": preset, "model": model}
    build = [sys.executable, __file__, "--build", model]
    build += ["--arch", arch_preset] if arch_preset else []
    sub = subprocess.run(build + ["--ws", str(ws_path)], timeout=timeout)
    result["model_build_exit"] = sub.returncode
    before = {p.name for p in ws.runs.iterdir()}
    command = [sys.executable, "-m", "studio", "train", preset, "--workspace", str(ws_path)]
    for s in sets_for(case, model):
        command += ["--set", s]
    command.append("--json")
    result["command"] = " ".join(command[1:])
    started = time.perf_counter()
    with SmiPoll() as smi:
        proc = subprocess.run(command, cwd=REPO, timeout=timeout, capture_output=True, text=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["exit_code"] = proc.returncode
    result["smi_peak_mib"] = smi.peak
    print(proc.stderr[-6000:], flush=True)
    with contextlib.suppress(json.JSONDecodeError):
        result["cli_json"] = json.loads(proc.stdout)
    new = sorted({p.name for p in ws.runs.iterdir() if p.is_dir()} - before)
    if new:
        result.update(describe_run(Run(ws.runs / new[-1]), warmup))
    return result


def errors_vs_estimate(r: dict) -> None:
    est = r.get("estimate") or {}
    mib = 2**20
    alloc = r.get("max_memory_allocated")
    if alloc is None and r.get("memory_kind") == "cuda":
        alloc = int(r["metrics_peak_memory_mb"] * mib)
        r["max_memory_allocated_from_metrics"] = alloc
    if est.get("allocated") and alloc:
        r["estimate_allocated_error_pct"] = round(100 * (est["allocated"] - alloc) / alloc, 1)
    if est.get("total") and r.get("smi_peak_mib"):
        used = r["smi_peak_mib"] * mib
        r["estimate_total_vs_smi_error_pct"] = round(100 * (est["total"] - used) / used, 1)


def device_facts() -> dict:
    facts: dict = {}
    with contextlib.suppress(Exception):
        facts["nvidia_smi"] = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    code = (
        "import json,importlib.metadata as m,torch,platform;"
        "v={n:None for n in ('torch','transformers','peft','trl','datasets','accelerate',"
        "'bitsandbytes','galore-torch','unsloth','safetensors','tokenizers')}\n"
        "for n in v:\n"
        "  try: v[n]=m.version(n)\n"
        "  except Exception: pass\n"
        "d={'python':platform.python_version(),'versions':v,'cuda':torch.version.cuda,"
        "'cuda_available':torch.cuda.is_available()}\n"
        "if torch.cuda.is_available():\n"
        "  p=torch.cuda.get_device_properties(0); d.update(gpu=p.name,"
        "gpu_memory_gib=round(p.total_memory/2**30,1),bf16=torch.cuda.is_bf16_supported())\n"
        "print(json.dumps(d))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    with contextlib.suppress(json.JSONDecodeError):
        facts.update(json.loads(out.stdout))
    if out.returncode:
        facts["probe_error"] = out.stderr[-2000:]
    return facts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-results"))
    p.add_argument("--cases", default="cli05,lora05,lora15,qlora7,galore05,overhead05")
    p.add_argument("--ws", type=Path, default=None, help="workspace (default: a temp folder)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # inside a child: one case
    p.add_argument("--build", help=argparse.SUPPRESS)  # inside a child: build one model
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--deadline-s", type=float, default=580, help="stop starting cases after")
    a = p.parse_args()
    ws_path = a.ws or Path(os.environ.get("TMPDIR", "/tmp")) / "gpu-train-ws"
    if a.build:
        from studio.workspace import open_workspace

        ws = open_workspace(ws_path)
        print(json.dumps(build_model(ws.models / a.build, architecture(a.arch))), flush=True)
        return 0
    if a.one:
        result_path = a.out / f".{a.one}.json"
        run = run_overhead if a.one == "overhead05" else (lambda ws: run_case(a.one, ws))
        result = run(ws_path)
        result_path.write_text(json.dumps(result, indent=2, default=str))
        return 0

    a.out.mkdir(parents=True, exist_ok=True)
    results_path = a.out / "gpu_results.json"
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cases": {}}
    if results_path.exists():
        results = json.loads(results_path.read_text())
    results["device"] = device_facts()
    log(f"device: {json.dumps(results['device'])}")
    begun = time.perf_counter()
    for case in [c for c in a.cases.split(",") if c]:
        log(f"case {case} ...")
        started = time.perf_counter()
        timeout = CASES[case][5] if case in CASES else 300
        left = a.deadline_s - (time.perf_counter() - begun)
        if left < 30:
            log(f"case {case}: skipped, {left:.0f} s left")
            continue
        timeout = int(min(timeout, left))
        try:
            if case.startswith("cli"):
                r = cli_case(case, ws_path, timeout)
            else:
                cmd = [sys.executable, __file__, "--one", case, "--out", str(a.out)]
                cmd += ["--ws", str(ws_path)]
                env = {**os.environ, **VARIANTS.get(case, (case, None, {}))[2]}
                with SmiPoll() as smi:
                    proc = subprocess.run(cmd, timeout=timeout, env=env)
                tmp = a.out / f".{case}.json"
                r = json.loads(tmp.read_text()) if tmp.exists() else {}
                tmp.unlink(missing_ok=True)
                r["process_exit"] = proc.returncode
                r["smi_peak_mib"] = smi.peak
        except subprocess.TimeoutExpired:
            r = {"error": f"timed out after {timeout} s"}
        except Exception as exc:  # noqa: BLE001 - one case's failure must not stop the rest
            r = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        r["case_wall_s"] = round(time.perf_counter() - started, 1)
        errors_vs_estimate(r)
        results["cases"][case] = r
        results_path.write_text(json.dumps(results, indent=2, default=str))
        brief = {
            k: r.get(k)
            for k in (
                "exit_code",
                "backend",
                "device",
                "precision",
                "tokens_per_s",
                "max_memory_allocated",
                "max_memory_reserved",
                "smi_peak_mib",
                "metrics_peak_memory_mb",
                "estimate_allocated_error_pct",
                "estimate_total_vs_smi_error_pct",
                "checkpoints",
                "error",
                "status",
                "cap_gib",
                "ratio_studio_over_baseline_speed",
                "studio_tokens_per_s",
                "baseline_tokens_per_s",
                "errors",
                "case_wall_s",
            )
            if r.get(k) is not None
        }
        log(f"case {case}: {json.dumps(brief, default=str)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
