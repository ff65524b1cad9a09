"""Run rows through the encoding path and the collator, then diagnose what came out.

`scan_rows` diagnoses encoded rows (`studio.tokens.rows.TokenRows`, a token store on disk
or a few rows in memory) over the sequences the trainer would make of them; `scan_store`
does so for dataset versions through their token store, keeping the report beside it;
`scan` encodes rows given one by one first. `inspect_rows` builds the post-collator batch
of a few rows for the token view. All of them go through the encoder, the packing index
and the collator the trainer uses.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from studio.labels.diagnose import (
    DRIFT_SAMPLE,
    Diagnostic,
    SequenceChecker,
    diagnose,
    drifts,
    has_errors,
)
from studio.labels.encode import IGNORE, Collator, EncodingSettings, Segment, Tokens, resolve_tokens
from studio.labels.packing import PackIndex, Pieces, Sequences, gather


@dataclass
class Target:
    """What the inspector needs from a model: its tokenizer and how generation stops.
    No weights are loaded."""

    name: str
    tokenizer: object
    generation_eos_ids: list[int]
    inference_template: str | None  # the model's own chat template
    context_length: int | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer, name: str = "tokenizer", generation_eos_ids=None):
        eos = generation_eos_ids
        if eos is None:
            eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        return cls(name, tokenizer, list(eos), getattr(tokenizer, "chat_template", None))


def load_target(source, *, trust_remote_code: bool = False) -> Target:
    """Tokenizer and generation stop ids of a model source (`studio.models.load`)."""
    from studio.models.load import load_tokenizer

    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    eos_ids = None
    try:
        from studio.models.load import transformers_names

        GenerationConfig = transformers_names("GenerationConfig")  # noqa: N806

        gen = GenerationConfig.from_pretrained(source.ref)
        eos = gen.eos_token_id
        if eos is not None:
            eos_ids = list(eos) if isinstance(eos, list | tuple) else [eos]
    except (OSError, ValueError):
        pass  # no generation_config.json: generation stops on the tokenizer's EOS
    target = Target.from_tokenizer(tokenizer, source.name, eos_ids)
    try:
        from studio.models.load import transformers_names

        AutoConfig = transformers_names("AutoConfig")  # noqa: N806

        config = AutoConfig.from_pretrained(source.ref, trust_remote_code=trust_remote_code)
        target.context_length = getattr(config, "max_position_embeddings", None)
    except (OSError, ValueError):
        pass
    return target


def examples_of(path, *, limit: int | None = None) -> Iterator[tuple[int, dict]]:
    from studio.data.records import iter_records

    return ((r.index, r.data) for r in iter_records(path, limit=limit))


def rows_at(path, start: int, count: int) -> list[tuple[int, dict]]:
    """Rows `start`..`start+count-1` of a dataset file (read up to there, not further)."""
    from studio.data.records import iter_records

    found = []
    for record in iter_records(path, limit=start + count):
        if record.index >= start:
            found.append((record.index, record.data))
    return found


def suggest_fixes(report: ScanReport, target: Target, settings: EncodingSettings, path):
    from studio.labels.fixes import suggest

    tok = resolve_tokens(target.tokenizer, settings)
    return suggest(
        report.diagnostics,
        tok,
        settings,
        inference_template=target.inference_template,
        lengths=report.lengths,
        context_length=target.context_length,
        examples=rows_at(path, 0, 50),
    )


@dataclass
class ScanReport:
    rows: int
    diagnostics: list[Diagnostic]
    settings: dict
    model: str
    seconds: float
    tokens: int  # non-padding tokens in all sequences
    trained_tokens: int
    truncated_rows: int
    sequences: int
    lengths: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.int64))
    store: dict | None = None  # the token store read: key, whether it was encoded now, ...
    spans: str | None = None  # chat rows: how assistant turns are found (spans.METHODS)

    @property
    def blocked(self) -> bool:
        return has_errors(self.diagnostics)

    def histogram(self, bins: int = 20) -> list[dict]:
        """Row counts by untruncated token length, in equal-width bins."""
        if not len(self.lengths):
            return []
        top = max(int(self.lengths.max()), 1)
        width = max(1, -(-top // bins))
        counts = np.bincount(np.minimum(self.lengths // width, bins - 1), minlength=bins)
        return [
            {"start": i * width, "end": (i + 1) * width, "rows": int(c)}
            for i, c in enumerate(counts.tolist())
        ]

    def length_percentiles(self) -> dict:
        if not len(self.lengths):
            return {}
        ordered = np.sort(self.lengths)

        def at(q):
            return int(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

        return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": int(ordered[-1])}

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "rows": self.rows,
            "sequences": self.sequences,
            "seconds": round(self.seconds, 3),
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "trained_ratio": round(self.trained_tokens / self.tokens, 4) if self.tokens else 0.0,
            "truncated_rows": self.truncated_rows,
            "truncated_share": round(self.truncated_rows / self.rows, 4) if self.rows else 0.0,
            "lengths": self.length_percentiles(),
            "max_length": self.settings["max_length"],
            "histogram": self.histogram(),
            "settings": self.settings,
            "blocked": self.blocked,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "store": self.store,
            "spans": self.spans,
        }


def scan(
    examples: Iterable[tuple[int, dict]], target: Target, settings: EncodingSettings
) -> ScanReport:
    """Encode rows in memory and diagnose them (a few rows, or a file outside the
    workspace; a dataset version goes through its token store: `scan_store`)."""
    from studio.tokens.build import encode_rows

    started = time.perf_counter()
    settings.validate()
    examples = iter(examples)
    first = next(examples, None)
    examples = itertools.chain([first] if first is not None else [], examples)
    if first is not None and is_preference(first[1]):
        from studio.labels.pairs import scan_pair_rows

        return scan_pair_rows(examples, target, settings)
    tok = resolve_tokens(target.tokenizer, settings)
    rows = encode_rows(examples, tok, settings)
    return scan_rows(rows, target, settings, tok=tok, started=started)


def is_preference(data: dict) -> bool:
    """A preference or KTO row (`studio.data.preference`): checked as pairs."""
    from studio.data.records import PREFERENCE_FORMATS, detect_format

    return detect_format(data) in PREFERENCE_FORMATS


def index_of(rows, settings: EncodingSettings, selection=None, name: str = "all") -> PackIndex:
    """The packing index over `selection` (row positions, or a function that gives them;
    all rows by default), kept in the store's folder when the rows come from one: `name`
    says which selection it is (the store never changes)."""
    path = None
    if rows.folder is not None:
        tag = f"{name}:{settings.packing}:{settings.max_length}"
        path = rows.folder / "index" / f"{hashlib.sha256(tag.encode()).hexdigest()[:24]}.npz"
        if path.is_file():
            try:
                return PackIndex.load(path)
            except (OSError, ValueError, KeyError):
                pass  # damaged: computed again
    if selection is None:
        selection = np.arange(rows.n_rows)
    elif callable(selection):
        selection = selection()
    index = PackIndex.build(rows.lengths, selection, settings.packing, settings.max_length)
    if path is not None:
        index.save(path)
    return index


def scan_rows(
    rows,
    target: Target,
    settings: EncodingSettings,
    *,
    tok: Tokens | None = None,
    started: float | None = None,
    progress: Callable | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ScanReport:
    """Diagnose encoded rows over the sequences the trainer would make of all of them,
    reading the tokens group by group (a few million at a time)."""
    from studio.tokens.build import Cancelled, Progress

    started = time.perf_counter() if started is None else started
    settings.validate()
    tok = tok or resolve_tokens(target.tokenizer, settings)
    index = index_of(rows, settings)
    # With isolated packing each row is masked and checked alone, whatever bin it is in:
    # the checks read the rows in their order, from one stretch of the store.
    view = index
    if settings.packing == "isolated":
        view = PackIndex.build(rows.lengths, np.arange(rows.n_rows), "off", settings.max_length)
    facts = rows.facts
    checker = SequenceChecker(
        tok, settings, target.generation_eos_ids, rows.n_rows, np.asarray(facts["end_dropped"])
    )
    checked = Progress("checking", total_rows=rows.n_rows)
    for group in Sequences(rows, view).groups():
        if cancel and cancel():
            raise Cancelled()
        checker.observe(group)
        if progress:
            checked.rows = int(group.pieces.row[-1]) + 1 if len(group.pieces) else checked.rows
            checked.seconds = time.perf_counter() - started
            progress(checked)
    drifted, drift_checked = [], 0
    if target.inference_template:
        for position, data in rows.drift_sample()[:DRIFT_SAMPLE]:
            truncated = int(facts["truncated"][position])
            drift_checked += 1
            tokens = row_tokens(rows, position)
            if drifts(tok, target.inference_template, data, tokens, truncated):
                drifted.append(position)
    diagnostics = diagnose(
        tok, settings, rows.flags, rows.findings, checker, rows.numbers, drifted, drift_checked
    )
    full = np.asarray(facts["full_length"], np.int64)
    truncated = (np.asarray(facts["truncated"]) > 0) | (full > settings.max_length)
    return ScanReport(
        rows=rows.n_rows,
        diagnostics=diagnostics,
        settings=settings.to_dict(),
        model=target.name,
        seconds=time.perf_counter() - started,
        tokens=index.tokens,
        trained_tokens=int(checker.trained.sum()),
        truncated_rows=int(truncated.sum()),
        sequences=len(index),
        lengths=full,
        spans=_spans_method(rows, tok, settings),
    )


def _spans_method(rows, tok: Tokens, settings: EncodingSettings) -> str | None:
    """How the assistant turns of the chat rows are found, when assistant-only loss is
    computed for some."""
    from studio.data.records import FORMATS

    chat = int(np.asarray(rows.facts["format"] == FORMATS.index("messages")).sum())
    if not chat or settings.stage != "sft" or settings.loss not in ("auto", "assistant"):
        return None
    return tok.spans.method


def row_tokens(rows, position: int) -> tuple[list[int], list[int]]:
    """One row's ids and labels, as `encode_example` gave them."""
    length = int(rows.offsets[position + 1] - rows.offsets[position])
    one = np.ones(1, bool)
    zero = np.zeros(1, np.int64)
    group = gather(rows, Pieces(np.array([position]), zero, np.array([length]), zero, zero, one))
    labels = np.where(group.trained, group.ids, IGNORE)
    return group.ids.tolist(), labels.tolist()


def scan_store(
    rows,
    target: Target,
    settings: EncodingSettings,
    *,
    tok: Tokens | None = None,
    progress: Callable | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ScanReport:
    """`scan_rows` for a token store, its report kept in the store's folder: the same
    check of the same data with the same model and settings answers at once."""
    started = time.perf_counter()
    tag = json.dumps(
        [
            settings.to_dict(),
            sorted(target.generation_eos_ids),
            target.inference_template,
            target.name,
        ],
        sort_keys=True,
    )
    path = rows.folder / "scans" / f"{hashlib.sha256(tag.encode()).hexdigest()[:24]}.json"
    store = {
        "key": rows.folder.name,
        "encoded_now": not rows.meta.get("cached", True),
        "encode_seconds": rows.meta.get("seconds"),
        "workers": rows.meta.get("workers"),
        "tokens": rows.n_tokens,
    }
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        report = ScanReport(
            **{k: kept[k] for k in ("rows", "settings", "model", "tokens", "trained_tokens")},
            spans=kept.get("spans"),
            diagnostics=[Diagnostic(**d) for d in kept["diagnostics"]],
            seconds=0.0,
            truncated_rows=kept["truncated_rows"],
            sequences=kept["sequences"],
            lengths=np.asarray(rows.facts["full_length"], np.int64),
        )
        store["scan_seconds"] = kept["seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        report = scan_rows(rows, target, settings, tok=tok, progress=progress, cancel=cancel)
        from studio.fsutil import atomic_write_json

        store["scan_seconds"] = round(report.seconds, 3)
        kept = report.to_dict()
        kept.pop("store", None)
        atomic_write_json(path, kept)
    report.seconds = time.perf_counter() - started
    report.store = store
    return report


@dataclass
class InspectedSequence:
    """One sequence of the post-collator batch, as lists, with its rows marked."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    attention_mask: list[int] | None
    segments: list[Segment]
    pre_labels: list[int]  # labels before the collator (to show what it changed)

    def to_dict(self) -> dict:
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "position_ids": self.position_ids,
            "attention_mask": self.attention_mask,
            "rows": [s.__dict__ for s in self.segments],
        }


@dataclass
class Inspection:
    sequences: list[InspectedSequence]
    diagnostics: list[Diagnostic]
    tokens: Tokens


def inspect_rows(
    examples: list[tuple[int, dict]], target: Target, settings: EncodingSettings
) -> Inspection:
    """The post-collator batch of a few rows, and what the checks say about them."""
    from studio.tokens.build import encode_rows

    settings.validate()
    tok = resolve_tokens(target.tokenizer, settings)
    rows = encode_rows(examples, tok, settings)
    sequences = list(Sequences(rows, index_of(rows, settings)))
    report = scan_rows(rows, target, settings, tok=tok)
    shown = []
    collate = Collator.for_settings(tok, settings)
    size = max(len(examples), 1)  # one batch per that many sequences, as the view shows them
    for first in range(0, len(sequences), size):
        group = sequences[first : first + size]
        batch = {k: v.tolist() for k, v in collate(group).items()}
        for k, seq in enumerate(group):
            pad = len(batch["input_ids"][k]) - len(seq.labels)
            shown.append(
                InspectedSequence(
                    input_ids=batch["input_ids"][k],
                    labels=batch["labels"][k],
                    position_ids=batch["position_ids"][k],
                    attention_mask=batch["attention_mask"][k]
                    if "attention_mask" in batch
                    else None,
                    segments=seq.segments,
                    pre_labels=seq.labels + [IGNORE] * pad,
                )
            )
    return Inspection(shown, report.diagnostics, tok)


def scan_dataset(
    ws,
    specs: list[str],
    target: Target,
    settings: EncodingSettings,
    *,
    progress: Callable | None = None,
    cancel: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> ScanReport:
    """Diagnose dataset versions of the workspace through their token store (encoded now
    unless a scan, a check or a run already did), as the Inspect tab and the CLI do."""
    from studio.data.records import PREFERENCE_FORMATS
    from studio.data.registry import find_version
    from studio.train.data import open_rows

    settings.validate()
    if any(find_version(ws, spec).format in PREFERENCE_FORMATS for spec in specs):
        from studio.labels.pairs import scan_pairs

        return scan_pairs(ws, specs, target, settings)
    tok = resolve_tokens(target.tokenizer, settings)
    rows = open_rows(ws, specs, tok, settings, progress=progress, cancel=cancel, workers=workers)
    try:
        return scan_store(rows, target, settings, tok=tok, progress=progress, cancel=cancel)
    finally:
        rows.close()
