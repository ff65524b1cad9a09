"""What `data synthesize` costs: passages/s and output tokens/s of the real job (passages,
generation, checks, batch files), at two sizes and with and without batching, one after the
other in one process, and the projection for a corpus of a given size.

    python bench/synth_throughput.py [--model embedded] [--sizes 32 128] [--batch 8]
                                     [--new-tokens 128] [--passage 250] [--overlap 50]
                                     [--corpus-mb 20]

Uses the bundled corpus's Japanese documents (repeated when more passages are asked for than
it holds) in a temporary workspace, greedy decoding so that every configuration writes about
the same replies. The projection: passages in `--corpus-mb` MB of Japanese text (3 bytes a
character, one passage every passage - overlap characters) divided by the measured
passages/s of the largest batched run.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--passage", type=int, default=250)
    parser.add_argument("--overlap", type=int, default=50)
    parser.add_argument("--corpus-mb", type=float, default=20)
    parser.add_argument("--template", default="qa-ja")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import torch

    from studio.data.ingest import import_path
    from studio.generate import GenerationSettings
    from studio.synth.checks import language_ok
    from studio.synth.job import SynthSettings, execute, new_job
    from studio.synth.passages import PassageSettings
    from studio.synth.templates import load_template
    from studio.workspace import open_workspace

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    root = Path(tempfile.mkdtemp())
    ws = open_workspace(root / "ws")
    corpus = Path(__file__).resolve().parent.parent / "assets" / "data" / "corpus.jsonl"
    lines = [
        x
        for x in corpus.read_text(encoding="utf-8").splitlines()
        if language_ok(json.loads(x)["text"], "ja")
    ]
    (root / "ja.jsonl").write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    version, _ = import_path(ws, root / "ja.jsonl", skip_bad=True)
    template = load_template(args.template).to_dict()

    def measure(limit: int, batch: int) -> dict:
        settings = SynthSettings(
            source=version.spec,
            model=args.model,
            template=template,
            passages=PassageSettings(size=args.passage, overlap=args.overlap),
            limit=limit,
            generation=GenerationSettings(max_new_tokens=args.new_tokens, greedy=True),
            batch_size=batch,
            name="bench",
        )
        job = new_job(ws, settings)
        started = time.perf_counter()
        status = execute(ws, job, log=lambda _: None)
        wall = time.perf_counter() - started
        return {
            "passages": status["passages_done"],
            "batch": batch,
            "wall_s": round(wall, 2),
            "passages_per_s": round(status["passages_done"] / wall, 3),
            "tokens_per_s": round(status["new_tokens"] / wall, 1),
            "new_tokens": status["new_tokens"],
            "accepted": status["accepted"],
            "backend": status.get("backend"),
        }

    measure(args.batch, args.batch)  # warm-up: loads the model once, imports everything
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.batch))
    rows.append(measure(args.sizes[0], 1))  # the same passages one at a time
    print(f"model {args.model}, {torch.get_num_threads()} threads, passage {args.passage} chars, "
          f"overlap {args.overlap}, {args.new_tokens} new tokens max, greedy")  # fmt: skip
    print("| passages | batch | wall s | passages/s | output tokens/s | tokens | kept |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['passages']} | {r['batch']} | {r['wall_s']} | {r['passages_per_s']} | "
              f"{r['tokens_per_s']} | {r['new_tokens']} | {r['accepted']} |")  # fmt: skip
    batched, single = rows[0], rows[-1]
    print(f"batching ({args.batch} vs 1, same {single['passages']} passages): "
          f"{batched['passages_per_s'] / single['passages_per_s']:.2f}x passages/s")  # fmt: skip
    big = rows[len(args.sizes) - 1]
    chars = args.corpus_mb * 1e6 / 3
    passages = chars / (args.passage - args.overlap)
    hours = passages / big["passages_per_s"] / 3600
    print(f"projection: {args.corpus_mb:g} MB of Japanese text = about {passages:,.0f} passages; "
          f"at {big['passages_per_s']} passages/s: {hours:,.1f} h")  # fmt: skip


if __name__ == "__main__":
    main()
