"""The token store at the field reports' scale: encoding throughput against `datasets.map`,
the training process's memory at three corpus sizes, the time to the first step cold and
warm, disk per token, and a real continued pre-training run.

    python bench/token_store.py --dir /path/with/room [--sizes 0.1,1,4] [--workers 2]
        [--parts encode,rss,first_step,real] [--real-gb 2] [--real-steps 300]

Corpora are generated once into DIR/ws (bench/corpus.py) and reused by later runs. Prints
one JSON object and writes it to DIR/token_store.json; docs/benchmarks.md records it.
Run it alone: other jobs on the machine make every figure meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def log(*parts) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


def corpus(ws, gb: float):
    """The generated corpus of `gb` GB (made once)."""
    from bench.corpus import write_dataset
    from studio.data.registry import find_version

    name = f"gen-{gb:g}g".replace(".", "p")
    try:
        return find_version(ws, name)
    except LookupError:
        started = time.perf_counter()
        version = write_dataset(ws, name, int(gb * 2**30))
        log(
            f"generated {version.spec}: {version.rows:,} rows in {time.perf_counter() - started:.0f} s"
        )
        return version


def proc_status(pid: int) -> dict:
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0]) / 1024  # MiB
    except OSError:
        pass
    return fields


class Sampler:
    """Peak memory of a process (and its children) sampled from /proc every 50 ms."""

    def __init__(self, pid_of) -> None:
        self.pid_of = pid_of  # callable: the pid to sample, or None while it is not known
        self.peak: dict = {}
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            pid = self.pid_of()
            if pid:
                for key, value in proc_status(pid).items():
                    self.peak[key] = max(self.peak.get(key, 0.0), value)
            time.sleep(0.05)

    def stop(self) -> dict:
        self.running = False
        self.thread.join()
        return {k: round(v, 1) for k, v in self.peak.items()}


# --- encoding throughput -------------------------------------------------------------------


def encode_throughput(ws, version, workers: int) -> dict:
    """The studio's store against the same tokenizer's batched encode in `datasets.map` with
    the same number of processes, on the same texts, both written to disk."""
    import datasets

    from studio.labels.encode import EncodingSettings, resolve_tokens
    from studio.models.load import load_tokenizer, resolve_source
    from studio.tokens.cache import remove_store
    from studio.train.data import open_rows

    datasets.disable_progress_bars()
    tokenizer = load_tokenizer(resolve_source(""))
    settings = EncodingSettings(stage="pretrain", packing="isolated", max_length=512)
    tok = resolve_tokens(tokenizer, settings)
    started = time.perf_counter()
    rows = open_rows(ws, [version.spec], tok, settings, workers=workers)
    studio_s = time.perf_counter() - started
    tokens = rows.n_tokens
    store_bytes = sum(p.stat().st_size for p in rows.folder.glob("*.bin"))
    rows.close()
    remove_store(ws, rows.folder.name)

    cache = Path(tempfile.mkdtemp(prefix="bench-map-", dir=ws.root))
    try:
        data = datasets.Dataset.from_parquet(
            str(Path(version.path) / version.files[0]), cache_dir=str(cache)
        )
        started = time.perf_counter()
        mapped = data.map(
            lambda batch: tokenizer(batch["text"]),
            batched=True,
            num_proc=workers if workers > 1 else None,
            remove_columns=["text"],
            cache_file_name=str(cache / "tokens.arrow"),
        )
        map_s = time.perf_counter() - started
        del mapped
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {
        "rows": version.rows,
        "text_bytes": version.settings.get("bytes"),
        "tokens": tokens,
        "workers": workers,
        "studio_seconds": round(studio_s, 1),
        "studio_tokens_per_s": round(tokens / studio_s),
        "datasets_map_seconds": round(map_s, 1),
        "datasets_map_tokens_per_s": round(tokens / map_s),
        "ratio": round(map_s / studio_s, 3),
        "store_bytes_per_token": round(store_bytes / tokens, 3),
    }


def wide_vocabulary_store(ws, version) -> dict:
    """Disk per token when the vocabulary does not fit two bytes (Llama-3, Qwen2.5, Gemma):
    the embedded tokenizer with 70,000 added tokens, so that ids need four bytes."""
    from studio.labels.encode import EncodingSettings, resolve_tokens
    from studio.models.load import load_tokenizer, resolve_source
    from studio.tokens.cache import remove_store
    from studio.train.data import open_rows

    tokenizer = load_tokenizer(resolve_source(""))
    tokenizer.add_tokens([f"<unused_{i}>" for i in range(70_000)])
    settings = EncodingSettings(stage="pretrain", packing="isolated", max_length=512)
    rows = open_rows(ws, [version.spec], resolve_tokens(tokenizer, settings), settings)
    size = sum(p.stat().st_size for p in rows.folder.glob("*.bin"))
    result = {
        "vocabulary": len(tokenizer),
        "id_dtype": rows.meta["id_dtype"],
        "tokens": rows.n_tokens,
        "store_bytes_per_token": round(size / rows.n_tokens, 3),
    }
    rows.close()
    remove_store(ws, rows.folder.name)
    return result


# --- runs ----------------------------------------------------------------------------------


def studio_cli(ws, *args, timeout=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "studio", *args, "--workspace", str(ws.root), "--json"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def run_sets(version, steps: int) -> list[str]:
    sets = [
        f"dataset={version.spec}",
        f"max_steps={steps}",
        "validation_split=0",
        "save_steps=100000",
        "logging_steps=1",
    ]
    return [part for s in sets for part in ("--set", s)]


def train_and_watch(ws, version, steps: int) -> dict:
    """`python -m studio train cpu-demo-pretrain` on the corpus, the training process's peak
    memory sampled until it ends, and when its first step was logged."""
    from studio.runs.store import Run

    started = time.time()
    cli = subprocess.Popen(
        [sys.executable, "-m", "studio", "train", "cpu-demo-pretrain", *run_sets(version, steps),
         "--detach", "--workspace", str(ws.root), "--json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    cli_peak = Sampler(lambda: cli.pid)
    out, err = cli.communicate()
    cli_rss = cli_peak.stop()
    if cli.returncode != 0:
        raise RuntimeError(err[-3000:])
    run = Run(Path(json.loads(out)["dir"]))
    checked_at = time.time()

    def pid():
        info = run.json_of(run.process_path) or {}
        return info.get("pid")

    sampler = Sampler(pid)
    first_step = None
    deadline = time.time() + 6 * 3600
    while time.time() < deadline:
        if first_step is None and run.metrics_path.exists() and run.metrics_path.stat().st_size:
            first_step = time.time()
        state = run.state
        if state not in ("queued", "running") and pid() and not Path(f"/proc/{pid()}").exists():
            break
        time.sleep(0.1)
    peak = sampler.stop()
    metrics = [m for m in run.metrics() if m.get("kind") == "train"]
    text = run.log_path.read_text(errors="replace")
    data_s = None
    for line in text.splitlines():
        if "data ready in" in line:
            data_s = float(line.rsplit("in ", 1)[1].split()[0])
    return {
        "state": run.state,
        "check_seconds": round(checked_at - started, 1),
        "to_first_step_seconds": round(first_step - started, 1) if first_step else None,
        "training_process_data_seconds": data_s,
        "training_process_peak_mib": peak,
        "check_process_peak_mib": cli_rss,
        "steps": len(metrics),
        "first_loss": metrics[0]["loss"] if metrics else None,
        "last_loss": metrics[-1]["loss"] if metrics else None,
        "tokens_per_s": metrics[-1].get("tokens_per_s") if metrics else None,
        "wall_seconds": round(time.time() - started, 1),
        "run": run.id,
    }


def remove_stores(ws) -> None:
    from studio.tokens.cache import list_stores, remove_store

    for store in list_stores(ws):
        remove_store(ws, store.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--sizes", default="0.1,1,4", help="corpus sizes in GB")
    parser.add_argument("--encode-sizes", default="0.1,1", help="sizes for the throughput test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts", default="encode,rss,first_step,real")
    parser.add_argument("--rss-steps", type=int, default=30)
    parser.add_argument("--real-gb", type=float, default=2.0)
    parser.add_argument("--real-steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from studio.tokens.cache import list_stores
    from studio.workspace import open_workspace

    ws = open_workspace(args.dir / "ws")
    ws.update_meta(token_cache_gb=1000)  # the bench decides what to remove
    parts = set(args.parts.split(","))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    if "encode" in parts:
        result["encode"] = []
        for gb in map(float, args.encode_sizes.split(",")):
            version = corpus(ws, gb)
            remove_stores(ws)
            log(f"encoding {version.spec} with {args.workers} processes, then datasets.map")
            result["encode"].append({"gb": gb, **encode_throughput(ws, version, args.workers)})
            log(result["encode"][-1])
        result["wide_vocabulary"] = wide_vocabulary_store(ws, corpus(ws, 0.1))
        log(result["wide_vocabulary"])
    if "rss" in parts:
        result["rss"] = []
        for gb in map(float, args.sizes.split(",")):
            version = corpus(ws, gb)
            log(f"training {args.rss_steps} steps on {version.spec}")
            result["rss"].append({"gb": gb, **train_and_watch(ws, version, args.rss_steps)})
            log(result["rss"][-1])
    if "first_step" in parts:
        version = corpus(ws, 1.0)
        remove_stores(ws)
        cold = train_and_watch(ws, version, 3)
        warm = train_and_watch(ws, version, 3)
        result["first_step_1g"] = {"cold": cold, "warm": warm}
        log(result["first_step_1g"])
    if "real" in parts:
        version = corpus(ws, args.real_gb)
        result["real"] = {"gb": args.real_gb, **train_and_watch(ws, version, args.real_steps)}
        log(result["real"])
    result["stores"] = [
        {k: s.to_dict()[k] for k in ("sources", "rows", "tokens", "bytes", "bytes_per_token")}
        for s in list_stores(ws)
    ]
    text = json.dumps(result, indent=2, ensure_ascii=False)
    (args.dir / "token_store.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
