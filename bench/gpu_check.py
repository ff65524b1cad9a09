"""One prepared GPU check (issue 26): the studio's training paths on one GPU, in one call.

    python3 bench/gpu_check.py --out $OUT [--deadline-s 450] [--steps 12]
    python bench/gpu_check.py --out /tmp/check --smoke        # on CPU: the script itself

For the Qwen2.5-0.5B and Llama-3.2-1B architectures (`bench/configs/*.json`, random weights,
nothing downloaded; the bundled tokenizer), it trains a few steps through the studio's own
functions, each check in a fresh process, in this order until the deadline:

    plain (SDPA, loss unfused), packed (isolated) and padded (one row per sequence), LoRA
    liger (Liger Kernel's fused loss), flash-attn (FlashAttention 2, one row per batch),
    unsloth: packed LoRA, where each is installed
    QLoRA, plain and liger, packed, where bitsandbytes is installed
    the studio trainer against trl's SFTTrainer on the same batches (bench/train_overhead.py)

and writes `gpu_check.json` and `gpu_check.md` under --out: tokens/s (real tokens, after the
warm-up steps), MFU against the GPU's dense bf16 peak, `max_memory_allocated` against the
studio's estimate, and which kernels ran (the run's own header). What it could not run is
listed with the reason. The machine needs no registry: `bench/fetch_gpu_wheels.sh` fetches
the optional wheels beforehand, to carry with the working tree.

MFU counts 2N FLOPs per token forward and 2N backward through the frozen base (LoRA and
QLoRA compute no weight gradients for it; the adapters' are negligible), plus the attention
scores over each token's context (4 x layers x hidden x mean context forward, twice that
backward), N being the base's parameters without the embeddings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
CONFIGS = REPO / "bench" / "configs"
ARCHS = {"qwen05": "qwen2.5-0.5b.json", "llama1b": "llama-3.2-1b.json"}
# Dense bf16 tensor-core peaks (TFLOP/s) by the device name's marker; --peak-tflops wins.
PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.2,
         "A6000": 154.8}  # fmt: skip
SMOKE_ARCH = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "vocab_size": 6000, "tie_word_embeddings": True,
              "max_position_embeddings": 2048}  # fmt: skip
# Check -> (settings, the modules it needs: a missing one skips the check and says so).
VARIANTS = {
    "plain-packed": (["packing=isolated", "attention=sdpa", "fused_loss=off"], []),
    "plain-padded": (["packing=off", "attention=sdpa", "fused_loss=off"], []),
    "liger-packed": (["packing=isolated", "attention=sdpa", "fused_loss=liger"], ["liger_kernel"]),
    "flash-packed": (["packing=isolated", "attention=flash_attention_2", "fused_loss=off"],
                     ["flash_attn"]),
    "unsloth-packed": (["packing=isolated", "backend=unsloth", "fused_loss=off"], ["unsloth"]),
    "qlora-packed": (["method=qlora", "packing=isolated", "attention=sdpa", "fused_loss=off"],
                     ["bitsandbytes"]),
    "qlora-liger-packed": (["method=qlora", "packing=isolated", "attention=sdpa",
                            "fused_loss=liger"], ["bitsandbytes", "liger_kernel"]),
}  # fmt: skip
ORDER = [(arch, v) for v in VARIANTS for arch in ARCHS]


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def architecture(arch: str, smoke: bool) -> dict:
    if smoke:
        return dict(SMOKE_ARCH)
    return json.loads((CONFIGS / ARCHS[arch]).read_text(encoding="utf-8"))


def missing(modules: list[str]) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def flops_per_token(arch: dict, context: float) -> float:
    h, layers = arch["hidden_size"], arch["num_hidden_layers"]
    heads, kv = arch["num_attention_heads"], arch["num_key_value_heads"]
    head_dim = arch.get("head_dim") or h // heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o and k, v projections
    mlp = 3 * h * arch["intermediate_size"]
    n = layers * (attn + mlp) + h * arch["vocab_size"]  # with the output head
    return 4 * n + 12 * layers * heads * head_dim * context


def peak_flops(name: str, given: float | None) -> float | None:
    if given:
        return given * 1e12
    return next((v * 1e12 for k, v in PEAKS.items() if k in name), None)


# --- one check in its own process ----------------------------------------------------------------
def run_check(arch_name: str, variant: str, ws_path: Path, steps: int, smoke: bool) -> dict:
    import torch
    from gpu_train import build_model, train_and_describe

    from studio.train import presets
    from studio.workspace import open_workspace

    ws = open_workspace(ws_path)
    arch = architecture(arch_name, smoke)
    model = f"{arch_name}-{'smoke' if smoke else 'random'}"
    build = build_model(ws.models / model, arch)
    sets, _ = VARIANTS[variant]
    sets = [f"model={model}", f"max_steps={steps}", "logging_steps=1", "validation_split=0",
            "save_steps=100000", "eval_strategy=no", "per_device_train_batch_size=8",
            "gradient_accumulation_steps=1", "max_length=2048", "gradient_checkpointing=true",
            *sets]  # fmt: skip
    if smoke:
        sets += ["precision=fp32", "max_length=256", "per_device_train_batch_size=2"]
    config, preset = presets.load("qwen2.5-0.5b-lora", sets)
    config.architecture = arch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    result = {"arch": arch_name, "variant": variant, "model_build": build}
    return train_and_describe(ws, config, preset, min(3, steps - 2), result)


# --- the parent ----------------------------------------------------------------------------------
def row_of(r: dict, arch: dict, peak: float | None) -> dict:
    est = (r.get("estimate") or {}).get("total")
    alloc = r.get("max_memory_allocated")
    context = (r.get("mean_sequence_tokens") or 0) / 2  # a token sees half its document
    tps = r.get("tokens_per_s")
    mfu = tps * flops_per_token(arch, context) / peak if (tps and peak) else None
    notes = [n for n in r.get("notes") or [] if n.startswith(("attention:", "fused loss:"))]
    return {
        "check": f"{r['arch']} {r['variant']}",
        "tokens_per_s": tps,
        "mfu": round(mfu, 3) if mfu else None,
        "allocated_gib": round(alloc / 2**30, 2) if alloc else None,
        "estimate_gib": round(est / 2**30, 2) if est else None,
        "estimate_error": round(est / alloc - 1, 3) if (est and alloc) else None,
        "kernels": "; ".join(notes),
        "backend": r.get("backend"),
        "state": (r.get("status") or {}).get("state"),
    }


def markdown(rows: list[dict], skipped: list[str], device: str, overhead: dict | None) -> str:
    lines = [f"GPU check on {device}, {time.strftime('%Y-%m-%d')}", "",
             "| check | backend | tokens/s | MFU | allocated GiB | estimate GiB | estimate error | kernels |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['check']} | {r['backend']} | {r['tokens_per_s']} | {r['mfu']} | "
                     f"{r['allocated_gib']} | {r['estimate_gib']} | {r['estimate_error']} | "
                     f"{r['kernels']} |")  # fmt: skip
    if overhead:
        lines += ["", f"studio trainer / {overhead.get('baseline')}: "
                  f"{overhead.get('ratio_studio_over_baseline_speed')} (tokens/s "
                  f"{overhead.get('studio_tokens_per_s')} vs {overhead.get('baseline_tokens_per_s')}"
                  f"; errors: {overhead.get('errors') or 'none'})"]  # fmt: skip
    if skipped:
        lines += ["", "Not run:"] + [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ws", default="/tmp/gpu-check-ws")
    parser.add_argument("--deadline-s", type=float, default=450)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--smoke", action="store_true", help="CPU: a tiny model, fp32")
    parser.add_argument("--archs", default=",".join(ARCHS), help="which (default: all)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.one:
        result = run_check(*args.one, Path(args.ws), args.steps, args.smoke)
        print("RESULT " + json.dumps(result, default=str), flush=True)
        return 0
    import torch

    started = time.monotonic()
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    peak = peak_flops(device, args.peak_tflops) if cuda else None
    results, skipped, rows = [], [], []
    archs = args.archs.split(",")
    for arch, variant in [(a, v) for a, v in ORDER if a in archs]:
        name = f"{arch} {variant}"
        _, needs = VARIANTS[variant]
        gone = missing(needs)
        if gone:
            skipped.append(f"{name}: {', '.join(gone)} not installed")
            continue
        if not cuda and variant not in ("plain-packed", "plain-padded"):
            skipped.append(f"{name}: needs a CUDA GPU")
            continue
        if time.monotonic() - started > args.deadline_s:
            skipped.append(f"{name}: the deadline ({args.deadline_s:.0f} s) had passed")
            continue
        log(f"{name} ...")
        cmd = [
            sys.executable,
            __file__,
            "--out",
            str(out_dir),
            "--ws",
            args.ws,
            "--steps",
            str(args.steps),
            "--one",
            arch,
            variant,
        ] + (["--smoke"] if args.smoke else [])
        left = max(30.0, args.deadline_s + 60 - (time.monotonic() - started))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=left,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        except subprocess.TimeoutExpired:
            skipped.append(f"{name}: still running at the deadline; stopped")
            continue
        found = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode or not found:
            tail = (done.stderr or done.stdout)[-600:].strip().replace("\n", " | ")
            skipped.append(f"{name}: failed ({tail})")
            continue
        result = json.loads(found[-1][7:])
        results.append(result)
        rows.append(row_of(result, architecture(arch, args.smoke), peak))
        log(f"{name}: {rows[-1]['tokens_per_s']} tokens/s, {rows[-1]['allocated_gib']} GiB")
    overhead = None
    if cuda and time.monotonic() - started < args.deadline_s:
        try:
            from gpu_train import run_overhead

            overhead = run_overhead(Path(args.ws) / "overhead", steps=10, repeats=1)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            skipped.append(f"studio vs SFTTrainer: {type(exc).__name__}: {exc}")
    elif not cuda:
        skipped.append("studio vs SFTTrainer: trl's SFTTrainer trains through triton (CUDA)")
    report = {"device": device, "peak_flops": peak, "rows": rows, "results": results,
              "skipped": skipped, "overhead": overhead,
              "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    text = markdown(rows, skipped, device, overhead)
    (out_dir / "gpu_check.md").write_text(text)
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
