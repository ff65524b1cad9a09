"""Exact and near-duplicate removal: keep the first document of every duplicate cluster.

1. **Exact**: every document's text is normalised (Unicode NFKC, runs of whitespace collapsed
   to one space) and hashed (BLAKE2b, 64 bits); a document whose normalised text was already
   seen is an exact duplicate of the first one.
2. **Near**: the normalised text is cut into overlapping character shingles (5 characters by
   default, which suits Japanese text without word boundaries), each hashed to 64 bits,
   sketched with rensa's R-MinHash and indexed in rensa's MinHash LSH (`RMinHashLSH`).
   Every candidate pair the index returns is confirmed with the exact Jaccard similarity of
   the two documents' shingle sets (as sets of shingle hashes: two distinct shingles share
   a hash with a chance of the order of 2**-43) before the documents are joined, so a
   chance band collision never removes a document.
3. Union-find joins exact and confirmed near pairs into clusters; the first document of each
   cluster in file order is kept (the bundled corpus puts every copy after its original).

The rows are read in batches from the memory-mapped Arrow dataset. What stays in memory is
per document: the exact hash, the signature (`num_perm` x 4 bytes), the LSH index (about
1.5 KB at the default 64 permutations and 16 bands) and, for duplicates, the union-find.
With `num_proc` > 1 and enough rows, normalising, shingling and sketching run in fresh
worker processes (see `_Workers`).

The result is a new dataset version; the clusters (each kept document with its removed
members and their Jaccard similarity to it) are saved beside it, outside the immutable
version folder, at `<workspace>/analysis/<name>/<version>/dedup-clusters.json`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import subprocess
import sys
import time
import traceback
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_THRESHOLD = 0.7
DEFAULT_SHINGLE = 5
DEFAULT_NUM_PERM = 64
MINHASH_SEED = 42
CLUSTERS_FILE = "dedup-clusters.json"
BATCH_ROWS = 2048  # rows per batch sent to a worker
PARALLEL_MIN_ROWS = 20_000  # below this, starting worker processes costs more than it saves
CONFIRM_CHUNK = 20_000  # candidate pairs confirmed per round (bounds the texts held at once)
RECALL_AT_THRESHOLD = 0.85  # LSH bands: chance that a pair exactly at the threshold is found


# --- text ------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII, half-width kana full-width) with
    every run of whitespace, line breaks included, collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def text_hash(normalized: str) -> int:
    """A 64-bit hash of normalised text, the key of exact deduplication."""
    digest = hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingles(normalized: str, n: int = DEFAULT_SHINGLE) -> list[str]:
    """Overlapping character n-grams of normalised text (a text shorter than n is one
    shingle; an empty text has none). The reference definition: the pipeline works on
    their 64-bit hashes (`shingle_hashes`), one per shingle."""
    if len(normalized) <= n:
        return [normalized] if normalized else []
    return [normalized[i : i + n] for i in range(len(normalized) - n + 1)]


_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _position_weights(count: int = 64):
    """Fixed odd 64-bit multipliers, one per position in a shingle (splitmix64 of 1..64):
    the same on every machine and in every process."""
    import numpy as np

    out = []
    x = 0
    for _ in range(count):
        x = (x + _GOLDEN) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append((z ^ (z >> 31)) | 1)
    return np.array(out, dtype=np.uint64)


_WEIGHTS = None


def _fmix64(h):
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array (a bijection)."""
    import numpy as np

    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def shingle_hashes(normalized: Sequence[str], n: int = DEFAULT_SHINGLE) -> list:
    """For each normalised text, a uint64 array with the hash of every character n-gram
    (`shingles`), computed for the whole batch at once: the code points weighted by fixed
    odd multipliers per position, summed modulo 2**64 and mixed. Distinct shingles get
    distinct hashes except with a chance of the order of 2**-43 per pair."""
    import numpy as np

    global _WEIGHTS
    if _WEIGHTS is None:
        _WEIGHTS = _position_weights()
    weights = _WEIGHTS[:n]
    lengths = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(ends[-1]) if len(ends) else 0
    points = np.frombuffer("".join(normalized).encode("utf-32-le"), dtype=np.uint32)
    points = np.concatenate([points.astype(np.uint64), np.zeros(n, dtype=np.uint64)])
    with np.errstate(over="ignore"):
        h = points[:total] * weights[0]
        for k in range(1, n):
            h += points[k : k + total] * weights[k]
        _fmix64(h)
        out = []
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            if length >= n:
                out.append(h[start : start + length - n + 1])
            elif length:  # shorter than a shingle: the whole text is the one shingle
                short = np.array(
                    [(points[start : start + length] * weights[:length]).sum()], np.uint64
                )
                out.append(_fmix64(short))
            else:
                out.append(h[:0])
    return out


def _sorted_unique(a):
    """np.unique for small arrays, by sorting (several times faster than its hash path)."""
    import numpy as np

    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def shingle_sets(normalized: Sequence[str], n: int = DEFAULT_SHINGLE) -> list:
    """The set of shingle hashes of each normalised text, as a sorted unique uint64 array."""
    return [_sorted_unique(a) for a in shingle_hashes(normalized, n)]


def jaccard(a, b) -> float:
    """Exact Jaccard similarity of two shingle sets: Python sets, or sorted unique arrays
    from `shingle_sets` (0 when either is empty)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    if isinstance(a, (set, frozenset)):
        inter = len(a & b)
    else:
        import numpy as np

        if len(a) > len(b):
            a, b = b, a
        at = np.searchsorted(b, a)
        at[at == len(b)] = 0
        inter = int(np.count_nonzero(b[at] == a))
    return inter / (len(a) + len(b) - inter)


def lsh_bands(threshold: float, num_perm: int) -> int:
    """The number of LSH bands: as few rows per band as needed for a pair exactly at the
    threshold to become a candidate with probability >= 0.85 (pairs above it, more often),
    and no fewer, so dissimilar pairs rarely become candidates. rensa needs `num_perm`
    divisible by the number of bands."""
    best = num_perm  # one row per band: the most permissive
    for rows in range(num_perm, 0, -1):
        if num_perm % rows:
            continue
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= RECALL_AT_THRESHOLD:
            best = bands
            break
    return best


# --- settings and results --------------------------------------------------------------


@dataclass
class DedupSettings:
    threshold: float = DEFAULT_THRESHOLD
    shingle: int = DEFAULT_SHINGLE
    num_perm: int = DEFAULT_NUM_PERM
    exact_only: bool = False
    seed: int = MINHASH_SEED

    def validate(self) -> DedupSettings:
        from studio.data.store import DataError

        if not 0.0 < float(self.threshold) <= 1.0:
            raise DataError(f"threshold must be between 0 and 1 (got {self.threshold})")
        if not 1 <= int(self.shingle) <= 64:
            raise DataError(f"shingle size must be 1-64 characters (got {self.shingle})")
        if not 8 <= int(self.num_perm) <= 1024 or int(self.num_perm) % 8:
            raise DataError(
                f"num_perm must be a multiple of 8 between 8 and 1024 (got {self.num_perm})"
            )
        self.threshold, self.shingle = float(self.threshold), int(self.shingle)
        self.num_perm, self.exact_only = int(self.num_perm), bool(self.exact_only)
        return self

    @property
    def bands(self) -> int:
        return lsh_bands(self.threshold, self.num_perm)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.exact_only:
            d["bands"] = self.bands
        return d


@dataclass
class Member:
    index: int  # 0-based row in the input version
    id: str  # the row's `id` field, or "row N" (1-based) without one
    jaccard: float  # exact Jaccard of its shingles with the kept document's
    kind: str  # "exact" (same normalised text as the kept one) or "near"


@dataclass
class Cluster:
    kept: Member
    members: list[Member]  # the removed documents, in file order

    @property
    def size(self) -> int:
        return 1 + len(self.members)

    def to_dict(self) -> dict:
        return {
            "kept": asdict(self.kept),
            "members": [asdict(m) for m in self.members],
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Cluster:
        return cls(Member(**d["kept"]), [Member(**m) for m in d["members"]])


@dataclass
class DuplicateReport:
    """What deduplication found in a dataset, before anything is written."""

    rows: int
    removed: list[int]  # 0-based rows to drop, ascending
    clusters: list[Cluster]
    exact_removed: int
    near_removed: int
    candidate_pairs: int  # pairs the LSH index returned
    screened_pairs: int  # ... whose signatures were close enough for an exact check
    confirmed_pairs: int  # ... whose exact Jaccard reached the threshold
    seconds: float
    settings: DedupSettings = field(default_factory=DedupSettings)
    worker_rss_mb: list[float] = field(default_factory=list)  # peak memory of each worker

    def counts(self) -> dict:
        return {
            "in": self.rows,
            "out": self.rows - len(self.removed),
            "removed": {
                "exact_duplicate": self.exact_removed,
                "near_duplicate": self.near_removed,
            },
            "clusters": len(self.clusters),
            "candidate_pairs": self.candidate_pairs,
            "screened_pairs": self.screened_pairs,
            "confirmed_pairs": self.confirmed_pairs,
        }


@dataclass
class DedupResult:
    version: object  # DatasetVersion written
    parent: str
    report: DuplicateReport
    clusters_path: Path

    def to_dict(self, max_clusters: int | None = None) -> dict:
        clusters = self.report.clusters
        shown = clusters if max_clusters is None else clusters[:max_clusters]
        return {
            "version": self.version.spec,
            "parent": self.parent,
            "rows": self.version.rows,
            "counts": self.report.counts(),
            "settings": self.report.settings.to_dict(),
            "seconds": round(self.report.seconds, 3),
            "clusters_file": str(self.clusters_path),
            "clusters": [c.to_dict() for c in shown],
            "clusters_shown": len(shown),
        }


# --- reading rows ----------------------------------------------------------------------


class RowTexts:
    """The text of each row of a dataset (see `store.document_text`), read in batches or
    by index from the memory-mapped Arrow data."""

    def __init__(self, ds, format: str) -> None:
        from studio.data.store import DataError

        wanted = {"text": ["text"], "prompt_completion": ["prompt", "completion"]}.get(
            format, ["messages"]
        )
        missing = [c for c in wanted if c not in ds.column_names]
        if missing:
            raise DataError(
                f"the rows have no {', '.join(missing)} column for their form {format!r} "
                f"(columns: {', '.join(ds.column_names)})"
            )
        self.ds, self.format, self.columns = ds, format, wanted
        self.view = ds.select_columns(wanted)

    def _texts(self, batch: dict) -> list[str]:
        from studio.data.store import document_text

        if self.format == "text":
            return [t or "" for t in batch["text"]]
        cols = self.columns
        rows = len(batch[cols[0]])
        return [document_text({c: batch[c][i] for c in cols}, self.format) for i in range(rows)]

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[str]]:
        for batch in self.view.iter(batch_size=size):
            yield self._texts(batch)

    def at(self, indices) -> dict[int, str]:
        """Texts of some rows, by 0-based index."""
        order = sorted({int(i) for i in indices})
        if not order:
            return {}
        return dict(zip(order, self._texts(self.view[order]), strict=True))


def row_ids(ds, indices: Sequence[int]) -> dict[int, str]:
    """The `id` field of some rows (as text), or "row N" (1-based) where there is none."""
    order = sorted({int(i) for i in indices})
    if not order:
        return {}
    if "id" not in ds.column_names:
        return {i: f"row {i + 1}" for i in order}
    values = ds.select_columns(["id"])[order]["id"]
    return {
        i: (str(v) if v not in (None, "") else f"row {i + 1}")
        for i, v in zip(order, values, strict=True)
    }


# --- sketching (runs in worker processes when parallel) --------------------------------


def sketch_batch(texts: list[str], shingle: int, num_perm: int, seed: int, near: bool):
    """Exact hashes of a batch and, for near deduplication, one R-MinHash per document
    (None for an empty text), sketched from its shingle hashes (as 8-byte tokens), with the
    signatures as a uint32 matrix (zeros for an empty text). Picklable in and out: this is
    what a worker computes."""
    import numpy as np
    from rensa import RMinHash

    norms = [normalize(t) for t in texts]
    hashes = [text_hash(s) for s in norms]
    if not near:
        return hashes, None, None
    objs: list = [None] * len(texts)
    digests = np.zeros((len(texts), num_perm), dtype=np.uint32)
    arrays = shingle_hashes(norms, shingle)
    filled = [i for i, a in enumerate(arrays) if len(a)]
    # `view("S8").tolist()` gives each hash as bytes without its trailing zero bytes: still
    # one distinct token per distinct hash.
    tokens = (arrays[i].view("S8").tolist() for i in filled)  # one document's list at a time
    for i, mh in zip(filled, RMinHash.from_token_sets(tokens, num_perm, seed), strict=True):
        objs[i] = mh
        digests[i] = mh.digest()
    return hashes, objs, digests


def confirm_pairs(
    pairs: list[tuple[int, int]], texts: dict[int, str], shingle: int, threshold: float
) -> list[tuple[int, int, float]]:
    """The candidate pairs whose exact shingle-set Jaccard reaches the threshold."""
    rows = sorted({i for pair in pairs for i in pair})
    normalized = [normalize(texts[i]) for i in rows]
    sets = dict(zip(rows, shingle_sets(normalized, shingle), strict=True))
    out = []
    for a, b in pairs:
        j = jaccard(sets[a], sets[b])
        if j >= threshold:
            out.append((a, b, j))
    return out


class _Workers:
    """A few fresh Python processes that run `sketch_batch`, fed through pipes.

    Not `multiprocessing`: a forked child inherits rensa's thread pool in a broken state
    (it hangs), and spawn/forkserver children re-import the caller's `__main__` (the app,
    a script). These run `python -c` with only this module imported. Each worker has at
    most one batch in flight, so neither side can block the other on a full pipe."""

    def __init__(self, count: int) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
            RAYON_NUM_THREADS="1",  # one worker per core; rensa's own threads would oversubscribe
            OMP_NUM_THREADS="1",
        )
        code = "from studio.data.dedup import _serve; _serve()"
        self.procs: list[subprocess.Popen] = []
        try:
            for _ in range(count):
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", code],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                    )
                )
        except OSError:
            self.close()
            raise

    def send(self, worker: int, *args) -> None:
        from studio.data.store import DataError

        data = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        pipe = self.procs[worker].stdin
        try:
            pipe.write(len(data).to_bytes(8, "little") + data)
            pipe.flush()
        except BrokenPipeError:
            raise DataError(
                f"deduplication worker {worker} exited unexpectedly; its error is in the "
                "log. Run again with one process (--num-proc 1)."
            ) from None

    def receive(self, worker: int):
        from studio.data.store import DataError

        pipe = self.procs[worker].stdout
        header = pipe.read(8)
        if len(header) < 8:
            code = self.procs[worker].poll()
            raise DataError(
                f"deduplication worker {worker} exited unexpectedly (status {code}); "
                "its error is in the log. Run again with one process (--num-proc 1)."
            )
        status, value = pickle.loads(pipe.read(int.from_bytes(header, "little")))
        if status != "ok":
            raise DataError(f"deduplication worker {worker} failed:\n{value}")
        return value

    def peak_rss_mb(self) -> list[float]:
        """Each worker's peak resident memory (Linux: /proc; empty elsewhere)."""
        peaks = []
        for proc in self.procs:
            try:
                with open(f"/proc/{proc.pid}/status", encoding="ascii") as fh:
                    line = next(x for x in fh if x.startswith("VmHWM:"))
                peaks.append(round(int(line.split()[1]) / 1024, 1))
            except (OSError, StopIteration, ValueError):
                return []
        return peaks

    def close(self) -> None:
        """End the workers: end of input stops an idle one; closing its output stops one
        still busy with a batch nobody will read (after an error)."""
        for proc in self.procs:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _serve() -> None:
    """A worker's loop: read (texts, settings...) from stdin, write the sketches back."""
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the pipe
    while True:
        header = inp.read(8)
        if len(header) < 8:
            return
        args = pickle.loads(inp.read(int.from_bytes(header, "little")))
        try:
            reply = ("ok", sketch_batch(*args))
        except Exception:  # noqa: BLE001 (sent back to the caller, which raises it)
            reply = ("error", traceback.format_exc())
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            out.write(len(data).to_bytes(8, "little") + data)
            out.flush()
        except BrokenPipeError:  # the caller stopped reading: it has given up on us
            os._exit(0)


def _sketches(batches: Iterator[list[str]], settings: DedupSettings, workers: _Workers | None):
    """(first row, texts, (hashes, sketches, signatures)) per batch, in order. With workers,
    batch k goes to worker k mod n, and the next batch is sent before this one's result is
    used."""
    args = (settings.shingle, settings.num_perm, settings.seed, not settings.exact_only)
    start = 0
    if workers is None:
        for texts in batches:
            yield start, texts, sketch_batch(texts, *args)
            start += len(texts)
        return
    count = len(workers.procs)
    pending: list = []  # (first row, texts, worker), in order
    for k, texts in enumerate(batches):
        if len(pending) == count:
            first, sent, w = pending.pop(0)
            result = workers.receive(w)
            workers.send(w, texts, *args)
            pending.append((start, texts, w))
            yield first, sent, result
        else:
            workers.send(k % count, texts, *args)
            pending.append((start, texts, k % count))
        start += len(texts)
    for first, sent, w in pending:
        yield first, sent, workers.receive(w)


# --- union-find ------------------------------------------------------------------------


class _UnionFind:
    """Disjoint sets over row indices whose root is always the smallest index (file order:
    the document to keep)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.parent.setdefault(ra, ra)


# --- the operation ---------------------------------------------------------------------


class _NearIndex:
    """rensa's MinHash LSH over every distinct document. A candidate pair from the index is
    first screened with the signatures (pairs whose estimated similarity is more than four
    standard deviations below the threshold are dropped: this only saves work) and then
    confirmed by the exact Jaccard of the two shingle sets before the documents are joined
    in the shared union-find. A candidate already in the same cluster is skipped, so a
    cluster of many copies costs a lookup per extra pair, not a Jaccard computation."""

    def __init__(
        self, reader: RowTexts, settings: DedupSettings, uf: _UnionFind, rows: int
    ) -> None:
        import numpy as np
        from rensa import RMinHashLSH

        self.reader, self.settings, self.uf = reader, settings, uf
        self.lsh = RMinHashLSH(settings.threshold, settings.num_perm, settings.bands)
        # Every signature, for the screening (num_perm x 4 bytes a row, filled as read).
        self.signatures = np.zeros((rows, settings.num_perm), dtype=np.uint32)
        t, p = settings.threshold, settings.num_perm
        self.floor = t - 4 * math.sqrt(t * (1 - t) / p)
        self.candidates = 0  # pairs the LSH index returned
        self.screened = 0  # ... of which the signatures kept for an exact check
        self.confirmed: dict[tuple[int, int], float] = {}  # (earlier row, later row) -> J

    def _sets(self, texts: dict[int, str], rows) -> dict[int, object]:
        rows = list(rows)
        normalized = [normalize(texts[i]) for i in rows]
        return dict(zip(rows, shingle_sets(normalized, self.settings.shingle), strict=True))

    def add_batch(self, rows: list[int], texts: list[str], objs: list, digests) -> None:
        """Index a batch (rows ascending, with their texts, sketches and signatures) and
        join each row to the earlier documents it nearly duplicates."""
        import numpy as np

        uf, threshold, sig = self.uf, self.settings.threshold, self.signatures
        sig[rows] = digests
        self.lsh.insert_pairs(zip(rows, objs, strict=True))
        candidates = []
        for row, found in zip(rows, self.lsh.query_all(objs), strict=True):
            cs = [c for c in found if c < row]
            self.candidates += len(cs)
            if cs:
                cs = np.sort(np.asarray(cs, dtype=np.int64))
                estimate = (sig[cs] == sig[row]).mean(axis=1)
                cs = cs[estimate >= self.floor].tolist()
                self.screened += len(cs)
            candidates.append(cs)
        text_of = dict(zip(rows, texts, strict=True))
        # Texts of earlier batches: one candidate per cluster it falls in first (usually
        # enough), the others only for a row whose first try did not confirm.
        need: set[int] = set()
        involved: set[int] = set()
        for row, cs in zip(rows, candidates, strict=True):
            if not cs:
                continue
            involved.add(row)
            roots: set[int] = set()
            for c in cs:
                if c in text_of:
                    involved.add(c)
                elif uf.find(c) not in roots:
                    roots.add(uf.find(c))
                    need.add(c)
        text_of.update(self.reader.at(need))
        sets = self._sets(text_of, sorted(involved | need))

        for row, cs in zip(rows, candidates, strict=True):
            for c in cs:
                if uf.find(c) == uf.find(row):
                    continue
                if c not in sets:  # a second try within a cluster: fetch the rest
                    more = [x for x in cs if x not in sets]
                    text_of.update(self.reader.at([x for x in more if x not in text_of]))
                    sets.update(self._sets(text_of, more))
                j = jaccard(sets[c], sets[row])
                if j >= threshold:
                    self.confirmed[(c, row)] = j
                    uf.union(c, row)


def find_duplicates(
    ds,
    format: str = "text",
    settings: DedupSettings | None = None,
    *,
    num_proc: int | None = None,
    progress=None,
) -> DuplicateReport:
    """Find exact and near duplicates in a `datasets.Dataset` (nothing is written).

    `progress(done_rows, total_rows)` is called after each batch when given."""
    settings = (settings or DedupSettings()).validate()
    started = time.perf_counter()
    total = len(ds)
    if num_proc is None:
        num_proc = min(2, os.cpu_count() or 1)
    num_proc = min(num_proc, max(2, 2 * (os.cpu_count() or 1)))  # a typo must not fork-bomb
    seen: dict[int, int] = {}  # exact hash -> first row with that normalised text
    exact_of: dict[int, int] = {}  # exact duplicate row -> its first occurrence
    reader = RowTexts(ds, format)
    uf = _UnionFind()
    index = None if settings.exact_only else _NearIndex(reader, settings, uf, total)
    workers = None
    try:
        if num_proc > 1 and total >= PARALLEL_MIN_ROWS:
            workers = _Workers(num_proc)
        for first, texts, (hashes, objs, digests) in _sketches(reader.batches(), settings, workers):
            rows, batch_texts, batch_objs, picked = [], [], [], []
            for offset, h in enumerate(hashes):
                row = first + offset
                earlier = seen.get(h)
                if earlier is not None:
                    exact_of[row] = earlier
                    uf.union(earlier, row)
                    continue
                seen[h] = row
                if index is not None and objs[offset] is not None:
                    rows.append(row)
                    batch_texts.append(texts[offset])
                    batch_objs.append(objs[offset])
                    picked.append(offset)
            if rows:
                index.add_batch(rows, batch_texts, batch_objs, digests[picked])
            if progress is not None:
                progress(min(first + len(hashes), total), total)
        worker_rss = workers.peak_rss_mb() if workers is not None else []
    finally:
        if workers is not None:
            workers.close()
    seen.clear()
    confirmed = index.confirmed if index is not None else {}

    groups: dict[int, list[int]] = {}
    for row in list(uf.parent):
        root = uf.find(row)
        if row != root:
            groups.setdefault(root, []).append(row)

    # Jaccard of every removed member to the document kept: 1 for an exact copy; for a near
    # member (or an exact copy of one) the confirmed pair, or computed here when the member
    # was joined through a chain (A ~ B ~ C: C's similarity to A was never needed).
    def canonical(row: int) -> int:
        return exact_of.get(row, row)

    needed = sorted(
        {
            (root, canonical(m))
            for root, members in groups.items()
            for m in members
            if canonical(m) != root and (root, canonical(m)) not in confirmed
        }
    )
    extra: dict[tuple[int, int], float] = {}
    for lo in range(0, len(needed), CONFIRM_CHUNK):
        chunk = needed[lo : lo + CONFIRM_CHUNK]
        texts = reader.at([i for pair in chunk for i in pair])
        for a, b, j in confirm_pairs(chunk, texts, settings.shingle, 0.0):
            extra[(a, b)] = j

    ids = row_ids(ds, [r for root, members in groups.items() for r in (root, *members)])
    clusters: list[Cluster] = []
    exact_removed = near_removed = 0
    for root in sorted(groups):
        members = []
        for m in sorted(groups[root]):
            c = canonical(m)
            if c == root:
                kind, sim = "exact", 1.0
                exact_removed += 1
            else:
                kind = "near"
                sim = confirmed.get((root, c), extra.get((root, c), 0.0))
                near_removed += 1
            members.append(Member(m, ids[m], round(sim, 4), kind))
        clusters.append(Cluster(Member(root, ids[root], 1.0, "kept"), members))
    removed = sorted(m.index for c in clusters for m in c.members)
    return DuplicateReport(
        rows=total,
        removed=removed,
        clusters=clusters,
        exact_removed=exact_removed,
        near_removed=near_removed,
        candidate_pairs=index.candidates if index is not None else 0,
        screened_pairs=index.screened if index is not None else 0,
        confirmed_pairs=len(confirmed),
        seconds=time.perf_counter() - started,
        settings=settings,
        worker_rss_mb=worker_rss,
    )


def keep_rows(ds, removed: Sequence[int]):
    """The dataset without the removed rows, in the original order."""
    import numpy as np

    mask = np.ones(len(ds), dtype=bool)
    if len(removed):
        mask[np.asarray(removed, dtype=np.int64)] = False
    return ds.select(np.flatnonzero(mask))


def analysis_dir(ws, spec_or_version) -> Path:
    """`<workspace>/analysis/<name>/<version>/`: results about a version (duplicate
    clusters, cluster assignments), kept outside the immutable version folder."""
    from studio.data.store import resolve

    version = resolve(ws, spec_or_version)
    return ws.root / "analysis" / version.name / version.version


def dedup_version(
    ws,
    spec,
    settings: DedupSettings | None = None,
    *,
    num_proc: int | None = None,
    progress=None,
) -> DedupResult:
    """Deduplicate a dataset version into a new version; save its clusters beside it."""
    from studio.data.store import open_version, resolve, write_version
    from studio.fsutil import atomic_write_json

    source = resolve(ws, spec)
    settings = (settings or DedupSettings()).validate()
    started = time.perf_counter()
    ds = open_version(ws, source)
    report = find_duplicates(ds, source.format, settings, num_proc=num_proc, progress=progress)
    kept = keep_rows(ds, report.removed)
    version = write_version(
        ws,
        source.name,
        kept,
        format=source.format,
        operation="dedup",
        parent=source,
        settings=settings.to_dict(),
        counts=report.counts(),
        seconds=time.perf_counter() - started,
    )
    path = analysis_dir(ws, version) / CLUSTERS_FILE
    atomic_write_json(
        path,
        {
            "version": version.spec,
            "parent": source.spec,
            "settings": settings.to_dict(),
            "counts": report.counts(),
            "clusters": [c.to_dict() for c in report.clusters],
        },
    )
    report.seconds = time.perf_counter() - started
    return DedupResult(version=version, parent=source.spec, report=report, clusters_path=path)


def load_clusters(ws, spec) -> dict:
    """The saved clusters of a deduplicated version (see `dedup_version`)."""
    from studio.data.store import DataError
    from studio.fsutil import read_json

    path = analysis_dir(ws, spec) / CLUSTERS_FILE
    try:
        data = read_json(path)
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if data is None:
        raise DataError(f"{spec} has no saved duplicate clusters ({path} does not exist)")
    return data


def cluster_view(
    ws,
    parent,
    clusters: list[dict],
    page: int = 1,
    per_page: int = 10,
    max_members: int = 5,
    max_chars: int = 1200,
) -> dict:
    """One page of duplicate clusters with their texts, for showing side by side: each kept
    document beside (up to `max_members` of) the documents removed as its duplicates.

    `clusters` are `Cluster.to_dict()` items (as saved); texts come from the `parent`
    version, the one deduplicated. Returns {"page", "pages", "clusters": [{"kept": {...,
    "text"}, "members": [{..., "text"}], "more": N}]}."""
    from studio.data.store import open_version, resolve

    pages = max(1, math.ceil(len(clusters) / per_page))
    page = min(max(1, int(page or 1)), pages)
    chosen = clusters[(page - 1) * per_page : page * per_page]
    if not chosen:
        return {"page": page, "pages": pages, "clusters": []}
    source = resolve(ws, parent)
    reader = RowTexts(open_version(ws, source), source.format)
    wanted = [m["index"] for c in chosen for m in [c["kept"], *c["members"][:max_members]]]
    texts = reader.at(wanted)

    def with_text(m: dict) -> dict:
        text = texts.get(m["index"], "")
        clipped = text if len(text) <= max_chars else text[:max_chars] + " …"
        return {**m, "text": clipped}

    return {
        "page": page,
        "pages": pages,
        "clusters": [
            {
                "kept": with_text(c["kept"]),
                "members": [with_text(m) for m in c["members"][:max_members]],
                "more": max(0, len(c["members"]) - max_members),
            }
            for c in chosen
        ],
    }
