"""Peak GPU memory: the estimate (studio/train/vram.py) next to a measurement.

    python bench/vram_estimate.py [--json] [--batch 2] [--seq 1024] [--no-gc] [--steps 3]
    python bench/vram_estimate.py --cpu-check      # CPU: measured step memory, small models

Prints the estimate (GiB per part) for the test architectures x methods. With CUDA, each
architecture is built with random weights (AutoModelForCausalLM.from_config, nothing is
downloaded), trained for a few steps the way the studio trains it (transformers + peft,
bf16 autocast, bitsandbytes NF4 for QLoRA, galore-torch for GaLore), and
torch.cuda.max_memory_allocated() is printed next to the estimate's `allocated` (the total
without the CUDA context and fragmentation allowance) with the error in %. Runs the estimate
says will not fit this GPU are skipped; an out-of-memory error is reported as such.

Without CUDA it prints the estimates and says no GPU was measured. `--cpu-check` measures
the memory one training step allocates on the CPU (torch profiler) for scaled-down models
and compares it with the estimate's dynamic part (activations, logits, gradients, step
temporaries): that checks the activation and loss model, not the CUDA kernels' own choices.
"""

from __future__ import annotations

import argparse
import gc as gcmod
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from studio.train import vram  # noqa: E402

ARCHITECTURES = {
    "Qwen2.5-0.5B": vram.Architecture(
        896, 4864, 24, 14, 2, 151936, tie_word_embeddings=True, model_type="qwen2", qkv_bias=True
    ),
    "Qwen2.5-7B": vram.Architecture(
        3584, 18944, 28, 28, 4, 152064, model_type="qwen2", qkv_bias=True
    ),
    "Llama-3.1-8B": vram.Architecture(4096, 14336, 32, 32, 8, 128256, model_type="llama"),
}
# Scaled-down shapes for --cpu-check: large vocabularies relative to the width, like the real
# models, so the logits term matters.
SMALL = {
    "small-qwen-tied": vram.Architecture(
        256, 1024, 4, 8, 2, 8192, tie_word_embeddings=True, model_type="qwen2", qkv_bias=True
    ),
    "small-llama": vram.Architecture(384, 1024, 4, 6, 2, 6000, model_type="llama"),
    # Small vocabulary: activations and gradients dominate instead of the logits.
    "small-wide": vram.Architecture(512, 1536, 4, 8, 4, 1024, model_type="llama"),
}
METHODS = ("full", "lora", "qlora", "galore")
PART_COLUMNS = ("weights", "adapters", "gradients", "optimizer", "activations", "logits")


def settings(args, method: str) -> dict:
    return dict(
        method=method,
        precision="bf16",
        batch_size=args.batch,
        seq_len=args.seq,
        gradient_checkpointing=not args.no_gc,
        lora_r=args.rank,
        optimizer="adamw",
        gpu_gib=args.gpu_gib,
        lora_dropout=args.dropout,
    )


def hf_config(arch: vram.Architecture):
    from transformers import AutoConfig

    kwargs = dict(
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        vocab_size=arch.vocab_size,
        tie_word_embeddings=arch.tie_word_embeddings,
        use_cache=False,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=None,
    )
    if arch.head_dim:
        kwargs["head_dim"] = arch.head_dim
    cfg = AutoConfig.for_model(arch.model_type, **kwargs)
    cfg._attn_implementation = "sdpa"
    return cfg


def build(arch: vram.Architecture, method: str, s: dict, device: str):
    """The model and optimizer as the studio's transformers backend builds them."""
    import torch
    from transformers import AutoModelForCausalLM

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(s["precision"], torch.float32)
    master = method in ("full", "galore") and s["precision"] == "fp16"
    dtype = torch.float32 if master else half
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_config(arch), dtype=dtype)
    model.config.use_cache = False
    model.train()
    gc_kwargs = {"use_reentrant": False}
    if method == "qlora":
        quantize_nf4(model, half, device)
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=s["gradient_checkpointing"],
            gradient_checkpointing_kwargs=gc_kwargs,
        )
    if method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        if method == "lora" and s["gradient_checkpointing"]:
            model.enable_input_require_grads()
        model = get_peft_model(
            model,
            LoraConfig(
                r=s["lora_r"],
                lora_alpha=2 * s["lora_r"],
                lora_dropout=s["lora_dropout"],
                target_modules=list(vram.LINEAR_MODULES),
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    if s["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if method == "galore":
        from galore_torch import GaLoreAdamW

        names = {n for n, _ in model.named_parameters()}
        projected = [
            p
            for n, p in model.named_parameters()
            if n.endswith(".weight") and (".self_attn." in n or ".mlp." in n) and n in names
        ]
        ids = {id(p) for p in projected}
        rest = [p for p in trainable if id(p) not in ids]
        groups = [
            {"params": rest},
            {
                "params": projected,
                "rank": s.get("galore_rank", 128),
                "update_proj_gap": 200,
                "scale": 0.25,
                "proj_type": "std",
            },
        ]
        optimizer = GaLoreAdamW(groups, lr=1e-5, no_deprecation_warning=True)
    elif s.get("optimizer") == "adamw_fused":
        optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=True)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=1e-5)  # transformers' adamw_torch
    return model, optimizer, trainable, half


def quantize_nf4(model, compute_dtype, device: str) -> None:
    """Swap each decoder linear for a bitsandbytes NF4 Linear4bit (double quantization), as
    from_pretrained(quantization_config=...) would, and mark the model as 4-bit for peft."""
    import bitsandbytes as bnb
    import torch

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, mod in list(parent.named_children()):
                if not isinstance(mod, torch.nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(
                    mod.in_features,
                    mod.out_features,
                    bias=mod.bias is not None,
                    compute_dtype=compute_dtype,
                    compress_statistics=True,
                    quant_type="nf4",
                    device="meta",
                )
                q.weight = bnb.nn.Params4bit(
                    mod.weight.data,
                    requires_grad=False,
                    compress_statistics=True,
                    quant_type="nf4",
                    module=q,
                ).to(device)
                if mod.bias is not None:
                    q.bias = torch.nn.Parameter(mod.bias.data, requires_grad=False)
                setattr(parent, name, q)
    model.is_loaded_in_4bit = True
    gcmod.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def batch(arch: vram.Architecture, s: dict, device: str):
    """Random tokens, the last row padded by an eighth (so a padding mask exists, as in the
    studio's padded batches); padded labels are -100."""
    import torch

    b, n = s["batch_size"], s["seq_len"]
    ids = torch.randint(2, arch.vocab_size, (b, n), device=device)
    mask = torch.ones(b, n, dtype=torch.long, device=device)
    mask[-1, n - max(1, n // 8) :] = 0
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


def train_steps(model, optimizer, trainable, half, inputs, steps: int, device: str):
    """Like transformers' Trainer: forward and loss under autocast, outputs dropped before
    backward, clip, step, zero_grad(set_to_none)."""
    import torch

    ids, mask, labels = inputs
    kind = "cuda" if device.startswith("cuda") else "cpu"
    for _ in range(steps):
        with torch.autocast(kind, dtype=half, enabled=half != torch.float32):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        del loss


def measure_cuda(arch, method: str, s: dict, steps: int) -> dict:
    import torch

    torch.manual_seed(0)
    gcmod.collect()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    model = optimizer = None
    try:
        model, optimizer, trainable, half = build(arch, method, s, "cuda")
        inputs = batch(arch, s, "cuda")
        gcmod.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        train_steps(model, optimizer, trainable, half, inputs, steps, "cuda")
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        return {"measured": peak, "seconds": round(time.perf_counter() - started, 2)}
    except torch.OutOfMemoryError:
        return {"measured": None, "error": "out of memory"}
    except Exception as exc:  # a missing optional package, an unsupported kernel
        return {"measured": None, "error": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        del model, optimizer
        gcmod.collect()
        torch.cuda.empty_cache()


def measure_cpu_step(arch, method: str, s: dict) -> int:
    """Bytes allocated above the resting state (weights, optimizer states) during one
    training step after the first, from the profiler's running total."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model, optimizer, trainable, half = build(arch, method, s, "cpu")
    inputs = batch(arch, s, "cpu")
    train_steps(model, optimizer, trainable, half, inputs, 1, "cpu")  # creates the states
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        train_steps(model, optimizer, trainable, half, inputs, 1, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    totals = [
        e["args"]["Total Allocated"]
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    ]
    return max(totals, default=0)


def dynamic_estimate(arch, s: dict) -> tuple[int, vram.Estimate]:
    """The estimate's peak minus what rests between steps (weights, adapters, states)."""
    est = vram.estimate(arch, **s)
    setup = vram._setup(**est.settings)
    pb = vram._regime(setup).pb
    states, _ = vram._optimizer_bytes(arch, setup, pb, vram._lora_modules(arch, setup))
    resting = est.parts["weights"] + est.parts["adapters"] + states
    return est.allocated - resting, est


def fmt_table(rows: list[dict]) -> str:
    head = ["model", "method", *PART_COLUMNS, "total", "fits", "measured", "error"]
    lines = [head]
    for r in rows:
        p = r["parts_gib"]
        lines.append(
            [
                r["arch"],
                r["method"],
                *[f"{p[c]:.2f}" for c in PART_COLUMNS],
                f"{r['total_gib']:.2f}",
                "yes" if r["fits"] else "no",
                r.get("measured_text", "-"),
                r.get("error_text", "-"),
            ]
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) for row in lines
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--no-gc", action="store_true", help="without gradient checkpointing")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank")
    ap.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    ap.add_argument("--gpu-gib", type=float, default=24.0, help="GPU size for the verdict")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated model names to run")
    ap.add_argument("--cpu-check", action="store_true", help="CPU step memory, small models")
    args = ap.parse_args()

    if args.cpu_check:
        return cpu_check(args)

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    gpu_total = 0
    if cuda:
        torch.set_num_threads(4)
        gpu_total = torch.cuda.get_device_properties(0).total_memory
    rows = []
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    for name, arch in ARCHITECTURES.items():
        if only and name not in only:
            continue
        for method in METHODS:
            s = settings(args, method)
            est = vram.estimate(arch, **s)
            row = {"arch": name, "method": method, **est.to_dict()}
            row["allocated_gib"] = vram.gib(est.allocated)
            if cuda:
                if est.allocated > 0.95 * gpu_total:
                    row["measured_text"] = "skipped"
                else:
                    m = measure_cuda(arch, method, s, args.steps)
                    row.update(m)
                    if m["measured"]:
                        err = 100 * (est.allocated - m["measured"]) / m["measured"]
                        row["measured_gib"] = vram.gib(m["measured"])
                        row["error_pct"] = round(err, 1)
                        row["measured_text"] = f"{row['measured_gib']:.2f}"
                        row["error_text"] = f"{err:+.1f}%"
                    else:
                        row["measured_text"] = m.get("error", "failed")[:24]
            rows.append(row)
            if not args.json:
                print(f"  {name} {method}: done", file=sys.stderr, flush=True)
    info = {
        "settings": {k: v for k, v in settings(args, "lora").items() if k != "method"},
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "measured": cuda,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    print(fmt_table(rows))
    if cuda:
        print(
            f"\nmeasured: torch.cuda.max_memory_allocated() over {args.steps} steps on "
            f"{info['gpu']}; error = (estimate's allocated - measured) / measured. "
            "The total adds the CUDA context and fragmentation, which that counter does not see."
        )
    else:
        print("\nNo CUDA GPU here: estimates only, nothing was measured.")
    return 0


def cpu_check(args) -> int:
    import torch

    torch.set_num_threads(4)
    rows = []
    for name, arch in SMALL.items():
        for method, precision in (
            ("full", "bf16"),
            ("lora", "bf16"),
            ("galore", "bf16"),
            ("full", "fp32"),
            ("lora", "fp32"),
            ("qlora", "bf16"),  # bitsandbytes' CPU path
        ):
            # CPU dropout keeps a mask in the input's dtype (CUDA: one byte), so leave it off.
            # torch's AdamW runs its for-loop on CPU (foreach is CUDA-only), so compare the
            # fused one, which allocates no temporaries on either.
            s = dict(
                optimizer="adamw_fused",
                method=method,
                precision=precision,
                batch_size=2,
                seq_len=256,
                gradient_checkpointing=False,
                lora_r=8,
                lora_dropout=0.0,
                gpu_gib=args.gpu_gib,
            )
            for gc in (False, True):
                s["gradient_checkpointing"] = gc
                dyn, est = dynamic_estimate(arch, s)
                try:
                    measured = measure_cpu_step(arch, method, s)
                except (ImportError, RuntimeError) as exc:
                    rows.append(
                        {"arch": name, "method": method, "precision": precision, "gc": gc}
                        | {"error": str(exc)}
                    )
                    continue
                err = 100 * (dyn - measured) / measured if measured else None
                rows.append(
                    {
                        "arch": name,
                        "method": method,
                        "precision": precision,
                        "gc": gc,
                        "measured_mib": round(measured / 2**20, 1),
                        "estimated_mib": round(dyn / 2**20, 1),
                        "error_pct": round(err, 1) if err is not None else None,
                    }
                )
    if args.json:
        print(json.dumps({"cpu_check": rows}, indent=1))
        return 0
    print("CPU: memory one training step allocates above weights and optimizer states")
    for r in rows:
        if "error" in r:
            print(
                f"  {r['arch']:16} {r['method']:6} {r['precision']} gc={r['gc']!s:5} {r['error']}"
            )
            continue
        print(
            f"  {r['arch']:16} {r['method']:6} {r['precision']} gc={r['gc']!s:5} measured {r['measured_mib']:8.1f}"
            f" MiB  estimate {r['estimated_mib']:8.1f} MiB  error {r['error_pct']:+.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
