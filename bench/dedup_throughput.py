"""Deduplication speed: exact + MinHash near-duplicate removal on a synthetic corpus.

    python bench/dedup_throughput.py [--docs 100000] [--num-proc 2] [--seed 0]

The corpus is built deterministically from the bundled `assets/data/corpus.jsonl`: each
original document is 6-14 random sentences of the bundled documents in paragraphs of four,
with 2 % random character edits (so originals are distinct from each other); then exact
copies and near copies (up to three punctuation marks changed, a sentence dropped, full-width
digits, line breaks, 0.5 % random character edits) of earlier documents are planted at
random positions after them.
The corpus is stored as a dataset version of a temporary workspace; a fresh process then
runs `dedup_version` on it (read, sketch, LSH, confirm, write the new version), so its peak
memory is that of deduplication alone. Prints one JSON object: documents/s, MB/s, peak RSS,
precision and recall of the removed documents against the planted copies.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXACT_SHARE = 0.12
NEAR_SHARE = 0.12
KANA = "".join(chr(c) for c in range(ord("ぁ"), ord("ゖ") + 1))
LATIN = "abcdefghijklmnopqrstuvwxyz"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SENTENCE_END = re.compile(r"(?<=[。！？.!?])")
SENTENCE_SPLIT = re.compile(r"(?<=[。！？.!?])\s*|\n+")


def _edit_chars(rng: random.Random, text: str, rate: float) -> str:
    chars = list(text)
    for _ in range(max(1, int(len(chars) * rate))):
        i = rng.randrange(len(chars))
        pool = KANA if ord(chars[i]) > 0x3000 else LATIN
        op = rng.random()
        if op < 0.5:
            chars[i] = rng.choice(pool)
        elif op < 0.75:
            chars.insert(i, rng.choice(pool))
        else:
            chars.pop(i)
    return "".join(chars)


def _near_copy(rng: random.Random, text: str) -> str:
    """Small edits a real duplicate carries: a few punctuation marks changed, a sentence
    dropped, full-width digits, line breaks, a few characters."""
    chars = list(text)
    marks = [i for i, ch in enumerate(chars) if ch in "、。,."]
    for i in rng.sample(marks, min(len(marks), rng.randint(0, 3))):
        chars[i] = {"、": ",", "。": ".", ",": "、", ".": "。"}[chars[i]]
    text = "".join(chars)
    sentences = SENTENCE_END.split(text)
    if len(sentences) > 6 and rng.random() < 0.4:
        sentences.pop(rng.randrange(len(sentences)))
        text = "".join(sentences)
    if rng.random() < 0.3:
        text = text.translate(FULL_WIDTH)
    if rng.random() < 0.3:
        text = text.replace("\n\n", "\n")
    return _edit_chars(rng, text, 0.005)


def build_corpus(path: Path, docs: int, seed: int) -> dict:
    """Write the synthetic corpus as JSONL; return the planted duplicate rows."""
    rng = random.Random(seed)
    source = [
        json.loads(line)["text"]
        for line in (ROOT / "assets/data/corpus.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    sentences = sorted({s for text in source for s in SENTENCE_SPLIT.split(text) if len(s) >= 15})
    originals: list[int] = []
    texts: dict[int, str] = {}  # originals' texts, for copies
    planted = {"exact": [], "near": []}
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(docs):
            r = rng.random()
            if originals and r < EXACT_SHARE:
                of = rng.choice(originals)
                text, kind = texts[of], "exact"
            elif originals and r < EXACT_SHARE + NEAR_SHARE:
                of = rng.choice(originals)
                text, kind = _near_copy(rng, texts[of]), "near"
            else:
                picked = rng.sample(sentences, rng.randint(6, 14))
                paragraphs = ["".join(picked[k : k + 4]) for k in range(0, len(picked), 4)]
                text, kind = _edit_chars(rng, "\n\n".join(paragraphs), 0.02), None
                originals.append(i)
                texts[i] = text
            if kind:
                planted[kind].append(i)
            fh.write(json.dumps({"id": f"syn-{i:06d}", "text": text}, ensure_ascii=False) + "\n")
    return planted


def measure(workspace: Path, num_proc: int) -> dict:
    from studio.data.dedup import dedup_version
    from studio.data.store import resolve
    from studio.workspace import open_workspace

    ws = open_workspace(workspace)
    source = resolve(ws, "bench-synth")
    started = time.perf_counter()
    result = dedup_version(ws, source, num_proc=num_proc)
    seconds = time.perf_counter() - started
    me = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts = result.report.counts()
    return {
        "seconds": round(seconds, 2),
        "find_seconds": round(result.report.seconds, 2),
        "removed": sorted(result.report.removed),
        "counts": counts,
        "settings": result.report.settings.to_dict(),
        "peak_rss_mb": round(me.ru_maxrss / 1024),
        # (RUSAGE_CHILDREN's peak would count the parent's pages a child holds before exec)
        "peak_rss_workers_mb": result.report.worker_rss_mb,
        "cpu_seconds_main": round(me.ru_utime + me.ru_stime, 1),
        "cpu_seconds_workers": round(workers.ru_utime + workers.ru_stime, 1),
        "version": result.version.spec,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the child run
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.num_proc)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        corpus = tmp / "synthetic.jsonl"
        planted = build_corpus(corpus, args.docs, args.seed)
        size = corpus.stat().st_size

        import datasets

        from studio.data.store import cache_dir, write_version
        from studio.workspace import open_workspace

        ws = open_workspace(tmp / "ws")
        ds = datasets.Dataset.from_json(str(corpus), cache_dir=str(cache_dir(ws)))
        write_version(ws, "bench-synth", ds, format="text", operation="import", settings={})
        build_s = time.perf_counter() - started

        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                str(ws.root),
                "--num-proc",
                str(args.num_proc),
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            check=False,
        )
        if child.returncode:
            sys.exit(child.stderr)
        run = json.loads(child.stdout.strip().splitlines()[-1])

    removed = set(run.pop("removed"))
    truth = set(planted["exact"]) | set(planted["near"])
    hit = len(removed & truth)
    print(
        json.dumps(
            {
                "benchmark": "dedup_throughput",
                "docs": args.docs,
                "corpus_mb": round(size / 2**20, 1),
                "planted": {"exact": len(planted["exact"]), "near": len(planted["near"])},
                "num_proc": args.num_proc,
                "build_seconds": round(build_s, 1),
                **run,
                "docs_per_second": round(args.docs / run["seconds"]),
                "mb_per_second": round(size / 2**20 / run["seconds"], 2),
                "precision": round(hit / max(1, len(removed)), 4),
                "recall": round(hit / max(1, len(truth)), 4),
                "recall_exact": round(
                    len(removed & set(planted["exact"])) / max(1, len(planted["exact"])), 4
                ),
                "recall_near": round(
                    len(removed & set(planted["near"])) / max(1, len(planted["near"])), 4
                ),
                "cpu_count": os.cpu_count(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "python": platform.python_version(),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
