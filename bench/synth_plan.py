"""How planning a synthesis job grows with the corpus: one pass over the version that cuts
every document into passages and keeps only (row, start, end) per passage.

    python bench/synth_plan.py [--sizes-mb 25 100] [--passage 600] [--overlap 100]

For each size, a corpus of the bundled Japanese documents repeated to that many MB is
imported into a temporary workspace (not timed); then a fresh process plans it and reports
the seconds, the passages, its anonymous resident memory before and after planning (the
version opened, the studio imported), the file-backed pages it read through (memory-mapped
Arrow, which the kernel may drop) and its peak RSS. Expect time to grow with the corpus and the plan to take 24
bytes a passage: no passage text is held.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def plan_one(workspace: str, spec: str, size: int, overlap: int) -> None:
    import resource
    import time

    from studio.synth.job import documents
    from studio.synth.passages import PassageSettings, plan
    from studio.workspace import open_workspace

    ws = open_workspace(workspace)
    next(iter(documents(ws, spec)))  # the version opened and its first row read
    before = _rss()
    started = time.perf_counter()
    offsets = plan(documents(ws, spec, ids=False), PassageSettings(size=size, overlap=overlap))
    seconds = time.perf_counter() - started
    after = _rss()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"passages": len(offsets), "seconds": round(seconds, 2),
                      "anon_before_mb": before["RssAnon"], "anon_after_mb": after["RssAnon"],
                      "file_after_mb": after["RssFile"], "peak_mb": round(peak / 2**20),
                      "plan_mb": round(offsets.nbytes / 2**20, 1)}))  # fmt: skip


def _rss() -> dict:
    """Resident memory by kind (MB): anonymous (what the process holds) and file-backed
    (pages of memory-mapped Arrow files read through, which the kernel may drop)."""
    found = {}
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            found[key] = round(int(value.split()[0]) / 1024)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[25, 100])
    parser.add_argument("--passage", type=int, default=600)
    parser.add_argument("--overlap", type=int, default=100)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        plan_one(*args.one, args.passage, args.overlap)
        return
    from studio.data.ingest import import_path
    from studio.synth.checks import language_ok
    from studio.workspace import open_workspace

    root = Path(tempfile.mkdtemp())
    ws = open_workspace(root / "ws")
    lines = [
        x
        for x in (ROOT / "assets" / "data" / "corpus.jsonl").read_text("utf-8").splitlines()
        if language_ok(json.loads(x)["text"], "ja")
    ]
    print("| corpus MB | documents | passages | plan s | MB/s | anon MB before → after | "
          "file-backed MB | peak RSS MB | plan MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for mb in args.sizes_mb:
        path = root / f"c{mb:g}.jsonl"
        written = docs = 0
        with open(path, "w", encoding="utf-8") as f:
            while written < mb * 1e6:
                for n, line in enumerate(lines):
                    row = json.loads(line)
                    row["id"] = f"d{docs}-{n}"
                    text = json.dumps(row, ensure_ascii=False)
                    f.write(text + "\n")
                    written += len(text.encode("utf-8")) + 1
                    docs += 1
        version, _ = import_path(ws, path, name=f"c{mb:g}")
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(ws.root), version.spec,
             "--passage", str(args.passage), "--overlap", str(args.overlap)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {mb:g} | {docs:,} | {r['passages']:,} | {r['seconds']} | "
              f"{mb / r['seconds']:.1f} | {r['anon_before_mb']} → {r['anon_after_mb']} | "
              f"{r['file_after_mb']} | {r['peak_mb']} | {r['plan_mb']} |")  # fmt: skip


if __name__ == "__main__":
    main()
