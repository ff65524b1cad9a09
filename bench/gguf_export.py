"""GGUF export cost and fidelity (issue 23): time per step, file size per quantization, the
self-check's perplexity ratio and greedy agreement.

Two sizes, so that the growth shows:
- `demo`: the CPU demo SFT of the embedded model (2.8M parameters), trained here first, checked
  on its 20 held-out prompts;
- `wide`: a Llama of about 40M parameters built from a config (random weights, the embedded
  tokenizer), saved as a workspace model and checked on the default prompts. Its agreement
  and perplexity mean little (random weights); its times and sizes show how the cost grows.

    python bench/gguf_export.py [--quant f16 --quant q8_0 --quant q4_k_m] [--skip-wide]

Needs the GGUF extra (`python -m studio install-gguf`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed_export(ws, spec: str, quants: list[str]) -> dict:
    from studio.export.gguf import export_gguf

    steps, last = {}, [time.perf_counter(), None]

    def progress(step: str) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            steps[last[1]] = round(steps.get(last[1], 0) + now - last[0], 2)
        last[:] = [now, step.split()[0]]

    done = export_gguf(ws, spec, quants=quants, progress=progress)
    progress("end")
    return {
        "seconds": done.seconds,
        "steps": steps,
        "status": done.status,
        "peak_rss_mb": done.peak_rss_mb,
        "results": [
            {
                k: r[k]
                for k in (
                    "quant",
                    "verdict",
                    "bytes",
                    "greedy_agreement",
                    "prompts",
                    "perplexity_hf",
                    "perplexity_gguf",
                    "perplexity_ratio",
                    "tokens_identical",
                    "hf_stopped",
                    "gguf_stopped",
                    "seconds",
                )
            }
            for r in done.check["results"]
        ],  # fmt: skip
    }


def demo(ws, quants) -> dict:
    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import prepare_run

    config, preset = presets.load("cpu-demo-sft", ["validation_split=0.07"])
    run = prepare_run(ws, config, preset=preset)
    assert execute(run, ws) == 0, run.log_tail()
    return {"model": "tsumugi-tiny CPU demo SFT (2.8M)", **timed_export(ws, run.id, quants)}


def wide(ws, quants) -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from studio.paths import EMBEDDED_MODEL_DIR

    config = LlamaConfig(vocab_size=6000, hidden_size=512, intermediate_size=1536,
                         num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3,
                         max_position_embeddings=512, tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = ws.models / "wide-random"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR).save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    return {
        "model": f"random Llama ({params / 1e6:.0f}M)",
        **timed_export(ws, "wide-random", quants),
    }


def main() -> None:
    import torch

    from studio.workspace import open_workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--quant", action="append")
    parser.add_argument("--skip-wide", action="store_true")
    args = parser.parse_args()
    quants = args.quant or ["f16", "q8_0", "q4_k_m"]
    torch.set_num_threads(2)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        out.append(demo(ws, quants))
        if not args.skip_wide:
            out.append(wide(ws, quants))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
