"""Load: concurrent client sessions reading dashboards and generating while a run trains.

Starts `python app.py` on a fresh workspace, then trains the CPU demo preset three times
(shortened to --steps steps, no evaluation, no checkpoints): alone, with --clients
concurrent gradio_client sessions, and alone again. Each session loops over what a person
watching the studio does: the Runs tab's history, the Train tab's live status and curve
of the run, and a short generation on the Model tab. Reports the run's training
throughput (tokens/s from its metrics.jsonl, warm-up steps excluded) in each phase, the
ratio loaded/unloaded, and the requests made, failed and their latencies.

    python bench/load.py [--clients 10] [--steps 60] [--json load.json]

Run it as a user would: without OMP_NUM_THREADS (torch then uses every core), on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import app_process, generate_args  # noqa: E402

WARMUP_STEPS = 5


def start_run(ws: Path, steps: int) -> str:
    sets = [
        f"training.max_steps={steps}",
        "training.eval_strategy=no",
        "training.save_steps=100000",
        "training.logging_steps=1",
    ]
    cmd = [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--workspace", str(ws)]
    cmd += [a for s in sets for a in ("--set", s)] + ["--detach", "--json"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["run"]


def run_state(ws: Path, run_id: str) -> dict:
    path = ws / "runs" / run_id / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def throughput(ws: Path, run_id: str) -> dict:
    rows = [
        json.loads(line)
        for line in (ws / "runs" / run_id / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    train = [r for r in rows if r.get("kind") == "train" and r.get("tokens")]
    first = next(r for r in train if r["step"] >= WARMUP_STEPS)
    last = train[-1]
    return {
        "run": run_id,
        "steps": last["step"],
        "tokens_per_s": round(
            (last["tokens"] - first["tokens"]) / (last["elapsed"] - first["elapsed"]), 1
        ),
        "seconds": round(last["elapsed"], 1),
    }


class Session(threading.Thread):
    """One person's browser tab: history, live status, a short generation, again."""

    def __init__(self, url: str, run_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id, self.stop = url, run_id, stop
        self.latencies: dict[str, list[float]] = {"history": [], "status": [], "generate": []}
        self.errors: list[str] = []

    def call(self, client, name: str, *args, **kwargs) -> None:
        started = time.perf_counter()
        try:
            client.predict(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return
        self.latencies[name].append(time.perf_counter() - started)

    def run(self) -> None:
        from gradio_client import Client

        client = Client(self.url, verbose=False, analytics_enabled=False)
        n = 0
        while not self.stop.is_set():
            self.call(client, "history", "", [], "created", "en", api_name="/runs_history")
            self.call(client, "status", self.run_id, 0.0, "loss", "step", "linear", "en",
                      api_name="/train_status")  # fmt: skip
            args = generate_args(prompt="富士山は", max_new_tokens=16, seed=n)
            self.call(client, "generate", **args, api_name="/generate")
            n += 1


def phase(app: dict, steps: int, clients: int) -> dict:
    ws = app["workspace"]
    run_id = start_run(ws, steps)
    while run_state(ws, run_id).get("state") in {None, "queued"}:
        time.sleep(0.5)
    stop = threading.Event()
    sessions = [Session(app["url"], run_id, stop) for _ in range(clients)]
    for s in sessions:
        s.start()
    while run_state(ws, run_id).get("state") in {"queued", "running"}:
        time.sleep(1)
    stop.set()
    for s in sessions:
        s.join(timeout=120)
    result = throughput(ws, run_id) | {"state": run_state(ws, run_id).get("state")}
    if clients:
        lat = {
            k: [x for s in sessions for x in s.latencies[k]]
            for k in ("history", "status", "generate")
        }
        result["clients"] = clients
        result["requests"] = sum(len(v) for v in lat.values())
        result["errors"] = [e for s in sessions for e in s.errors]
        result["latency_s"] = {
            k: {"n": len(v), "median": round(statistics.median(v), 3), "max": round(max(v), 3)}
            for k, v in lat.items()
            if v
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.pop(var, None)  # as a user runs it: torch picks its threads
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="studio-load-") as tmp:
        ws = Path(tmp) / "ws"
        with app_process(ws, Path(tmp) / "app.log") as app:
            phases = {
                "unloaded": phase(app, args.steps, 0),
                "loaded": phase(app, args.steps, args.clients),
                "unloaded_again": phase(app, args.steps, 0),
            }
    alone = statistics.mean(
        [phases["unloaded"]["tokens_per_s"], phases["unloaded_again"]["tokens_per_s"]]
    )
    report = {
        "cpu_count": os.cpu_count(),
        "phases": phases,
        "unloaded_tokens_per_s": round(alone, 1),
        "loaded_share": round(phases["loaded"]["tokens_per_s"] / alone, 3),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
