"""The memory estimate with and without the evaluation pass, for the 24 GB presets.

    python bench/eval_memory.py [--eval-batch N] [--suites]

For each preset that carries its model's architecture (the hub presets): the training step
alone, then the same run evaluating a validation split at its per_device_eval_batch_size
(and, with --suites, scoring and generating for evaluation suites). Says which phase is the
peak and the advice when the evaluation pass is what does not fit. Pure arithmetic: no
model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.train import presets  # noqa: E402
from studio.train.start import estimate_memory  # noqa: E402
from studio.train.vram import gib  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval-batch", type=int, default=None, help="per_device_eval_batch_size")
    parser.add_argument("--suites", action="store_true", help="also score evaluation suites")
    args = parser.parse_args()
    print("| preset | train step GiB | eval pass GiB | peak | total GiB | fits 24 GiB | advice |")
    print("|---|---|---|---|---|---|---|")
    for name in presets.list_presets():
        config, _ = presets.load(name)
        if not config.architecture:
            continue
        plain = estimate_memory(config.replace(validation_split=0.0), config.architecture)
        changes = {"validation_split": 0.05}
        training = config.to_dict()["training"]
        if args.eval_batch:
            training["per_device_eval_batch_size"] = args.eval_batch
        changes["training"] = training
        if args.suites:
            changes["evaluation"] = {"suites": ["sample-eval-qa", "sample-eval-rank"]}
        evaluating = config.replace(**changes)
        est = estimate_memory(evaluating, config.architecture)
        advice = "; ".join(f"{c} {p.get('batch_size', '')}".strip() for c, p in est.advice[:2])
        print(
            f"| {name} (eval batch {evaluating.training.per_device_eval_batch_size}) "
            f"| {gib(plain.total, 1)} | {gib(est.phases.get('evaluation', 0), 1)} | {est.peak} "
            f"| {gib(est.total, 1)} | {'yes' if est.fits else 'no'} | {advice or '-'} |"
        )


if __name__ == "__main__":
    main()
