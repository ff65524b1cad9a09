"""A hostile input: a JSONL file whose first line is one giant row (default 1 GiB).

Writes the file, then runs `python -m studio data import` on it in a child process,
sampling the child's resident memory from /proc every 10 ms, and reports the time, the
peak RSS and the message the user got. The importer must refuse the line (it is longer
than any row of a dataset) without reading it whole.

    python bench/long_line.py [--gib 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHUNK = b"a" * (16 * 2**20)


def write_line(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.write(b'{"text": "')
        written = 0
        while written < size:
            piece = CHUNK[: min(len(CHUNK), size - written)]
            fh.write(piece)
            written += len(piece)
        fh.write(b'"}\n{"text": "a second, ordinary row"}\n')


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-long-line-") as tmp:
        path = Path(tmp) / "huge.jsonl"
        started = time.perf_counter()
        write_line(path, int(args.gib * 2**30))
        written = time.perf_counter() - started
        cmd = [sys.executable, "-m", "studio", "data", "import", str(path), "--name", "huge",
               "--workspace", str(Path(tmp) / "ws"), "--json"]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peak = [0.0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, err = proc.communicate()
        seconds = time.perf_counter() - started
        sampler.join()
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            answer = {"stdout": out.decode()[-500:], "stderr": err.decode()[-500:]}
        report = {
            "line_bytes": path.stat().st_size,
            "write_seconds": round(written, 2),
            "import_seconds": round(seconds, 2),
            "peak_rss_mb": round(peak[0], 1),
            "exit_code": proc.returncode,
            "traceback_shown": "Traceback" in out.decode() + err.decode(),
            "answer": answer,
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
