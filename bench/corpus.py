"""Generated corpora of any size, for the benchmarks and the tests that need a big dataset.

Documents are drawn at random (seeded) from the sentences of the bundled corpus
(`assets/data/corpus.jsonl`: mostly Japanese, some English and mixed), 2-6 paragraphs of
3-8 sentences each, about 1-3 KB. Written as a Parquet dataset version, as the Data tab
writes them, in batches, so a 4 GB corpus never sits in memory.

    python bench/corpus.py --workspace WS --name gen-1g --gb 1
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SPLIT = re.compile(r"(?<=[。！？!?\.])\s*")


def sentences() -> list[str]:
    found = []
    with open(REPO / "assets" / "data" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            for paragraph in json.loads(line)["text"].split("\n"):
                found += [s.strip() for s in SPLIT.split(paragraph) if len(s.strip()) >= 8]
    return sorted(set(found))


def documents(size_bytes: int, seed: int = 0) -> Iterator[str]:
    """Documents until `size_bytes` of UTF-8 text were produced."""
    pool = sentences()
    rng = random.Random(seed)
    produced = 0
    while produced < size_bytes:
        paragraphs = []
        for _ in range(rng.randint(2, 6)):
            paragraphs.append("".join(rng.choice(pool) for _ in range(rng.randint(3, 8))))
        doc = "\n".join(paragraphs)
        produced += len(doc.encode("utf-8"))
        yield doc


def write_dataset(ws, name: str, size_bytes: int, seed: int = 0, batch: int = 5000):
    """A `text` dataset version of about `size_bytes` of generated documents."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.data.registry import add_version

    folder = Path(tempfile.mkdtemp(prefix=".generated-", dir=ws.datasets))
    path = folder / "data.parquet"
    schema = pa.schema([("text", pa.string())])
    rows = []
    with pq.ParquetWriter(path, schema) as writer:
        for doc in documents(size_bytes, seed):
            rows.append(doc)
            if len(rows) >= batch:
                writer.write_table(pa.table({"text": rows}, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.table({"text": rows}, schema=schema))
    version = add_version(
        ws.datasets,
        name,
        {"data.parquet": path},
        format="text",
        operation="generated",
        settings={"bytes": size_bytes, "seed": seed},
        move=True,
    )
    folder.rmdir()
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--gb", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from studio.workspace import open_workspace

    version = write_dataset(
        open_workspace(args.workspace), args.name, int(args.gb * 2**30), args.seed
    )
    print(json.dumps({"spec": version.spec, "rows": version.rows, "bytes": version.bytes}))


if __name__ == "__main__":
    main()
