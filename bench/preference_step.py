"""DPO step time against SFT step time on the CPU demo (issue 24).

Runs the two CPU demo presets (`cpu-demo-sft`, `cpu-demo-dpo`) for the same number of steps
and batch size in fresh workspaces, one after the other, and prints seconds per step and
tokens per second of each (from the runs' metrics), and the ratio. A DPO step runs each
pair's two replies (twice the sequences of an SFT step) and the reference forward (the
base with the adapters off).

    python bench/preference_step.py [--steps 24] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(preset: str, steps: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as ws:
        sets = [f"max_steps={steps}", f"per_device_train_batch_size={batch}", "eval_strategy=no",
                "save_strategy=no", "logging_steps=1", "validation_split=0", "packing=off"]  # fmt: skip
        cmd = [sys.executable, "-m", "studio", "train", preset, "--workspace", ws]
        for s in sets:
            cmd += ["--set", s]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, env=env)
        (folder,) = [p for p in (Path(ws) / "runs").iterdir() if p.is_dir()]
        records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("kind") == "train"]
    # From the second step on: the first carries the model's warm-up.
    first, last = train[1], train[-1]
    seconds = (last["elapsed"] - first["elapsed"]) / (last["step"] - first["step"])
    tokens = (last["tokens"] - first["tokens"]) / (last["elapsed"] - first["elapsed"])
    return {"preset": preset, "s_per_step": round(seconds, 4), "tokens_per_s": round(tokens, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    sft = run("cpu-demo-sft", args.steps, args.batch)
    dpo = run("cpu-demo-dpo", args.steps, args.batch)
    print(json.dumps({"sft": sft, "dpo": dpo, "dpo_over_sft_step_time": round(
        dpo["s_per_step"] / sft["s_per_step"], 2)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
