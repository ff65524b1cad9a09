"""Throughput of the cleaning pipeline against HojiChar's own `Compose`, and peak memory.

    python bench/clean_throughput.py [--docs 100000] [--pipeline ja] [--seed 0]
    python bench/clean_throughput.py --size-gb 2     # memory check on a 2 GB input

Builds a synthetic corpus from the bundled `assets/data/corpus.jsonl` (every document a
bundled one with light random edits: characters replaced, a span deleted, a number inserted,
two lines swapped; a fixed seed, so every run gets the same corpus), stores it as a dataset
version in a temporary workspace, then measures in one run:

* `hojichar_1proc`: HojiChar's `Compose` of HojiChar's own filters for the steps that have
  one (DocumentNormalizer, DocumentLengthFilter, DiscardAds, DiscardBBSComments,
  DiscardTooManyEndingEllipsis, CharRepetitionRatioFilter, DiscardTooShortLines,
  NgWordsFilterJa, MaskPersonalInformation), over the same documents read from the same
  Arrow file, single process: the reference;
* `ours_1proc`, `ours_2proc`: `studio.data.clean.run_pipeline` with the preset (every step:
  the ones above plus mojibake, duplicate_lines, keyword_spam, nav_lines, japanese_ratio,
  hiragana_ratio, compression_ratio), end to end: read, filter, write the new version
  (Parquet); and `ours_2proc_no_write`, the same without writing the new version (`dry_run`);

as documents/s and MB/s (UTF-8 bytes of the input text), the ratio of `ours_2proc` to
`hojichar_1proc`, and the peak memory of the process tree (main process plus the map
workers; see `PeakMemory`; also `getrusage`'s peak RSS of the main process and of the
largest child). With `--size-gb`, the corpus is built to that many bytes and only
`ours_2proc` is run (the memory check). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from studio.paths import SAMPLE_DATA_DIR  # noqa: E402


class PeakMemory:
    """Peak memory of this process and its children (the map workers), sampled in a thread
    from /proc/PID/smaps_rollup: PSS (pages shared between processes counted once, split
    among them) in total and its anonymous part (heap; the rest is memory-mapped Arrow
    file pages, i.e. page cache the kernel can drop), and the plain RSS sum (which counts
    shared and file-backed pages once per process)."""

    def __init__(self, interval: float = 0.1) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = {"pss": 0, "pss_anon": 0, "rss_sum": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rollup(pid: int) -> dict:
        out = {}
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Pss_Anon"):
                    out[key] = int(rest.split()[0]) * 1024
        return out

    def _sample(self) -> None:
        total = {"pss": 0, "pss_anon": 0, "rss_sum": 0}
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(OSError, ValueError):  # a worker that just exited
                r = self._rollup(p.pid)
                total["pss"] += r.get("Pss", 0)
                total["pss_anon"] += r.get("Pss_Anon", 0)
                total["rss_sum"] += r.get("Rss", 0)
        for k, v in total.items():
            self.peak[k] = max(self.peak[k], v)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def mb(self) -> dict:
        return {f"peak_{k}_mb": round(v / 2**20) for k, v in self.peak.items()}


def edit(rng: random.Random, text: str) -> str:
    """A light random edit, so that no two synthetic documents are the same."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.35 and len(text) > 2:
            i = rng.randrange(len(text))
            text = text[:i] + text[rng.randrange(len(text))] + text[i + 1 :]
        elif kind < 0.6 and len(text) > 20:
            i = rng.randrange(len(text) - 10)
            text = text[:i] + text[i + rng.randint(1, 5) :]
        elif kind < 0.85:
            i = rng.randrange(len(text) + 1)
            text = text[:i] + str(rng.randint(1, 9999)) + text[i:]
        else:
            lines = text.split("\n")
            if len(lines) > 2:
                a, b = rng.sample(range(len(lines)), 2)
                lines[a], lines[b] = lines[b], lines[a]
                text = "\n".join(lines)
    return text


def synthetic_rows(docs: int | None, size_bytes: int | None, seed: int):
    with open(SAMPLE_DATA_DIR / "corpus.jsonl", encoding="utf-8") as fh:
        base = [json.loads(line)["text"] for line in fh if line.strip()]
    rng = random.Random(seed)
    written = count = 0
    while (docs is not None and count < docs) or (size_bytes is not None and written < size_bytes):
        text = edit(rng, base[rng.randrange(len(base))])
        written += len(text.encode("utf-8"))
        count += 1
        yield {"id": f"syn-{count:08d}", "text": text}


def build_corpus(ws, docs: int | None, size_bytes: int | None, seed: int):
    import datasets

    from studio.data.store import cache_dir, write_version

    data = datasets.Dataset.from_generator(
        synthetic_rows,
        gen_kwargs={"docs": docs, "size_bytes": size_bytes, "seed": seed},
        cache_dir=str(cache_dir(ws) / "synthetic"),
    )
    version = write_version(
        ws, "synthetic", data, format="text", operation="bench-synthetic", parent=None
    )
    shutil.rmtree(cache_dir(ws) / "synthetic", ignore_errors=True)
    return version


def reference_filters(pipeline, tmp: Path):
    """HojiChar's own filters for the pipeline's steps that have one, same settings."""
    from hojichar.filters import document_filters as hd

    out = []
    for step in pipeline.active:
        p = step.params
        if step.filter == "nfkc":
            out.append(hd.DocumentNormalizer())
        elif step.filter == "doc_length":
            out.append(hd.DocumentLengthFilter(p["min_chars"], p["max_chars"]))
        elif step.filter == "ad_lines":
            out.append(hd.DiscardAds())
        elif step.filter == "bbs_junk":
            out.append(hd.DiscardBBSComments())
        elif step.filter == "ellipsis_lines":
            out.append(hd.DiscardTooManyEndingEllipsis(p["threshold"]))
        elif step.filter == "char_repetition":
            out.append(hd.CharRepetitionRatioFilter(p["threshold"], p["ngram_size"]))
        elif step.filter == "short_lines":
            f = hd.DiscardTooShortLines(p["threshold"])
            f.minimum_line_length = p["max_line_length"]
            out.append(f)
        elif step.filter == "ng_words" and p["words"]:
            words = tmp / "ng_words.txt"
            words.write_text("\n".join(p["words"]) + "\n", encoding="utf-8")
            # ignore_confused=True with no all-katakana word matches the empty string (a
            # HojiChar quirk): use it only when the list has one
            confused = any(all("ァ" <= c <= "ヴ" or c == "ー" for c in w) for w in p["words"])
            out.append(hd.NgWordsFilterJa(words, ignore_confused=confused))
        elif step.filter == "pii_mask":
            out.append(hd.MaskPersonalInformation())
    return out


def run_hojichar(ws, version, filters) -> dict:
    from hojichar import Compose, Document

    from studio.data.store import open_version

    data = open_version(ws, version)
    compose = Compose(filters)
    kept = 0
    started = time.perf_counter()
    for batch in data.select_columns(["text"]).iter(batch_size=1000):
        for text in batch["text"]:
            kept += not compose.apply(Document(text)).is_rejected
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "kept": kept, "filters": [f.name for f in compose.filters]}


def run_ours(ws, version, pipeline, num_proc: int, dry_run: bool = False) -> dict:
    from studio.data.clean import run_pipeline
    from studio.data.store import delete_version

    started = time.perf_counter()
    result = run_pipeline(ws, version, pipeline, num_proc=num_proc, dry_run=dry_run)
    seconds = time.perf_counter() - started
    if result.version is not None:
        delete_version(ws, result.version)
    return {
        "seconds": seconds,
        "kept": result.report["rows_out"],
        "filter_seconds": result.report["filter_seconds"],
    }


def figures(run: dict, docs: int, size: int) -> dict:
    s = run["seconds"]
    return {
        **{k: v for k, v in run.items() if k != "seconds"},
        "seconds": round(s, 2),
        "docs_per_s": round(docs / s),
        "mb_per_s": round(size / s / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--size-gb", type=float, help="build this many GB instead of --docs")
    parser.add_argument("--pipeline", default="ja", help="preset name or YAML file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-single", action="store_true", help="skip ours_1proc")
    args = parser.parse_args(argv)

    from studio.data.clean import resolve_pipeline
    from studio.workspace import open_workspace

    pipeline = resolve_pipeline(args.pipeline)
    tmp = Path(tempfile.mkdtemp(prefix="clean-bench-"))
    try:
        ws = open_workspace(tmp / "ws")
        t0 = time.perf_counter()
        size_bytes = int(args.size_gb * 1e9) if args.size_gb else None
        version = build_corpus(ws, None if size_bytes else args.docs, size_bytes, args.seed)
        from studio.data.store import open_version

        data = open_version(ws, version)  # converts the Parquet to Arrow once, untimed
        docs = len(data)
        size = sum(
            len(t.encode("utf-8"))
            for b in data.select_columns(["text"]).iter(batch_size=10_000)
            for t in b["text"]
        )
        out = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": len(os.sched_getaffinity(0)),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "pipeline": pipeline.name or args.pipeline,
            "steps": [s.filter for s in pipeline.active],
            "docs": docs,
            "input_mb": round(size / 1e6, 1),
            "build_seconds": round(time.perf_counter() - t0, 1),
        }
        runs = {}
        del data  # the measured runs open the version themselves
        if not size_bytes:
            with PeakMemory() as peak:
                runs["hojichar_1proc"] = run_hojichar(ws, version, reference_filters(pipeline, tmp))
            runs["hojichar_1proc"].update(peak.mb())
            if not args.skip_single:
                with PeakMemory() as peak:
                    runs["ours_1proc"] = run_ours(ws, version, pipeline, 1)
                runs["ours_1proc"].update(peak.mb())
        with PeakMemory() as peak:
            runs["ours_2proc"] = run_ours(ws, version, pipeline, 2)
        runs["ours_2proc"].update(peak.mb())
        if not size_bytes:
            # the same without writing the new version (HojiChar's reference writes nothing)
            with PeakMemory() as peak:
                runs["ours_2proc_no_write"] = run_ours(ws, version, pipeline, 2, dry_run=True)
            runs["ours_2proc_no_write"].update(peak.mb())
        out["runs"] = {k: figures(v, docs, size) for k, v in runs.items()}
        if "hojichar_1proc" in runs:
            ref = out["runs"]["hojichar_1proc"]["docs_per_s"]
            out["ratio_ours_2proc_to_hojichar_1proc"] = round(
                out["runs"]["ours_2proc"]["docs_per_s"] / ref, 2
            )
            for name in ("ours_1proc", "ours_2proc_no_write"):
                if name in runs:
                    out[f"ratio_{name}_to_hojichar_1proc"] = round(
                        out["runs"][name]["docs_per_s"] / ref, 2
                    )
        usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out["getrusage_maxrss_mb"] = {
            "main": round(usage_self / 1024),
            "largest_child": round(usage_children / 1024),
        }
        out["peak_pss_mb"] = max(r["peak_pss_mb"] for r in runs.values())
        out["peak_pss_anon_mb"] = max(r["peak_pss_anon_mb"] for r in runs.values())
        out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(out, ensure_ascii=False, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
