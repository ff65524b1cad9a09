"""Does the studio's training path cost anything? And what does packing buy?

1. Overhead: the same model, data, batches and steps, trained (a) by the studio's trainer
   (its collator with token counting, the run-directory callback writing status and
   metrics every step) and (b) by a bare baseline: trl's `SFTTrainer` on the same
   pre-tokenized sequences (as a `datasets.Dataset`, collated by the same collator), else,
   when trl cannot run, a bare `transformers.Trainer` with the same collator. Runs alternate
   (A B A B ...) so drift hits both; the ratio of tokens per second is reported.
2. Packing: trained (non-padding) tokens per second with isolated packing against the same
   rows padded one per sequence.

    python bench/train_overhead.py [--steps 30] [--repeats 2] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def setup(packing: str, steps: int):
    from studio.labels.encode import resolve_tokens
    from studio.models.load import load_tokenizer
    from studio.train import data, presets
    from studio.train.config import RunConfig
    from studio.train.process import resolve_model
    from studio.train.start import prepare_run
    from studio.workspace import open_workspace

    ws = open_workspace(Path(tempfile.mkdtemp(prefix="bench-train-")) / "ws")
    sets = [f"max_steps={steps}", f"packing={packing}", "validation_split=0", "save_steps=100000"]
    config, preset = presets.load("cpu-demo-sft", sets + ["logging_steps=1"])
    run = prepare_run(ws, config, preset=preset)
    import yaml

    config = RunConfig.from_dict(yaml.safe_load(run.config_path.read_text()))
    source = resolve_model(ws, config)
    tokenizer = load_tokenizer(source)
    tok = resolve_tokens(tokenizer, config.encoding)
    return ws, run, config, source, tokenizer, tok, data.build(ws, config, tok)


def studio_trainer(ws, run, config, source, tokenizer, tok, training_data):
    from studio.train import backends
    from studio.train.trainer import build_trainer

    prepared = backends.prepare(config, source, tokenizer)
    return build_trainer(run, config, prepared, tok, training_data, stop=False)


def bare_trainer(ws, run, config, source, tokenizer, tok, training_data):
    """The same model, arguments and batches with nothing of the studio around them."""

    from studio.labels.encode import Collator
    from studio.train import backends
    from studio.train.trainer import training_arguments

    prepared = backends.prepare(config, source, tokenizer)
    args = training_arguments(run, config, prepared, has_eval=False)
    args.output_dir = tempfile.mkdtemp(prefix="bench-bare-")
    collate = Collator.for_settings(tok, config.encoding)
    try:
        import torch

        if not torch.cuda.is_available():  # its fused log-prob kernel is triton's (CUDA)
            raise RuntimeError("trl's SFTTrainer trains through triton kernels: CUDA only")
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        from studio.labels.encode import Sequence

        # SFTTrainer takes a `datasets.Dataset`: the same sequences as columns, turned back
        # into the studio's sequences for the same collator (the same batches, in the same
        # order: the sampler's permutation depends on the seed and the length only).
        train = training_data.train
        rows = Dataset.from_dict(
            {
                "input_ids": [s.input_ids for s in train],
                "labels": [s.labels for s in train],
                "position_ids": [s.position_ids for s in train],
            }
        )

        def collate_rows(batch):
            return collate(
                [Sequence(r["input_ids"], r["labels"], r["position_ids"]) for r in batch]
            )

        sft_args = SFTConfig(
            **{
                **args.to_dict(),
                "max_length": None,
                "packing": False,
                "dataset_kwargs": {"skip_prepare_dataset": True},
            }
        )
        return SFTTrainer(
            model=prepared.model,
            args=sft_args,
            train_dataset=rows,
            data_collator=collate_rows,
            processing_class=tokenizer,
        ), "trl.SFTTrainer"
    except Exception as exc:  # noqa: BLE001 - fall back and say so
        print(f"SFTTrainer unavailable ({exc}); bare Trainer baseline", file=sys.stderr)
    from transformers import Trainer

    return Trainer(
        model=prepared.model,
        args=args,
        train_dataset=training_data.train,
        data_collator=collate,
        processing_class=tokenizer,
    ), "transformers.Trainer"


def timed(trainer) -> float:
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def trained_share(sequences) -> float:
    """Share of the real (non-padding) tokens that carry loss."""
    real = sum(len(s.input_ids) for s in sequences)
    return sum(sum(1 for x in s.labels[1:] if x != -100) for s in sequences) / real


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    results: dict = {"steps": a.steps, "threads": a.threads, "device": "cpu"}
    if torch.cuda.is_available():
        results["device"] = torch.cuda.get_device_name(0)

    env = setup("isolated", a.steps)
    studio_s, bare_s, baseline, tokens = [], [], None, 0
    for _ in range(a.repeats):
        trainer = studio_trainer(*env)
        studio_s.append(timed(trainer))
        # Both trainers draw the same batches (same seed); the studio counts their tokens.
        tokens = trainer.state.num_input_tokens_seen
        trainer, baseline = bare_trainer(*env)
        bare_s.append(timed(trainer))
    results["overhead"] = {
        "baseline": baseline,
        "tokens": tokens,
        "studio_tokens_per_s": round(tokens / min(studio_s), 1),
        "baseline_tokens_per_s": round(tokens / min(bare_s), 1),
        "ratio": round(min(bare_s) / min(studio_s), 3),
        "studio_seconds": [round(s, 2) for s in studio_s],
        "baseline_seconds": [round(s, 2) for s in bare_s],
    }

    packing = {}
    for mode in ("isolated", "off"):
        penv = setup(mode, a.steps)
        best, counted = None, 0
        for _ in range(a.repeats):
            trainer = studio_trainer(*penv)
            seconds = timed(trainer)
            if best is None or seconds < best:
                best, counted = seconds, trainer.state.num_input_tokens_seen
        share = trained_share(penv[-1].train)
        packing[mode] = {
            "sequences": len(penv[-1].train),
            "tokens_per_s": round(counted / best, 1),
            "trained_tokens_per_s": round(counted * share / best, 1),
        }
    packing["trained_ratio"] = round(
        packing["isolated"]["trained_tokens_per_s"] / packing["off"]["trained_tokens_per_s"], 2
    )
    results["packing"] = packing
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        o = results["overhead"]
        print(f"device {results['device']}, {a.threads} thread(s), {a.steps} steps x {a.repeats}")
        print(f"studio   {o['studio_tokens_per_s']:>8} tok/s  {o['studio_seconds']}")
        print(
            f"baseline {o['baseline_tokens_per_s']:>8} tok/s  {o['baseline_seconds']} "
            f"({o['baseline']})"
        )
        print(f"ratio studio/baseline: {o['ratio']}")
        for mode in ("isolated", "off"):
            q = packing[mode]
            print(
                f"packing {mode:<9} {q['trained_tokens_per_s']:>8} trained tok/s "
                f"({q['sequences']} sequences)"
            )
        print(f"packing gain in trained tokens/s: x{packing['trained_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
