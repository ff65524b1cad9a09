"""Cluster documents by their character n-grams, then rebalance the clusters.

**Clustering**: every document (its text in any row form, NFKC-normalised) becomes a hashed
character n-gram vector (scikit-learn's `HashingVectorizer`, `char_wb` 2-3-grams: no
vocabulary to hold, so any corpus size works, and Japanese needs no word splitter), weighted
by TF-IDF; mini-batch k-means with a fixed seed groups them. The IDF weights and the
k-means centres are fitted on a seeded sample (all rows up to 20,000); every row is then
assigned in batches, so memory stays bounded on a large corpus. A hashed vector cannot be
read back into n-grams, so each cluster's top terms are counted in a sample of its
documents: words for Latin script, 2-3-character runs for Japanese, ranked by how much more
often they occur in the cluster than in the whole sample.

The assignment (one cluster number per row) is saved outside the immutable version folder,
at `<workspace>/analysis/<name>/<version>/clusters-k<k>.json`.

**Balance** caps clusters (down-sample to N documents) and/or weights them (x2 repeats every
document twice; x0.5 keeps half; x1.5 repeats a seeded half of them), seeded and in file
order, into a new version whose counts list every cluster before and after.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_K = 20
DEFAULT_SEED = 0
MAX_K = 200
N_FEATURES = 2**16  # k-means centres are dense: k x this many floats
NGRAM_RANGE = (2, 3)
FIT_SAMPLE = 20_000  # rows that fit the IDF weights and the k-means centres
TERM_SAMPLE = 300  # documents per cluster whose terms are counted
TOP_TERMS = 8
SAMPLES_SHOWN = 3
PREVIEW_CHARS = 160
BATCH_ROWS = 4096

_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f々〆ー]{2,}")
_HIRAGANA_ONLY = re.compile(r"^[\u3040-\u309fー]+$")
_STOPWORD_TEXT = (
    "the and for are but not you all any can had her was one our out day get has him his "
    "how man new now old see two way who did its let put say she too use that with have "
    "this will your from they know want been good much some time very when come here just "
    "like long make many more only over such take than them well were what into about "
    "there their which would these other could also after first where most then"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def assignment_path(ws, spec, k: int) -> Path:
    from studio.data.dedup import analysis_dir

    return analysis_dir(ws, spec) / f"clusters-k{int(k)}.json"


# --- text features ---------------------------------------------------------------------


def _preprocess(text: str) -> str:
    from studio.data.dedup import normalize

    return normalize(text).lower()


def _vectorizer():
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="char_wb",
        ngram_range=NGRAM_RANGE,
        n_features=N_FEATURES,
        alternate_sign=False,
        norm=None,
        preprocessor=_preprocess,
        dtype=np.float64,  # float32 makes scikit-learn's distances take a slow upcasting path
    )


def terms(text: str) -> set[str]:
    """The terms a cluster is described by: Latin words of three letters or more (no
    common English words) and the 2- and 3-character runs of Japanese text (not those
    made of hiragana alone, which are mostly grammar)."""
    from studio.data.dedup import normalize

    text = normalize(text)
    out = {w.lower() for w in _LATIN_WORD.findall(text)} - _STOPWORDS
    for run in _CJK_RUN.findall(text):
        for n in (2, 3):
            for i in range(len(run) - n + 1):
                gram = run[i : i + n]
                if not _HIRAGANA_ONLY.match(gram):
                    out.add(gram)
    return out


def top_terms(cluster_docs: list[set[str]], all_df: Counter, all_docs: int, count: int):
    """Terms frequent in the cluster's documents and rarer elsewhere (document frequency in
    the cluster times the inverse document frequency in the whole sample); a Japanese term
    overlapping a better one (a shared pair of characters) is left out."""
    if not cluster_docs:
        return []
    df = Counter(t for doc in cluster_docs for t in doc)
    n = len(cluster_docs)
    scored = sorted(
        ((df[t] / n) * math.log((all_docs + 1) / (all_df[t] + 1)), t)
        for t in df
        if df[t] >= max(2, n // 20) or n < 4
    )
    picked: list[str] = []
    taken: set[str] = set()  # bigrams of the Japanese terms picked
    for _, term in reversed(scored):
        grams = {term[i : i + 2] for i in range(len(term) - 1)} if not term.isascii() else set()
        if any(term in p or p in term for p in picked) or grams & taken:
            continue
        picked.append(term)
        taken |= grams
        if len(picked) == count:
            break
    return picked


# --- results ---------------------------------------------------------------------------


@dataclass
class ClusterSummary:
    cluster: int
    size: int
    share: float  # of all rows
    top_terms: list[str]
    samples: list[dict]  # {"index", "id", "preview"}: documents near the cluster centre


@dataclass
class Clustering:
    version: str  # the dataset version clustered
    k: int
    seed: int
    rows: int
    labels: list[int]  # cluster per row, in file order
    clusters: list[ClusterSummary]
    seconds: float
    path: Path | None = None  # where the assignment is saved
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Everything but the per-row labels (for display and the CLI)."""
        return {
            "dataset": self.version,
            "k": self.k,
            "seed": self.seed,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "assignment": str(self.path) if self.path else None,
            "settings": self.settings,
            "clusters": [asdict(c) for c in self.clusters],
        }


def _validate_k(k, rows: int) -> int:
    from studio.data.store import DataError

    try:
        k = int(k)
    except (TypeError, ValueError):
        raise DataError(f"the number of clusters must be a whole number (got {k!r})") from None
    if not 2 <= k <= MAX_K:
        raise DataError(f"the number of clusters must be between 2 and {MAX_K} (got {k})")
    if k > rows:
        raise DataError(f"cannot make {k} clusters of {rows} rows; choose k <= {rows}")
    return k


# --- clustering ------------------------------------------------------------------------


def cluster_dataset(ds, format: str, k: int = DEFAULT_K, seed: int = DEFAULT_SEED, progress=None):
    """Cluster the rows of a `datasets.Dataset`; returns (labels, summaries, settings)."""
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfTransformer

    from studio.data.dedup import RowTexts, row_ids

    rows = len(ds)
    k = _validate_k(k, rows)
    reader = RowTexts(ds, format)
    rng = np.random.default_rng(seed)
    if rows <= FIT_SAMPLE:
        fit_rows = np.arange(rows)
    else:
        fit_rows = np.sort(rng.choice(rows, FIT_SAMPLE, replace=False))
    fit_texts = reader.at(fit_rows.tolist())
    hasher = _vectorizer()
    counts = hasher.transform([fit_texts[i] for i in fit_rows.tolist()])
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    x_fit = tfidf.transform(counts)
    kmeans = MiniBatchKMeans(
        n_clusters=k,
        random_state=seed,
        batch_size=2048,
        n_init=3,
        max_iter=200,
        reassignment_ratio=0.01,
    ).fit(x_fit)

    if len(fit_rows) == rows:  # every row was fitted: no second pass
        labels = kmeans.predict(x_fit).astype(np.int32)
    else:
        labels = np.empty(rows, dtype=np.int32)
        start = 0
        for batch in reader.batches(BATCH_ROWS):
            labels[start : start + len(batch)] = kmeans.predict(
                tfidf.transform(hasher.transform(batch))
            )
            start += len(batch)
            if progress is not None:
                progress(start, rows)

    sizes = np.bincount(labels, minlength=k)
    # Samples: the fitted rows nearest their cluster's centre (rows have unit length, so
    # the nearest have the largest dot product with it).
    fit_labels = labels[fit_rows]
    sample_rows: dict[int, list[int]] = {}
    term_rows: dict[int, list[int]] = {}
    for c in range(k):
        members = np.flatnonzero(fit_labels == c)
        closeness = x_fit[members] @ kmeans.cluster_centers_[c]
        nearest = members[np.argsort(-closeness, kind="stable")[:SAMPLES_SHOWN]]
        sample_rows[c] = [int(fit_rows[i]) for i in nearest]
        if len(members) > TERM_SAMPLE:
            members = np.sort(rng.choice(members, TERM_SAMPLE, replace=False))
        term_rows[c] = [int(fit_rows[i]) for i in members]
    term_sets = {i: terms(fit_texts[i]) for rows_ in term_rows.values() for i in rows_}
    all_df = Counter(t for s in term_sets.values() for t in s)
    wanted = [i for rows_ in sample_rows.values() for i in rows_]
    ids = row_ids(ds, wanted)
    summaries = []
    for c in range(k):
        summaries.append(
            ClusterSummary(
                cluster=c,
                size=int(sizes[c]),
                share=round(float(sizes[c]) / rows, 4),
                top_terms=top_terms(
                    [term_sets[i] for i in term_rows[c]], all_df, len(term_sets), TOP_TERMS
                ),
                samples=[
                    {
                        "index": i,
                        "id": ids[i],
                        "preview": " ".join(fit_texts[i].split())[:PREVIEW_CHARS],
                    }
                    for i in sample_rows[c]
                ],
            )
        )
    settings = {
        "k": k,
        "seed": seed,
        "features": f"HashingVectorizer(char_wb, ngram_range={NGRAM_RANGE}, "
        f"n_features={N_FEATURES}) + TfidfTransformer(sublinear_tf)",
        "model": "MiniBatchKMeans(batch_size=2048, n_init=3)",
        "fit_rows": int(len(fit_rows)),
    }
    return labels, summaries, settings


def cluster_version(ws, spec, k: int = DEFAULT_K, seed: int = DEFAULT_SEED, progress=None):
    """Cluster a dataset version and save the assignment (see the module docstring)."""
    from studio.data.store import open_version, resolve
    from studio.fsutil import atomic_write_json

    source = resolve(ws, spec)
    started = time.perf_counter()
    ds = open_version(ws, source)
    labels, summaries, settings = cluster_dataset(ds, source.format, k, seed, progress)
    result = Clustering(
        version=source.spec,
        k=int(settings["k"]),
        seed=int(seed),
        rows=len(labels),
        labels=labels.tolist(),
        clusters=summaries,
        seconds=time.perf_counter() - started,
        settings=settings,
    )
    result.path = assignment_path(ws, source, result.k)
    atomic_write_json(
        result.path,
        {
            **result.summary(),
            "assignment": None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "labels": result.labels,
        },
    )
    return result


def load_assignment(ws, spec, k: int | None = None) -> Clustering:
    """The saved assignment of a version: for `k`, or the most recent one."""
    from studio.data.dedup import analysis_dir
    from studio.data.store import DataError, resolve
    from studio.fsutil import read_json

    source = resolve(ws, spec)
    folder = analysis_dir(ws, source)
    if k is not None:
        path = assignment_path(ws, source, k)
    else:
        found = sorted(folder.glob("clusters-k*.json"), key=lambda p: p.stat().st_mtime)
        path = found[-1] if found else folder / "clusters-k?.json"
    try:
        data = read_json(path)
    except ValueError as exc:
        raise DataError(f"{path}: the saved clusters are not valid JSON ({exc})") from exc
    if data is None:
        which = f"k={k}" if k is not None else "any k"
        raise DataError(
            f"{source.spec} has no saved clusters ({which}); cluster it first "
            f"(python -m studio data cluster {source.spec} --k {k or DEFAULT_K})"
        )
    labels = data.get("labels")
    if not isinstance(labels, list) or len(labels) != source.rows:
        raise DataError(
            f"{path}: the saved clusters do not match {source.spec} "
            f"({len(labels) if isinstance(labels, list) else 'no'} labels for "
            f"{source.rows} rows); cluster it again"
        )
    return Clustering(
        version=source.spec,
        k=int(data["k"]),
        seed=int(data.get("seed", DEFAULT_SEED)),
        rows=len(labels),
        labels=labels,
        clusters=[ClusterSummary(**c) for c in data.get("clusters", [])],
        seconds=float(data.get("seconds") or 0.0),
        path=path,
        settings=data.get("settings", {}),
    )


# --- balance ---------------------------------------------------------------------------


def parse_rules(items, kind: str) -> dict[int, float]:
    """`CLUSTER=VALUE` strings (the CLI's --cap/--weight) as {cluster: value}."""
    from studio.data.store import DataError

    out: dict[int, float] = {}
    for item in items or []:
        left, sep, right = str(item).partition("=")
        try:
            if not sep:
                raise ValueError
            cluster, value = int(left.strip()), float(right.strip())
        except ValueError:
            raise DataError(
                f"--{kind} {item!r}: expected CLUSTER=VALUE, e.g. --{kind} 3="
                + ("200" if kind == "cap" else "2.5")
            ) from None
        out[cluster] = value
    return out


def balance_indices(labels, caps: dict, weights: dict, seed: int = DEFAULT_SEED):
    """The rows of the balanced dataset (ascending, a repeated row appearing once per copy)
    and the counts per cluster before and after.

    A weight w repeats every document floor(w) times plus one more copy of a seeded
    fraction (w - floor(w)) of them (so 0.5 keeps a seeded half); a cap then keeps at most
    N of the result, chosen with the same seed. Clusters without a rule are unchanged."""
    import numpy as np

    from studio.data.store import DataError

    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 0
    for name, rules in (("cap", caps), ("weight", weights)):
        for c, value in rules.items():
            if not 0 <= int(c) < k:
                raise DataError(f"{name} for cluster {c}: there are clusters 0-{k - 1}")
            if value is None or not math.isfinite(float(value)) or float(value) < 0:
                raise DataError(f"{name} for cluster {c} must be a number >= 0 (got {value})")
    for c, value in caps.items():
        if float(value) != int(value):
            raise DataError(f"cap for cluster {c} must be a whole number (got {value})")
    for c, value in weights.items():
        if float(value) > 100:
            raise DataError(f"weight for cluster {c} must be at most 100 (got {value})")

    parts = []
    per_cluster: dict[str, dict] = {}
    for c in range(k):
        members = np.flatnonzero(labels == c)
        rng = np.random.default_rng([int(seed), c])
        picked = members
        w = float(weights.get(c, 1.0))
        if w != 1.0:
            whole, frac = int(math.floor(w)), w - math.floor(w)
            extra = rng.choice(members, int(round(frac * len(members))), replace=False)
            picked = np.sort(np.concatenate([np.repeat(members, whole), extra]))
        cap = caps.get(c)
        if cap is not None and len(picked) > int(cap):
            picked = np.sort(rng.choice(picked, int(cap), replace=False))
        parts.append(picked)
        per_cluster[str(c)] = {"before": int(len(members)), "after": int(len(picked))}
    indices = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    return indices, per_cluster


@dataclass
class BalanceResult:
    version: object  # DatasetVersion written
    parent: str
    counts: dict
    settings: dict

    def to_dict(self) -> dict:
        return {
            "version": self.version.spec,
            "parent": self.parent,
            "rows": self.version.rows,
            "counts": self.counts,
            "settings": self.settings,
        }


def balance_version(
    ws,
    spec,
    *,
    caps: dict | None = None,
    weights: dict | None = None,
    seed: int = DEFAULT_SEED,
    k: int | None = None,
) -> BalanceResult:
    """Cap and/or weight the clusters of a version (with its saved assignment) into a new
    version."""
    from studio.data.store import DataError, open_version, resolve, write_version

    caps = {int(c): v for c, v in (caps or {}).items() if v is not None}
    weights = {int(c): v for c, v in (weights or {}).items() if v is not None}
    if not caps and not weights:
        raise DataError("give at least one cap or weight (e.g. --cap 3=200 or --weight 5=2)")
    source = resolve(ws, spec)
    started = time.perf_counter()
    assignment = load_assignment(ws, source, k)
    indices, per_cluster = balance_indices(assignment.labels, caps, weights, seed)
    ds = open_version(ws, source)
    balanced = ds.select(indices)
    settings = {
        "assignment": str(assignment.path.relative_to(ws.root)),
        "k": assignment.k,
        "caps": {str(c): int(v) for c, v in sorted(caps.items())},
        "weights": {str(c): float(v) for c, v in sorted(weights.items())},
        "seed": int(seed),
    }
    counts = {"in": len(ds), "out": int(len(indices)), "clusters": per_cluster}
    version = write_version(
        ws,
        source.name,
        balanced,
        format=source.format,
        operation="balance",
        parent=source,
        settings=settings,
        counts=counts,
        seconds=time.perf_counter() - started,
    )
    return BalanceResult(version=version, parent=source.spec, counts=counts, settings=settings)


def rules_from_table(rows, k: int) -> tuple[dict, dict]:
    """Caps and weights from the rows of the clusters table: (cluster, cap, weight) each,
    blank (None, "", NaN) meaning no rule. Raises DataError naming the row."""
    from studio.data.store import DataError

    caps: dict[int, int] = {}
    weights: dict[int, float] = {}
    for number, (cluster, cap, weight) in enumerate(rows, start=1):
        try:
            c = int(cluster)
        except (TypeError, ValueError):
            raise DataError(f"row {number}: cluster {cluster!r} is not a number") from None
        if not 0 <= c < k:
            raise DataError(f"row {number}: there is no cluster {c} (clusters 0-{k - 1})")
        for name, value, out in (("cap", cap, caps), ("weight", weight, weights)):
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                number_value = float(value)
            except (TypeError, ValueError):
                raise DataError(f"row {number}: {name} {value!r} is not a number") from None
            if math.isnan(number_value):
                continue
            if number_value < 0:
                raise DataError(f"row {number}: {name} must be >= 0 (got {value})")
            if name == "cap":
                if number_value != int(number_value):
                    raise DataError(f"row {number}: cap must be a whole number (got {value})")
                out[c] = int(number_value)
            elif number_value != 1.0:
                out[c] = number_value
    return caps, weights
