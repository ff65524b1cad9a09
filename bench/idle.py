"""Responsiveness: the idle app's CPU, and a 64-token generation alone and while a run trains.

Starts `python app.py` on a fresh workspace with Gradio's queue polling every 1 ms (Gradio's
default on Linux) and every 10 ms (the studio's, `STUDIO_QUEUE_POLL_MS`); for each, the
app's CPU over 30 s with no client (after 20 s of settling). Then, with the studio's
setting, the Model tab's generation of 64 tokens (greedy) alone and while the CPU demo
trains from the Train tab (median of 5 each).

    python bench/idle.py [--json idle.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import run_state, start_run  # noqa: E402
from tests.conftest import app_process, generate_args  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(poll_ms: int, settle: float = 20, window: float = 30) -> float:
    with tempfile.TemporaryDirectory(prefix="studio-idle-") as tmp:
        env = {"STUDIO_QUEUE_POLL_MS": str(poll_ms)}
        with app_process(Path(tmp) / "ws", Path(tmp) / "app.log", env=env) as app:
            time.sleep(settle)
            pid = app["proc"].pid
            before, started = cpu_seconds(pid), time.monotonic()
            time.sleep(window)
            return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def generation_latency(times: int = 5) -> dict:
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="studio-idle-") as tmp:
        ws = Path(tmp) / "ws"
        with app_process(ws, Path(tmp) / "app.log") as app:
            client = Client(app["url"], verbose=False, analytics_enabled=False)
            args = generate_args(prompt="富士山は", max_new_tokens=64, greedy=True)

            def median_s() -> float:
                took = []
                for _ in range(times):
                    started = time.perf_counter()
                    client.predict(**args, api_name="/generate")
                    took.append(time.perf_counter() - started)
                return round(statistics.median(took), 3)

            median_s()  # the first call loads the model
            alone = median_s()
            run_id = start_run(app["url"], steps=400)
            while run_state(ws, run_id).get("state") in {None, "queued"}:
                time.sleep(0.5)
            time.sleep(5)  # past the run's start-up
            training = median_s()
            still = run_state(ws, run_id).get("state")
            return {"alone_s": alone, "while_training_s": training, "run_state_after": still}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.pop(var, None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = {
        "idle_cpu_share": {
            "gradio_default_1ms": round(idle_share(1), 4),
            "studio_10ms": round(idle_share(10), 4),
        },
        "generate_64_tokens": generation_latency(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
