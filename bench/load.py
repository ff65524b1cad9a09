"""Load: concurrent client sessions reading dashboards and generating while a run trains.

Starts `python app.py` on a fresh workspace, then trains the CPU demo preset three times
from the Train tab (shortened to --steps steps, no evaluation or checkpoints on the way):
alone, with --clients concurrent gradio_client sessions, and alone again. Each session is a
person's browser tab: the Train tab's live status every second, the Runs history every 5 s
and a 32-token generation every 10 s (`--stress`: all of it back to back). Reports the run's
training throughput (tokens/s from its metrics.jsonl, warm-up steps excluded) in each
phase, the share loaded/unloaded, the requests made and failed with their latencies, and
the nice values of the app and the training process.

    python bench/load.py [--clients 10] [--steps 60] [--stress] [--busy N] [--json load.json]

All sessions connect at once as the loaded phase starts (people opening the studio
together); `--busy N` keeps N busy processes at the user's priority running beside it in
every phase, as on a machine shared with other work.

Run it as a user would: without OMP_NUM_THREADS (torch then uses every core), on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import app_process, generate_args, train_form  # noqa: E402

WARMUP_STEPS = 5


def start_run(url: str, steps: int) -> str:
    """Start the CPU demo preset from the Train tab, shortened to `steps` steps with no
    evaluation or checkpoints on the way; returns the run id."""
    from gradio_client import Client

    form = train_form(**{"training.max_steps": steps, "training.save_steps": 100000,
                         "training.eval_steps": 100000})  # fmt: skip
    client = Client(url, verbose=False, analytics_enabled=False)
    message, *_, picked = client.predict(*form, "en", api_name="/train_start")
    if not message.startswith("Started run"):
        raise RuntimeError(message)
    return picked if isinstance(picked, str) else picked["value"]


def nice_of(pid: int) -> int | None:
    """A process's nice value, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[16])


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
    """One person's browser tab. Watching (the default): the Train tab's live status every
    second, the Runs history every 5 s and a short generation every 10 s, as the page's
    timers and a person chatting would; `think=False` sends them back to back (a stress
    test: no person clicks that fast)."""

    PERIODS = {"status": 1.0, "history": 5.0, "generate": 10.0}

    def __init__(self, url: str, run_id: str, stop: threading.Event, *, think: bool = True,
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.url, self.run_id, self.stop, self.think = url, run_id, stop, think
        self.random = random.Random(seed)
        self.latencies: dict[str, list[float]] = {k: [] for k in self.PERIODS}
        self.errors: list[str] = []
        self.connect_s: float | None = None

    def call(self, client, name: str, *args, **kwargs) -> None:
        started = time.perf_counter()
        try:
            client.predict(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return
        self.latencies[name].append(time.perf_counter() - started)

    def request(self, client, name: str, n: int) -> None:
        if name == "status":
            self.call(client, name, self.run_id, 0.0, "loss", "step", "linear", "en",
                      api_name="/train_status")  # fmt: skip
        elif name == "history":
            self.call(client, name, "", [], "created", "en", api_name="/runs_history")
        else:
            args = generate_args(prompt="富士山は", max_new_tokens=32, seed=n)
            self.call(client, name, **args, api_name="/generate")

    def run(self) -> None:
        from gradio_client import Client

        started = time.perf_counter()
        try:
            client = Client(self.url, verbose=False, analytics_enabled=False)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.errors.append(f"connect: {type(exc).__name__}: {exc}")
            return
        self.connect_s = time.perf_counter() - started
        # each tab was opened at its own moment
        due = {k: time.monotonic() + self.random.uniform(0, p) for k, p in self.PERIODS.items()}
        n = 0
        while not self.stop.is_set():
            name = min(due, key=due.get)
            if self.think:
                self.stop.wait(max(0.0, due[name] - time.monotonic()))
                if self.stop.is_set():
                    break
            self.request(client, name, n)
            due[name] = time.monotonic() + (self.PERIODS[name] if self.think else 0.0)
            n += 1


def phase(app: dict, steps: int, clients: int, *, think: bool = True) -> dict:
    ws = app["workspace"]
    run_id = start_run(app["url"], steps)
    while run_state(ws, run_id).get("state") in {None, "queued"}:
        time.sleep(0.2)
    child_nice = nice_of(run_state(ws, run_id).get("pid") or 0)
    stop = threading.Event()
    sessions = [Session(app["url"], run_id, stop, think=think, seed=i) for i in range(clients)]
    for s in sessions:
        s.start()
    while run_state(ws, run_id).get("state") in {"queued", "running"}:
        time.sleep(0.5)
    stop.set()
    for s in sessions:
        s.join(timeout=120)
    result = throughput(ws, run_id) | {"state": run_state(ws, run_id).get("state")}
    result["nice"] = {"app": nice_of(app["proc"].pid), "training": child_nice}
    if clients:
        kinds = Session.PERIODS
        lat = {k: [x for s in sessions for x in s.latencies[k]] for k in kinds}
        result["clients"] = clients
        result["think"] = think
        connected = [s.connect_s for s in sessions if s.connect_s is not None]
        result["connected"] = len(connected)
        result["connect_s"] = {"median": round(statistics.median(connected), 2),
                               "max": round(max(connected), 2)} if connected else None  # fmt: skip
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
    parser.add_argument("--stress", action="store_true", help="no pauses between requests")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the app and its runs")
    parser.add_argument("--busy", type=int, default=0,
                        help="busy processes at the user's priority beside it, in every phase "
                        "(a shared machine)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.pop(var, None)  # as a user runs it: torch picks its threads
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        phases = measure(args)
    finally:
        for process in busy:
            process.kill()
    alone = statistics.mean(
        [phases["unloaded"]["tokens_per_s"], phases["unloaded_again"]["tokens_per_s"]]
    )
    report = {
        "cpu_count": os.cpu_count(),
        "busy_processes": args.busy,
        "phases": phases,
        "unloaded_tokens_per_s": round(alone, 1),
        "loaded_share": round(phases["loaded"]["tokens_per_s"] / alone, 3),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


def measure(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="studio-load-") as tmp:
        ws = Path(tmp) / "ws"
        with app_process(ws, Path(tmp) / "app.log") as app:
            return {
                "unloaded": phase(app, args.steps, 0),
                "loaded": phase(app, args.steps, args.clients, think=not args.stress),
                "unloaded_again": phase(app, args.steps, 0),
            }


if __name__ == "__main__":
    main()
