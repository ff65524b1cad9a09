"""Run rows through the encoding path and the collator, then diagnose what came out.

`scan` streams a whole dataset in chunks (bounded memory); `inspect_rows` builds the
post-collator batch of a few rows for the token view. Both call the same encoder, packer
and collator the trainer uses.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from studio.labels.diagnose import Checker, Diagnostic, has_errors
from studio.labels.encode import (
    IGNORE,
    Collator,
    Encoded,
    EncodingSettings,
    Segment,
    Tokens,
    encode_example,
    pack,
    resolve_tokens,
)

CHUNK_ROWS = 512
BATCH_SIZE = 8


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
class Step:
    """One collated batch and where it came from."""

    examples: list[tuple[int, dict]]
    encoded: list[Encoded]
    sequences: list
    batch: dict


def steps(
    examples: Iterable[tuple[int, dict]],
    tok: Tokens,
    settings: EncodingSettings,
    *,
    chunk_rows: int = CHUNK_ROWS,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Step]:
    """Encode, pack and collate rows chunk by chunk, yielding post-collator batches."""
    collate = Collator.for_settings(tok, settings)
    chunk: list[tuple[int, dict]] = []

    def flush(chunk):
        encoded = [encode_example(data, tok, settings, row=row) for row, data in chunk]
        sequences = pack(encoded, settings, tok)
        first = True
        for i in range(0, len(sequences), batch_size):
            group = sequences[i : i + batch_size]
            yield Step(
                # Each row's checks run once, with the first batch of its chunk.
                chunk if first else [],
                encoded if first else [],
                group,
                collate(group),
            )
            first = False

    for item in examples:
        chunk.append(item)
        if len(chunk) >= chunk_rows:
            yield from flush(chunk)
            chunk = []
    if chunk:
        yield from flush(chunk)


def _checker(target: Target, tok: Tokens, settings: EncodingSettings) -> Checker:
    return Checker(
        tok,
        settings,
        target.generation_eos_ids,
        inference_template=target.inference_template,
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
    lengths: array = field(repr=False, default_factory=lambda: array("I"))  # per row, untruncated

    @property
    def blocked(self) -> bool:
        return has_errors(self.diagnostics)

    def histogram(self, bins: int = 20) -> list[dict]:
        """Row counts by untruncated token length, in equal-width bins."""
        if not self.lengths:
            return []
        top = max(max(self.lengths), 1)
        width = max(1, -(-top // bins))
        counts = [0] * bins
        for n in self.lengths:
            counts[min(n // width, bins - 1)] += 1
        return [
            {"start": i * width, "end": (i + 1) * width, "rows": c} for i, c in enumerate(counts)
        ]

    def length_percentiles(self) -> dict:
        if not self.lengths:
            return {}
        ordered = sorted(self.lengths)

        def at(q):
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}

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
        }


def scan(
    examples: Iterable[tuple[int, dict]],
    target: Target,
    settings: EncodingSettings,
    *,
    chunk_rows: int = CHUNK_ROWS,
    batch_size: int = BATCH_SIZE,
) -> ScanReport:
    """Diagnose every row of a dataset, streaming: the rows are never all in memory."""
    started = time.perf_counter()
    settings.validate()
    tok = resolve_tokens(target.tokenizer, settings)
    checker = _checker(target, tok, settings)
    rows = tokens = trained = truncated = n_sequences = 0
    lengths = array("I")
    for step in steps(examples, tok, settings, chunk_rows=chunk_rows, batch_size=batch_size):
        checker.observe(step.examples, step.encoded, step.sequences, step.batch)
        for enc in step.encoded:
            rows += 1
            lengths.append(enc.full_length)
            truncated += enc.truncated > 0 or enc.full_length > settings.max_length
        n_sequences += len(step.sequences)
        tokens += sum(len(s.input_ids) for s in step.sequences)
        trained += int((step.batch["labels"] != IGNORE).sum())
    return ScanReport(
        rows=rows,
        diagnostics=checker.diagnostics(),
        settings=settings.to_dict(),
        model=target.name,
        seconds=time.perf_counter() - started,
        tokens=tokens,
        trained_tokens=trained,
        truncated_rows=truncated,
        sequences=n_sequences,
        lengths=lengths,
    )


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
    encoded: list[Encoded]
    tokens: Tokens


def inspect_rows(
    examples: list[tuple[int, dict]], target: Target, settings: EncodingSettings
) -> Inspection:
    """The post-collator batch of a few rows, and what the checks say about them."""
    settings.validate()
    tok = resolve_tokens(target.tokenizer, settings)
    checker = _checker(target, tok, settings)
    sequences, encoded = [], []
    chunk = max(len(examples), 1)
    for step in steps(examples, tok, settings, chunk_rows=chunk, batch_size=chunk):
        checker.observe(step.examples, step.encoded, step.sequences, step.batch)
        encoded += step.encoded
        batch = {k: v.tolist() for k, v in step.batch.items()}
        for k, seq in enumerate(step.sequences):
            pad = len(batch["input_ids"][k]) - len(seq.labels)
            sequences.append(
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
    return Inspection(sequences, checker.diagnostics(), encoded, tok)
