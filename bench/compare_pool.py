"""Memory of N checkpoints of one base in the model pool, and the chat's first streamed token.

    python bench/compare_pool.py [--adapters 5] [--rank 32] [--workspace W --run RUN_ID]

Memory: the pool's tensor bytes (each storage counted once) after loading the base and N
LoRA adapters, against N + 1 separately loaded models, plus the process's RSS growth.
Without --run, the adapters are made on the spot over the embedded model (LoRA on every
linear layer, the CPU demo's shape); with --run, the run's own checkpoints are used.

First token: `studio.generate.stream` on a chat prompt, time from the call to the first text,
once straight after loading (cold: generation's lazy imports included) and then warm
(median of 5). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def make_adapters(n: int, rank: int, folder: Path) -> list[str]:
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.models.load import load_model, resolve_source

    made = []
    for i in range(n):
        base = load_model(resolve_source(""))
        torch.manual_seed(i)
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False
        )
        path = folder / f"adapter-{i}"
        get_peft_model(base.model, config).save_pretrained(path)
        base.tokenizer.save_pretrained(path)
        made.append(str(path))
    return made


def first_token_seconds(loaded, settings) -> float:
    from studio.generate import stream

    started = time.perf_counter()
    for _ in stream(loaded, "富士山について教えて。", settings, chat=True):
        return time.perf_counter() - started
    raise RuntimeError("no text was streamed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapters", type=int, default=5)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--workspace")
    parser.add_argument("--run", help="use this run's checkpoints instead of made adapters")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from studio.generate import GenerationSettings
    from studio.models.load import load_model, resolve_source
    from studio.models.pool import ModelPool, tensor_bytes

    settings = GenerationSettings(max_new_tokens=32, greedy=True)
    # cold: a fresh process, the model loaded, nothing generated yet
    pool = ModelPool()
    with pool.use(resolve_source("")) as loaded:
        cold = first_token_seconds(loaded, settings)
        warm = statistics.median(first_token_seconds(loaded, settings) for _ in range(5))
    base_bytes = pool.memory_bytes()

    if args.run:
        from studio.workspace import open_workspace

        ws = open_workspace(args.workspace)
        specs = list(ws.checkpoint_dirs(args.run).values())[: args.adapters]
        specs = [str(p) for p in specs]
    else:
        specs = make_adapters(args.adapters, args.rank, Path(tempfile.mkdtemp(prefix="pool-")))
    rss_before_adapters = rss_mb()
    steps = []
    for i, spec in enumerate(specs, 1):
        with pool.use(resolve_source(spec)):
            pass
        steps.append({"adapters": i, "pool_mb": round(pool.memory_bytes() / 2**20, 2)})
    rss_with_adapters = rss_mb()
    separate = sum(tensor_bytes(load_model(resolve_source(s)).model) for s in specs) + base_bytes
    print(
        json.dumps(
            {
                "adapters": len(specs),
                "rank": None if args.run else args.rank,
                "base_mb": round(base_bytes / 2**20, 2),
                "pool_mb": steps[-1]["pool_mb"] if steps else round(base_bytes / 2**20, 2),
                "separate_models_mb": round(separate / 2**20, 2),
                "per_adapter_mb": round(
                    (pool.memory_bytes() - base_bytes) / max(1, len(specs)) / 2**20, 3
                ),
                "steps": steps,
                "rss_growth_for_adapters_mb": round(rss_with_adapters - rss_before_adapters, 1),
                "first_token_cold_s": round(cold, 3),
                "first_token_warm_median_s": round(warm, 3),
                "torch_threads": torch.get_num_threads(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
