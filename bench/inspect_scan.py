"""Label inspector speed: scan 10,000 chat rows and render the token view of one row.

    python bench/inspect_scan.py [--rows 10000] [--threads 1]

The chat rows are the bundled persona set repeated (rows are independent, so repetition
measures throughput honestly). Prints one JSON object; record it in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from studio.data.records import read_records
    from studio.labels.encode import EncodingSettings
    from studio.labels.inspect import inspect_rows, load_target, scan
    from studio.labels.view import render_sequence, trained_text
    from studio.models.load import resolve_source
    from studio.paths import SAMPLE_DATA_DIR

    base = [r.data for r in read_records(SAMPLE_DATA_DIR / "chat_ojousama.jsonl")]
    rows = [(i, base[i % len(base)]) for i in range(args.rows)]
    started = time.perf_counter()
    target = load_target(resolve_source(""))
    load_s = time.perf_counter() - started

    results = {}
    for name, settings in {
        "default": EncodingSettings(),
        "isolated_packing": EncodingSettings(packing="isolated", max_length=1024),
    }.items():
        times = []
        for _ in range(args.repeats):
            report = scan(iter(rows), target, settings)
            times.append(report.seconds)
        results[name] = {
            "seconds_median": round(statistics.median(times), 3),
            "rows_per_second": round(args.rows / statistics.median(times)),
            "tokens": report.tokens,
            "diagnostics": [d.code for d in report.diagnostics],
        }

    view_times = []
    for _ in range(20):
        t0 = time.perf_counter()
        inspection = inspect_rows([rows[0]], target, EncodingSettings())
        seq = inspection.sequences[0]
        render_sequence(seq, target.tokenizer, inspection.tokens.special_ids)
        trained_text(seq, target.tokenizer)
        view_times.append(time.perf_counter() - t0)

    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.processor() or platform.machine()}, "
                f"{torch.get_num_threads()} torch thread(s)",
                "rows": args.rows,
                "tokenizer_load_seconds": round(load_s, 3),
                "scan": results,
                "token_view_seconds_median": round(statistics.median(view_times), 4),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
