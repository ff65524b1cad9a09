"""The studio against LLaMA-Factory's CLI on the same tiny model, data and recipe (CPU).

The peer recipe (both tools): the embedded model (`assets/models/tsumugi-tiny`, a Llama),
the bundled persona chat set (330 conversations, ChatML: LLaMA-Factory's `chatml` template is
the model's own), SFT with the loss on the replies, LoRA r 8 / alpha 16 on every linear
layer, batch 8, cutoff 128 tokens, fp32, one epoch, learning rate 3e-3, one torch thread,
no evaluation, no checkpoint. Each tool runs without packing and with its packing that keeps
documents apart (the studio's `isolated`, LLaMA-Factory's `neat_packing`).

The figure is effective tokens per second: the real (non-padding) tokens of one epoch,
counted by the studio's encoder (the same rows, truncated at 128), divided by each run's
training time (LLaMA-Factory's `train_runtime`; the studio's last logged `elapsed`). Runs
alternate, studio then LLaMA-Factory, `--repeats` times.

LLaMA-Factory is installed in a virtual environment of its own (its pins differ from ours):

    python3.11 -m venv /tmp/lfvenv && /tmp/lfvenv/bin/pip install llamafactory==0.9.5 torch==2.13.0
    /tmp/lfvenv/bin/pip uninstall -y torchvision torchaudio   # built for another torch

LLaMA-Factory imports torchaudio when it starts, and none is built for torch 2.13: the
script puts an empty `torchaudio` module on LLaMA-Factory's path (`_torchaudio_shim`); its
text SFT path, which is what runs, never uses it.
    python bench/peer_llamafactory.py --lf-cli /tmp/lfvenv/bin/llamafactory-cli [--repeats 2]

The LLaMA-Factory recipe it writes is `bench/peer/llamafactory_sft.yaml` with the paths
filled in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RECIPE = ROOT / "bench" / "peer" / "llamafactory_sft.yaml"
STUDIO_SETS = ["lora.r=8", "lora.lora_alpha=16", "lora.lora_dropout=0.0",
               "per_device_train_batch_size=8", "max_length=128", "precision=fp32",
               "num_train_epochs=1", "validation_split=0", "save_steps=100000",
               "logging_steps=1", "learning_rate=3e-3", "warmup_steps=0",
               "eval_strategy=no"]  # fmt: skip


def env_one_thread() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")  # fmt: skip
    env["PYTHONPATH"] = str(ROOT)
    return env


def epoch_tokens(packing: str) -> int:
    """Real tokens of one epoch as the studio encodes the rows (truncated at 128)."""
    from studio.labels.encode import resolve_tokens
    from studio.models.load import load_tokenizer
    from studio.train import data, presets
    from studio.train.process import resolve_model
    from studio.workspace import open_workspace

    ws = open_workspace(Path(tempfile.mkdtemp()) / "ws")
    config, _ = presets.load("cpu-demo-sft", [*STUDIO_SETS, f"packing={packing}"])
    source = resolve_model(ws, config)
    tok = resolve_tokens(load_tokenizer(source), config.encoding)
    return sum(len(s.input_ids) for s in data.build(ws, config, tok).train)


def run_studio(packing: str, work: Path) -> float:
    """Seconds of training for one epoch (the last logged `elapsed`)."""
    ws = work / f"studio-{packing}-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--workspace", str(ws)]
    for s in [*STUDIO_SETS, f"packing={packing}"]:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, env=env_one_thread(), capture_output=True, text=True)
    run = next(p for p in (ws / "runs").iterdir() if p.is_dir())
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    return max(r["elapsed"] for r in records if r.get("kind") == "train")


def _torchaudio_shim(work: Path) -> Path:
    """LLaMA-Factory 0.9.5 imports torchaudio when it starts (for its audio plugin), and no
    torchaudio is built for torch 2.13 (the registry's last is 2.11). An empty `torchaudio`
    module on its path lets it start; the text SFT path measured here never calls it."""
    shim = work / "shim"
    (shim / "torchaudio").mkdir(parents=True, exist_ok=True)
    (shim / "torchaudio" / "__init__.py").write_text(
        '"""Stand-in for LLaMA-Factory\'s audio-plugin import (bench only)."""\n'
    )
    return shim


def run_llamafactory(cli: str, neat: bool, work: Path) -> float:
    """LLaMA-Factory's `train_runtime` for one epoch of the recipe."""
    out = work / f"lf-{'neat' if neat else 'plain'}-{time.monotonic_ns()}"
    data_dir = work / "lf-data"
    if not data_dir.is_dir():
        data_dir.mkdir()
        shutil.copy(ROOT / "assets" / "data" / "chat_ojousama.jsonl", data_dir / "ojousama.jsonl")
        info = {"ojousama": {"file_name": "ojousama.jsonl", "formatting": "sharegpt",
                             "columns": {"messages": "messages"},
                             "tags": {"role_tag": "role", "content_tag": "content",
                                      "user_tag": "user", "assistant_tag": "assistant",
                                      "system_tag": "system"}}}  # fmt: skip
        (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    recipe.update(
        model_name_or_path=str(ROOT / "assets" / "models" / "tsumugi-tiny"),
        dataset_dir=str(data_dir),
        output_dir=str(out),
        packing=neat,
        neat_packing=neat,
    )
    path = work / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    env = env_one_thread()
    env["PYTHONPATH"] = str(_torchaudio_shim(work))
    done = subprocess.run([cli, "train", str(path)], env=env, capture_output=True, text=True,
                          cwd=work)  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads((out / "train_results.json").read_text())["train_runtime"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lf-cli", default=shutil.which("llamafactory-cli") or "")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not args.lf_cli or not Path(args.lf_cli).exists():
        print("llamafactory-cli not found: see this script's docstring", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="peer-lf-"))
    tokens = {"off": epoch_tokens("off"), "isolated": epoch_tokens("isolated")}
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for label, fn in (
            ("studio, no packing", lambda: run_studio("off", work)),
            ("LLaMA-Factory, no packing", lambda: run_llamafactory(args.lf_cli, False, work)),
            ("studio, isolated packing", lambda: run_studio("isolated", work)),
            ("LLaMA-Factory, neat_packing", lambda: run_llamafactory(args.lf_cli, True, work)),
        ):
            results.setdefault(label, []).append(fn())
    real = tokens["off"]
    print(f"one epoch: {real:,} real tokens (the studio's encoding, cutoff 128); "
          f"{args.repeats} repeat(s), best time kept")  # fmt: skip
    print("| run | seconds | effective tokens/s |")
    print("|---|---|---|")
    rate = {}
    for label, times in results.items():
        rate[label] = real / min(times)
        print(f"| {label} | {min(times):.1f} | {rate[label]:,.0f} |")
    for ours, theirs in (("studio, isolated packing", "LLaMA-Factory, neat_packing"),
                         ("studio, isolated packing", "LLaMA-Factory, no packing"),
                         ("studio, no packing", "LLaMA-Factory, no packing")):  # fmt: skip
        print(f"{ours} / {theirs}: {rate[ours] / rate[theirs]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
