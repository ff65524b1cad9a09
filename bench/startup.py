"""Measure how fast `python app.py` becomes usable: time to first HTTP 200 and to the first
generated text through gradio_client, over a few fresh starts.

    python bench/startup.py [--runs 3]

Prints one JSON object; copy the figures into docs/benchmarks.md with the date and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, generate_args, wait_for_http  # noqa: E402


def one_start() -> dict:
    from gradio_client import Client

    with tempfile.TemporaryDirectory() as ws:
        port = free_port()
        env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--no-browser", "--port", str(port), "--workspace", ws],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            http = wait_for_http(url, proc, timeout=120)
            client = Client(url, analytics_enabled=False, verbose=False)
            t0 = time.monotonic()
            client.predict(
                **generate_args(prompt="富士山は", max_new_tokens=64, lang="ja"),
                api_name="/generate",
            )
            first_gen = time.monotonic() - t0
            return {
                "http_200_s": round(http, 2),
                "first_generate_64_tokens_s": round(first_gen, 2),
                "ready_to_text_s": round(time.monotonic() - started, 2),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    runs = [one_start() for _ in range(args.runs)]
    summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "runs": runs,
                "median": summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
