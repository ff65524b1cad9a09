"""What evaluating while training costs the CPU demo: the same run with and without the
bundled suites scored every N steps, in one process, one after the other.

    python bench/eval_cost.py [--steps 60] [--every 20] [--suites sample-eval-qa sample-eval-rank]

Prints each run's wall time, the time its evaluations took (the suites' own seconds, from
metrics.jsonl) and their share of the run. Uses a temporary workspace.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--suites", nargs="+", default=["sample-eval-qa", "sample-eval-rank"])
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import torch

    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import prepare_run
    from studio.workspace import open_workspace

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    ws = open_workspace(Path(tempfile.mkdtemp()) / "ws")
    base = [f"max_steps={args.steps}", f"save_steps={args.every}", f"eval_steps={args.every}",
            "validation_split=0"]  # fmt: skip
    suites = "[" + ", ".join(args.suites) + "]"
    # A first short run encodes the data into its token store: neither measured run pays it.
    config, preset = presets.load("cpu-demo-sft", ["max_steps=1", "validation_split=0"])
    assert execute(prepare_run(ws, config, preset=preset), ws) == 0
    rows = []
    for label, sets in (
        ("no evaluation", base),
        (f"suites {suites}", [*base, f"evaluation.suites={suites}"]),
    ):
        config, preset = presets.load("cpu-demo-sft", sets)
        run = prepare_run(ws, config, preset=preset)
        started = time.perf_counter()
        assert execute(run, ws) == 0, run.log_tail(20)
        wall = time.perf_counter() - started
        evals = [r for r in run.metrics() if r.get("kind") == "eval"]
        spent = sum(r.get("suite_seconds") or 0 for r in evals)
        rows.append((label, wall, len(evals), spent))
    print(
        f"| run ({args.steps} steps, every {args.every}) | wall s | evaluations | suites s | share |"
    )
    print("|---|---|---|---|---|")
    for label, wall, n, spent in rows:
        print(f"| {label} | {wall:.1f} | {n} | {spent:.1f} | {spent / wall:.1%} |")
    print(f"ratio of wall times (with / without): {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
