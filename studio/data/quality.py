"""Quality classifier: label documents good/noise, train a fastText model, score, apply.

The flow the field reports describe (a few hundred hand labels, a fastText "noise" model,
pages scored and the low ones dropped), for one dataset at a time:

1. **Labels** live in the workspace, not in the (immutable) version folders:
   `quality/labels/<dataset>.jsonl`, one line per labelled document, keyed by a stable
   document key (the row's `id` when it has one, otherwise a hash of its normalised text),
   so labels made on `v0001` still apply to `v0003` of the same dataset. The labelled text
   is stored with the label, so a model can be trained even after that version is deleted.
   The file is rewritten atomically on every change; a label can be changed or removed.
2. **Training**: fastText supervised (`fasttext-numpy2-wheel`), on tokens made by
   `tokenize`: Japanese has no spaces, so text is split first, either into characters
   (`chars`, the default) or into runs of one script (`words`). A stratified, seeded share
   of the labels (20 %) is held out and the model trained on the rest is measured on it
   (precision/recall/F1 of each class); the saved model is then trained again on all the
   labels. Models live in `quality/models/<name>/` (`model.bin` + `meta.json`) and can
   score any version of any dataset.
3. **Scoring**: the probability that a document is good, for every row of a version, in
   batches (cached per model and version, both immutable). A threshold keeps documents
   scored at or above it; `flips` tells which documents change side when it moves.
4. **Apply**: a new version with the kept rows (`write_version`, operation `classify`).

This module imports neither gradio nor fasttext at import time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.data.registry import DatasetVersion
from studio.data.store import DataError, cache_dir, document_text, open_version, resolve
from studio.fsutil import atomic_write_json, atomic_write_text, read_json
from studio.memo import Recent
from studio.safety import UnsafeInputError, safe_name

LABELS = ("good", "noise")
TOKENIZE_MODES = ("chars", "words")
MIN_PER_CLASS = 10
DEFAULT_HOLDOUT = 0.2
FASTTEXT_PREFIX = "__label__"
NEWLINE_TOKEN = "<nl>"
REPEAT_TOKEN = "<dup>"  # stands for each token of a line that repeats an earlier line


# --- tokenization ------------------------------------------------------------------------


_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff\u3005-\u3007"
_HIRAGANA = "\u3041-\u309f"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_JAPANESE = _KANJI + _HIRAGANA + _KATAKANA
# Letters of any other alphabet (Latin, accented, Greek, Cyrillic, full-width Latin).
_ALPHA = f"(?:(?![{_JAPANESE}])[^\\W\\d_])+"
_TOKEN_PATTERNS = {
    "chars": re.compile(f"[{_JAPANESE}]|{_ALPHA}|\\d+|\\S"),
    "words": re.compile(f"[{_KANJI}]+|[{_HIRAGANA}]+|[{_KATAKANA}]+|{_ALPHA}|\\d+|\\S"),
}
# Control and invisible format characters: fastText splits on some of them; drop them all.
_INVISIBLE = re.compile("[\\x00-\\x08\\x0e-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u2060\\ufeff]")


def _length_token(n: int) -> str:
    """A coarse length feature: the document's length in characters, as a power of 2."""
    return f"<len{int(math.log2(n)) if n > 0 else 0}>"


def _line_tokens(line: str, mode: str, tokens: list[str]) -> None:
    tokens += _TOKEN_PATTERNS[mode].findall(line)


def tokenize(text: str, mode: str = "chars") -> str:
    """The document as one line of space-separated tokens for fastText.

    - `chars` (default): every Japanese character (kanji, hiragana, katakana) and every
      symbol is a token; Latin words and numbers stay whole (splitting English into letters
      would throw away its words).
    - `words`: runs of one script are tokens: a run of kanji, of hiragana, of katakana, of
      Latin letters or of digits; symbols one by one. A crude stand-in for a morphological
      analyser (no MeCab needed), good enough for a noise classifier.

    Latin letters are lower-cased; line breaks become the token `<nl>` (fastText's `predict`
    rejects newlines, and line structure tells menus and repeated lines apart); a token for
    the document's length (`<lenK>`, K = log2 of the characters) is added at the end.
    """
    if mode not in TOKENIZE_MODES:
        raise DataError(f"unknown tokenization {mode!r}; use one of {', '.join(TOKENIZE_MODES)}")
    text = text or ""
    tokens: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(_INVISIBLE.sub(" ", text).lower().splitlines()):
        if n:
            tokens.append(NEWLINE_TOKEN)
        stripped = line.strip()
        if stripped in seen:
            # A repeated line weighs as much as its text, but as "repeated material": a
            # page of one sentence copied 20 times must not look like that clean sentence.
            before = len(tokens)
            _line_tokens(line, mode, tokens)
            tokens[before:] = [REPEAT_TOKEN] * (len(tokens) - before)
            continue
        if stripped:
            seen.add(stripped)
        _line_tokens(line, mode, tokens)
    tokens.append(_length_token(len(text)))
    return " ".join(tokens)


# --- document keys -----------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """NFKC, whitespace collapsed: two copies that differ only in spacing share a key."""
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def document_key(row: dict, text: str) -> str:
    """A document's stable key: `id:<id>` when the row has an id, else `text:<hash>`."""
    rid = row.get("id")
    if rid is not None and str(rid).strip() != "":
        return f"id:{rid}"
    digest = hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()[:20]
    return f"text:{digest}"


# --- opening versions --------------------------------------------------------------------

_opened = Recent(4)


def open_cached(ws, spec):
    """`open_version`, kept for the last few versions: the labeling panel reads one row per
    click and must not re-open the Arrow file each time (versions never change)."""
    version = resolve(ws, spec)
    try:  # a version deleted and written again under the same name is another version
        stamp = (version.path / "manifest.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(version.path), version.created, stamp)
    ds = _opened.get(key)
    if ds is None:
        ds = open_version(ws, version)
        _opened.put(key, ds)
    return version, ds


def row_text(row: dict, fmt: str) -> str:
    return document_text(row, fmt)


@dataclass
class Document:
    index: int  # 0-based row number in the version
    key: str
    id: str | None
    text: str

    @property
    def chars(self) -> int:
        return len(self.text)


def get_document(ws, spec, index: int) -> Document:
    version, ds = open_cached(ws, spec)
    if not 0 <= index < len(ds):
        raise DataError(f"{version.spec} has no row {index} (rows 0..{len(ds) - 1})")
    row = ds[int(index)]
    text = row_text(row, version.format)
    rid = row.get("id")
    return Document(
        index=int(index),
        key=document_key(row, text),
        id=None if rid is None else str(rid),
        text=text,
    )


def find_rows(ws, spec, refs: list[str]) -> dict[str, int]:
    """Row numbers of documents named by their `id` (when the version has an `id` column)
    or by their 0-based row number. An unknown reference raises `DataError` naming it."""
    version, ds = open_cached(ws, spec)
    found: dict[str, int] = {}
    wanted = [str(r).strip() for r in refs]
    if "id" in ds.column_names and wanted:
        import pyarrow as pa
        import pyarrow.compute as pc

        column = ds.data.column("id").cast(pa.string())
        mask = pc.is_in(column, value_set=pa.array(sorted(set(wanted)), type=pa.string()))
        hits = np.flatnonzero(pc.fill_null(mask, False).to_numpy())
        for i in hits:
            value = str(column[int(i)].as_py())
            found.setdefault(value, int(i))
    missing = []
    for ref in wanted:
        if ref in found:
            continue
        number = ref[1:] if ref.startswith("#") else ref
        if number.isdigit() and int(number) < len(ds):
            found[ref] = int(number)
        else:
            missing.append(ref)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(
            f"{version.spec}: no document with id {shown}{more} (give a value of its 'id' "
            f"column or a row number 0..{len(ds) - 1})"
        )
    return found


# --- labels ------------------------------------------------------------------------------


def quality_dir(ws) -> Path:
    return ws.root / "quality"


def labels_path(ws, dataset: str) -> Path:
    return quality_dir(ws) / "labels" / f"{safe_name(dataset)}.jsonl"


def models_dir(ws) -> Path:
    return quality_dir(ws) / "models"


_labels_lock = threading.Lock()


def load_labels(ws, dataset: str) -> dict[str, dict]:
    """The labels of a dataset: key -> record (`key`, `label`, `id`, `index`, `version`,
    `text`, `time`). A damaged line raises `DataError` naming the file and line."""
    path = labels_path(ws, dataset)
    if not path.is_file():
        return {}
    labels: dict[str, dict] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}); fix or remove it") from exc
    # split on "\n" only: a label's text may hold U+2028 or NEL, which JSON leaves as is
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {lineno} is not JSON ({exc.msg})") from exc
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("key"), str)
            or rec.get("label") not in LABELS
            or not isinstance(rec.get("text"), str)
        ):
            raise DataError(
                f"{path}: line {lineno} is not a label record "
                "(needs 'key', 'label' good|noise and 'text')"
            )
        labels[rec["key"]] = rec
    return labels


def _save_labels(ws, dataset: str, labels: dict[str, dict]) -> Path:
    lines = [json.dumps(rec, ensure_ascii=False) for rec in labels.values()]
    return atomic_write_text(labels_path(ws, dataset), "".join(f"{x}\n" for x in lines))


def label_counts(labels: dict[str, dict]) -> dict[str, int]:
    counts = dict.fromkeys(LABELS, 0)
    for rec in labels.values():
        counts[rec["label"]] += 1
    return counts


def set_labels(ws, spec, changes: dict[int, str | None]) -> dict:
    """Label rows of a version: row number -> "good", "noise", or None to remove the label.
    Returns {"dataset", "changed", "removed", "counts"}. One atomic write for all."""
    version = resolve(ws, spec)
    for index, label in changes.items():
        if label is not None and label not in LABELS:
            raise DataError(f"row {index}: label {label!r} is not one of good, noise")
    docs = [get_document(ws, version, int(i)) for i in changes]
    with _labels_lock:
        labels = load_labels(ws, version.name)
        changed = removed = 0
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for doc, label in zip(docs, changes.values(), strict=True):
            if label is None:
                removed += labels.pop(doc.key, None) is not None
                continue
            old = labels.get(doc.key)
            if old is not None and old["label"] == label:
                continue
            labels.pop(doc.key, None)  # a changed label moves to the end (most recent)
            labels[doc.key] = {
                "key": doc.key,
                "label": label,
                "id": doc.id,
                "index": doc.index,
                "version": version.spec,
                "text": doc.text,
                "time": now,
            }
            changed += 1
        if changed or removed:
            _save_labels(ws, version.name, labels)
    return {
        "dataset": version.name,
        "changed": changed,
        "removed": removed,
        "counts": label_counts(labels),
        "path": str(labels_path(ws, version.name)),
    }


def set_label(ws, spec, index: int, label: str | None) -> dict:
    return set_labels(ws, spec, {int(index): label})


def read_label_file(path: Path) -> list[tuple[str, str | None]]:
    """A JSONL of `{"id": ..., "label": "good"|"noise"|null}` (or `"index"` instead of
    `"id"`) as (reference, label) pairs; a bad line raises `DataError` with its number."""
    pairs = []
    try:
        fh = open(path, encoding="utf-8-sig")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {lineno} is not JSON ({exc.msg})") from exc
                if not isinstance(rec, dict):
                    raise DataError(f"{path}: line {lineno} is not a JSON object")
                ref = rec.get("id", rec.get("index"))
                if ref is None or (isinstance(ref, str) and not ref.strip()):
                    raise DataError(f"{path}: line {lineno} has no 'id' or 'index'")
                if "id" not in rec and not (isinstance(ref, int) and ref >= 0):
                    raise DataError(f"{path}: line {lineno}: 'index' must be a row number")
                label = rec.get("label")
                if label not in (*LABELS, None, ""):
                    raise DataError(
                        f"{path}: line {lineno}: 'label' is {label!r}; use good, noise or null"
                    )
                pairs.append((f"#{ref}" if "id" not in rec else str(ref), label or None))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} is not UTF-8 text ({exc.reason})") from exc
    if not pairs:
        raise DataError(f"{path} holds no labels")
    return pairs


# --- metrics -----------------------------------------------------------------------------


def class_metrics(truth: list[str], predicted: list[str]) -> dict:
    """Precision, recall, F1 and support of each class, the accuracy and the confusion
    counts (truth -> predicted)."""
    out: dict = {"n": len(truth)}
    for cls in LABELS:
        tp = sum(t == cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == cls and p != cls for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[cls] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
            "predicted": tp + fp,
        }
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    out["accuracy"] = round(right / len(truth), 4) if truth else 0.0
    out["confusion"] = {
        t: {
            p: sum(a == t and b == p for a, b in zip(truth, predicted, strict=True)) for p in LABELS
        }
        for t in LABELS
    }
    return out


# --- training ----------------------------------------------------------------------------


@dataclass
class TrainSettings:
    tokenize: str = "chars"
    holdout: float = DEFAULT_HOLDOUT
    seed: int = 0
    epoch: int = 30
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 32
    bucket: int = 200_000  # hashed n-gram slots; fastText's 2 M default makes a 256 MB file
    min_per_class: int = MIN_PER_CLASS
    refit: bool = True  # retrain on every label after measuring on the held-out share
    balance: bool = True  # weigh both classes equally (see balance_lines)

    def validate(self) -> TrainSettings:
        if self.tokenize not in TOKENIZE_MODES:
            raise DataError(
                f"unknown tokenization {self.tokenize!r}; use one of {', '.join(TOKENIZE_MODES)}"
            )
        if not 0.05 <= float(self.holdout) <= 0.5:
            raise DataError(f"held-out share {self.holdout} must be between 0.05 and 0.5")
        if not 1 <= int(self.epoch) <= 1000:
            raise DataError(f"epoch {self.epoch} must be between 1 and 1000")
        if not 0 < float(self.lr) <= 5:
            raise DataError(f"learning rate {self.lr} must be above 0 and at most 5")
        if not 1 <= int(self.word_ngrams) <= 5:
            raise DataError(f"word n-grams {self.word_ngrams} must be between 1 and 5")
        if not 2 <= int(self.dim) <= 300:
            raise DataError(f"dimension {self.dim} must be between 2 and 300")
        if not 1000 <= int(self.bucket) <= 10_000_000:
            raise DataError(f"bucket {self.bucket} must be between 1000 and 10000000")
        return self


def labels_missing(counts: dict[str, int], minimum: int = MIN_PER_CLASS) -> dict[str, int]:
    """How many more labels of each class training needs (0 when it has enough)."""
    return {cls: max(0, minimum - counts.get(cls, 0)) for cls in LABELS}


def check_enough(counts: dict[str, int], minimum: int = MIN_PER_CLASS) -> None:
    """Refuse to train with fewer than `minimum` labels of a class: a DataError with the code
    `too_few_labels` and what the front ends need to say it (min, good, noise, need_good,
    need_noise)."""
    missing = labels_missing(counts, minimum)
    if any(missing.values()):
        have = ", ".join(f"{cls} {counts.get(cls, 0)}" for cls in LABELS)
        need = ", ".join(f"{n} more {cls}" for cls, n in missing.items() if n)
        raise DataError(
            f"too few labels to train: at least {minimum} of each class are needed (have "
            f"{have}); label {need}",
            code="too_few_labels",
            min=minimum,
            good=counts.get("good", 0),
            noise=counts.get("noise", 0),
            need_good=missing["good"],
            need_noise=missing["noise"],
        )


def stratified_split(labels: list[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, held-out): `share` of each class held out (at least 1 per class),
    drawn with a seeded shuffle, so the same labels always give the same split."""
    rng = random.Random(seed)
    train, held = [], []
    for cls in LABELS:
        members = [i for i, lab in enumerate(labels) if lab == cls]
        rng.shuffle(members)
        k = max(1, round(len(members) * share)) if members else 0
        held += members[:k]
        train += members[k:]
    return sorted(train), sorted(held)


def balance_lines(lines: list[str], labels: list[str], seed: int) -> list[str]:
    """Repeat the rarer class's lines until both classes weigh the same (whole copies, then
    a seeded sample), so that a score of 0.5 means even odds rather than the label ratio;
    then shuffle. fastText has no class weights; this is the usual stand-in."""
    rng = random.Random(seed)
    by_class = {
        cls: [ln for ln, lab in zip(lines, labels, strict=True) if lab == cls] for cls in LABELS
    }
    target = max(len(v) for v in by_class.values())
    out: list[str] = []
    for members in by_class.values():
        if not members:
            continue
        whole, rest = divmod(target, len(members))
        out += members * whole + rng.sample(members, rest)
    rng.shuffle(out)
    return out


# fastText trains in a fresh process: in long-lived processes (the app, the test suite)
# it has twice produced a different model, and once diverged ("Encountered NaN") at every
# rate, from the same lines and seed that train identically in a fresh process.
_FIT_CHILD = """
import json, sys
import fasttext
args = json.loads(sys.argv[1])
model = fasttext.train_supervised(input=args.pop("input"), **{k: v for k, v in args.items() if k != "output"})
model.save_model(args["output"])
"""


def _fit(lines: list[str], settings: TrainSettings) -> tuple[object, float]:
    """Train fastText on `lines`; returns the model and the learning rate used. fastText
    can diverge ("Encountered NaN") on a small set at a high rate: the rate is halved and
    training retried, up to three times."""
    import subprocess
    import sys

    import fasttext

    folder = tempfile.mkdtemp(prefix="quality-train-")
    data, output = os.path.join(folder, "train.txt"), os.path.join(folder, "model.bin")
    lr = float(settings.lr)
    try:
        with open(data, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
        for attempt in range(4):
            args = {
                "input": data,
                "output": output,
                "epoch": int(settings.epoch),
                "lr": lr,
                "wordNgrams": int(settings.word_ngrams),
                "dim": int(settings.dim),
                "bucket": int(settings.bucket),
                "minCount": 1,
                "loss": "softmax",
                "thread": 1,  # deterministic for a seed; a few thousand labels train in seconds
                "seed": int(settings.seed),
                "verbose": 0,
            }
            child = subprocess.run(
                [sys.executable, "-c", _FIT_CHILD, json.dumps(args)],
                capture_output=True,
                text=True,
            )
            if child.returncode == 0:
                return fasttext.load_model(output), lr
            error = (child.stderr.strip().splitlines() or ["no output"])[-1]
            if "NaN" not in error or attempt == 3:
                raise DataError(f"fastText training failed: {error} (try a lower rate)")
            lr /= 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


def _training_lines(texts: list[str], labels: list[str], settings: TrainSettings) -> list[str]:
    lines = [
        f"{FASTTEXT_PREFIX}{lab} {tokenize(text, settings.tokenize)}"
        for text, lab in zip(texts, labels, strict=True)
    ]
    return balance_lines(lines, labels, settings.seed) if settings.balance else lines


def predict_good(model, texts: list[str], mode: str) -> np.ndarray:
    """P(good) for each text (one fastText call for the whole list)."""
    if not texts:
        return np.zeros(0, dtype=np.float32)
    lines = [tokenize(t, mode) for t in texts]
    all_labels, all_probs = model.predict(lines, k=2)
    good = f"{FASTTEXT_PREFIX}good"
    noise = f"{FASTTEXT_PREFIX}noise"
    out = np.empty(len(lines), dtype=np.float32)
    for i, (labs, probs) in enumerate(zip(all_labels, all_probs, strict=True)):
        p = dict(zip(labs, (float(x) for x in probs), strict=True))
        if good in p:
            value = p[good]
        elif noise in p:
            value = 1.0 - p[noise]
        else:
            value = 0.5
        out[i] = min(1.0, max(0.0, value))
    return out


def default_model_name(dataset: str) -> str:
    return f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_model_name(name: str) -> str:
    try:
        return safe_name(name)
    except UnsafeInputError as exc:
        raise DataError(f"model name: {exc}") from exc


def train_classifier(
    ws,
    spec,
    *,
    name: str | None = None,
    settings: TrainSettings | None = None,
    overwrite: bool = False,
) -> dict:
    """Train on the labels of the dataset `spec` belongs to; measure on a held-out share;
    save `quality/models/<name>/`. Returns the model's meta (also in `meta.json`)."""
    settings = (settings or TrainSettings()).validate()
    version = resolve(ws, spec)
    name = check_model_name(name or default_model_name(version.name))
    labels = load_labels(ws, version.name)
    counts = label_counts(labels)
    check_enough(counts, settings.min_per_class)
    final = models_dir(ws) / name
    if final.exists() and not overwrite:
        raise DataError(f"a classifier named {name!r} exists already; pick another name")

    records = list(labels.values())
    texts = [r["text"] for r in records]
    truth = [r["label"] for r in records]
    started = time.perf_counter()
    train_idx, held_idx = stratified_split(truth, settings.holdout, settings.seed)
    model, lr_used = _fit(
        _training_lines([texts[i] for i in train_idx], [truth[i] for i in train_idx], settings),
        settings,
    )
    held_scores = predict_good(model, [texts[i] for i in held_idx], settings.tokenize)
    held_pred = ["good" if s >= 0.5 else "noise" for s in held_scores]
    heldout = class_metrics([truth[i] for i in held_idx], held_pred)
    heldout["train"] = len(train_idx)
    if settings.refit:
        model, lr_used = _fit(_training_lines(texts, truth, settings), settings)
    seconds = time.perf_counter() - started

    meta = {
        "name": name,
        "dataset": version.name,
        "version": version.spec,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uid": uuid.uuid4().hex,  # tells a retrained model of the same name from the old one
        "settings": settings.__dict__.copy(),
        "labels": counts,
        "heldout": heldout,
        "trained_on": len(records) if settings.refit else len(train_idx),
        "lr_used": lr_used,
        "seconds": round(seconds, 3),
        "library": "fasttext-numpy2-wheel",
    }
    _save_model(ws, name, model, meta, overwrite=overwrite)
    return meta


def _save_model(ws, name: str, model, meta: dict, *, overwrite: bool) -> Path:
    root = models_dir(ws)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    final = root / name
    try:
        model.save_model(str(tmp / "model.bin"))
        atomic_write_json(tmp / "meta.json", meta)
        if final.exists():
            if not overwrite:
                raise DataError(f"a classifier named {name!r} exists already; pick another name")
            doomed = root / f".replaced-{name}-{int(time.time() * 1000)}"
            os.rename(final, doomed)
            os.rename(tmp, final)
            shutil.rmtree(doomed, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --- saved models ------------------------------------------------------------------------


def list_classifiers(ws) -> list[dict]:
    """Every saved classifier's meta, newest first (a damaged one is skipped)."""
    root = models_dir(ws)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not (folder / "model.bin").is_file():
            continue
        try:
            meta = read_json(folder / "meta.json")
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict):
            found.append(meta | {"name": folder.name, "path": str(folder)})
    return sorted(found, key=lambda m: str(m.get("created", "")), reverse=True)


@dataclass
class Classifier:
    name: str
    path: Path
    meta: dict
    model: object = field(repr=False, default=None)

    @property
    def tokenize(self) -> str:
        return (self.meta.get("settings") or {}).get("tokenize", "chars")

    def predict(self, texts: list[str]) -> np.ndarray:
        return predict_good(self.model, texts, self.tokenize)


_model_lock = threading.Lock()
_model_cache: OrderedDict[tuple, Classifier] = OrderedDict()


def load_classifier(ws, name: str) -> Classifier:
    name = check_model_name(name or "")
    folder = models_dir(ws) / name
    if not (folder / "model.bin").is_file():
        known = ", ".join(m["name"] for m in list_classifiers(ws)) or "none yet"
        raise DataError(f"no classifier named {name!r} (saved classifiers: {known})")
    meta = read_json(folder / "meta.json", default={}) or {}
    key = (str(folder), meta.get("uid") or meta.get("created"))
    with _model_lock:
        if key in _model_cache:
            _model_cache.move_to_end(key)
            return _model_cache[key]
    import fasttext

    try:
        model = fasttext.load_model(str(folder / "model.bin"))
    except ValueError as exc:
        raise DataError(f"cannot load classifier {name!r}: {exc}") from exc
    clf = Classifier(name=name, path=folder, meta=meta, model=model)
    with _model_lock:
        _model_cache[key] = clf
        while len(_model_cache) > 4:
            _model_cache.popitem(last=False)
    return clf


# --- scoring -----------------------------------------------------------------------------


def _texts_of_batch(batch: dict, fmt: str) -> list[str]:
    if fmt == "text":
        return [str(t or "") for t in batch["text"]]
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [document_text({k: batch[k][i] for k in keys}, fmt) for i in range(n)]


def _score_cache_path(ws, clf: Classifier, version: DatasetVersion) -> Path:
    manifest = read_json(version.path / "manifest.json", default={}) or {}
    key = json.dumps(
        [
            clf.name,
            clf.meta.get("uid") or clf.meta.get("created"),
            version.spec,
            version.created,
            manifest.get("sha256"),  # a deleted and re-made version with the same name
        ],
        ensure_ascii=False,
    )
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]
    return cache_dir(ws).parent / "quality" / f"scores-{digest}.npy"


def score_version(ws, spec, model: str | Classifier, *, batch_size: int = 2048, progress=None):
    """P(good) of every row of a version, in row order (float32 array). Cached on disk by
    model and version (both immutable); `progress(done, total)` is called per batch."""
    version, ds = open_cached(ws, spec)
    clf = model if isinstance(model, Classifier) else load_classifier(ws, model)
    cache = _score_cache_path(ws, clf, version)
    if cache.is_file():
        try:
            scores = np.load(cache)
            if scores.shape == (len(ds),):
                return scores
        except (OSError, ValueError):
            pass
    columns = [c for c in ("text", "prompt", "completion", "messages") if c in ds.column_names]
    view = ds.select_columns(columns) if columns else ds
    scores = np.empty(len(ds), dtype=np.float32)
    done = 0
    for batch in view.iter(batch_size=batch_size):
        texts = _texts_of_batch(batch, version.format)
        scores[done : done + len(texts)] = clf.predict(texts)
        done += len(texts)
        if progress is not None:
            progress(done, len(ds))
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scores-", suffix=".npy", dir=cache.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, scores)
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # the cache is only a convenience
    return scores


# --- threshold ---------------------------------------------------------------------------


def kept_mask(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Documents kept at `threshold`: scored good at or above it."""
    return np.asarray(scores) >= float(threshold)


@dataclass
class Flips:
    previous: float
    threshold: float
    indices: np.ndarray  # rows whose decision changed, sorted by score
    now_kept: bool  # True: they are kept now (threshold lowered); False: dropped now

    @property
    def count(self) -> int:
        return int(len(self.indices))


def flips(scores: np.ndarray, previous: float, threshold: float) -> Flips:
    """Rows whose keep/drop decision changes when the threshold moves from `previous`."""
    scores = np.asarray(scores)
    changed = kept_mask(scores, previous) != kept_mask(scores, threshold)
    idx = np.flatnonzero(changed)
    idx = idx[np.argsort(scores[idx], kind="stable")]
    return Flips(float(previous), float(threshold), idx, float(threshold) < float(previous))


def sample_evenly(indices: np.ndarray, k: int) -> np.ndarray:
    """At most `k` of `indices`, spread evenly over them (they are sorted by score)."""
    if len(indices) <= k:
        return indices
    picks = np.linspace(0, len(indices) - 1, k).round().astype(int)
    return indices[np.unique(picks)]


def threshold_summary(scores: np.ndarray, threshold: float, previous: float | None = None) -> dict:
    kept = int(kept_mask(scores, threshold).sum())
    summary = {"threshold": float(threshold), "total": int(len(scores)), "kept": kept}
    summary["dropped"] = summary["total"] - kept
    if previous is not None:
        f = flips(scores, previous, threshold)
        summary["previous"] = float(previous)
        summary["flipped"] = f.count
        summary["flipped_to"] = "kept" if f.now_kept else "dropped"
    return summary


def score_histogram(scores: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    counts, edges = np.histogram(np.asarray(scores), bins=bins, range=(0.0, 1.0))
    return [(float(edges[i]), float(edges[i + 1]), int(c)) for i, c in enumerate(counts)]


# --- apply -------------------------------------------------------------------------------


def apply_classifier(ws, spec, model: str, threshold: float, *, progress=None) -> DatasetVersion:
    """A new version with the rows scored good at or above `threshold`."""
    from studio.data.store import write_version

    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise DataError(f"threshold {threshold} must be between 0 and 1")
    started = time.perf_counter()
    version, ds = open_cached(ws, spec)
    clf = load_classifier(ws, model)
    scores = score_version(ws, version, clf, progress=progress)
    keep = np.flatnonzero(kept_mask(scores, threshold))
    if len(keep) == 0:
        raise DataError(
            f"threshold {threshold} drops every document of {version.spec}; nothing was saved "
            "(lower the threshold)"
        )
    kept = ds.select(keep) if len(keep) < len(ds) else ds
    counts = {
        "in": len(ds),
        "out": int(len(keep)),
        "removed": {"quality_below_threshold": int(len(ds) - len(keep))},
        "score_histogram": [c for _, _, c in score_histogram(scores)],
    }
    settings = {
        "model": clf.name,
        "threshold": threshold,
        "tokenize": clf.tokenize,
        "model_created": clf.meta.get("created"),
        "model_trained_on": clf.meta.get("version"),
    }
    return write_version(
        ws,
        version.name,
        kept,
        format=version.format,
        operation="classify",
        parent=version,
        settings=settings,
        counts=counts,
        seconds=time.perf_counter() - started,
    )


# --- labeling queue ----------------------------------------------------------------------

ORDERS = ("random", "uncertain")


def labeling_order(n: int, order: str, seed: int, scores: np.ndarray | None = None) -> np.ndarray:
    """The order in which to show rows for labeling: a seeded random permutation, or (with
    scores) the most uncertain first (closest to 0.5; ties in seeded random order)."""
    rng = np.random.default_rng(int(seed))
    perm = rng.permutation(n)
    if order == "random":
        return perm
    if order == "uncertain":
        if scores is None or len(scores) != n:
            raise DataError("uncertain-first needs a classifier's scores for this version")
        distance = np.abs(np.asarray(scores, dtype=np.float64)[perm] - 0.5)
        return perm[np.argsort(distance, kind="stable")]
    raise DataError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")


def new_queue(ws, spec, order: str = "random", seed: int = 0, model: str | None = None) -> dict:
    """A labeling session over a version (kept in the UI's state): the row order, how far
    it got, and the rows shown so far (for Back)."""
    version, ds = open_cached(ws, spec)
    scores = None
    if order == "uncertain":
        if not model:
            raise DataError("uncertain-first needs a trained classifier: train one, or pick one")
        scores = score_version(ws, version, model)
    return {
        "spec": version.spec,
        "dataset": version.name,
        "order": labeling_order(len(ds), order, seed, scores),
        "pos": 0,
        "history": [],
        "cursor": -1,
        "mode": order,
    }


def queue_current(queue: dict | None) -> int | None:
    if not queue or queue["cursor"] < 0 or queue["cursor"] >= len(queue["history"]):
        return None
    return int(queue["history"][queue["cursor"]])


def queue_next(ws, queue: dict, *, scan_limit: int = 20000) -> int | None:
    """Move to the next row: forward through rows already shown (after Back), then the next
    row of the order that has no label yet. None when every row is labeled."""
    if queue["cursor"] < len(queue["history"]) - 1:
        queue["cursor"] += 1
        return queue_current(queue)
    labels = load_labels(ws, queue["dataset"])
    order = queue["order"]
    scanned = 0
    while queue["pos"] < len(order) and scanned < scan_limit:
        index = int(order[queue["pos"]])
        queue["pos"] += 1
        scanned += 1
        if get_document(ws, queue["spec"], index).key in labels:
            continue
        queue["history"].append(index)
        queue["cursor"] = len(queue["history"]) - 1
        return index
    return None


def queue_back(queue: dict) -> int | None:
    if queue and queue["cursor"] > 0:
        queue["cursor"] -= 1
    return queue_current(queue)


LABEL_ACTIONS = ("good", "noise", "skip", "back", "clear")


def label_action(ws, spec: str, queue: dict, action: str) -> dict:
    """One step of the labeller (the Data tab's buttons and keys): `good`/`noise` label the
    current document and move to the next, `skip` moves on, `back` returns to the previous
    one, `clear` removes the current label and stays. Returns the queue, moved."""
    if action not in LABEL_ACTIONS:
        raise DataError(f"unknown labelling action {action!r}; one of {', '.join(LABEL_ACTIONS)}")
    current = queue_current(queue)
    if action in LABELS and current is not None:
        set_label(ws, spec, current, action)
        queue_next(ws, queue)
    elif action == "clear" and current is not None:
        set_label(ws, spec, current, None)
    elif action == "skip":
        queue_next(ws, queue)
    elif action == "back":
        queue_back(queue)
    return queue
