"""Training data: dataset versions -> the sequences the trainer trains on.

Rows go through the label inspector's own `encode_example` and `pack`, and batches through
its `Collator`, so what the inspector showed is exactly what trains.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from studio.data.records import RecordError, dataset_file, iter_records
from studio.data.registry import find_version
from studio.labels.encode import (
    IGNORE,
    EncodingSettings,
    Sequence,
    Tokens,
    encode_example,
    pack,
)

# Formats each stage can train on. Pre-training reads raw text; SFT reads prompt/completion
# or chat rows (or text with a response marker that separates prompt from answer).
STAGE_FORMATS = {"pretrain": {"text"}, "sft": {"prompt_completion", "messages", "text"}}


class DataError(ValueError):
    """The data cannot be trained on as configured; the message says which row and why."""


@dataclass
class TrainingData:
    train: list[Sequence]
    eval: list[Sequence]
    versions: list[str]  # resolved NAME/vNNNN of every dataset used
    eval_version: str | None
    rows: int
    eval_rows: int
    tokens: int  # non-padding tokens in the training sequences
    trained_tokens: int

    def to_dict(self) -> dict:
        return {
            "versions": self.versions,
            "eval_version": self.eval_version,
            "rows": self.rows,
            "eval_rows": self.eval_rows,
            "sequences": len(self.train),
            "eval_sequences": len(self.eval),
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
        }


def resolve_versions(ws, specs: list[str]) -> list:
    try:
        return [find_version(ws, spec) for spec in specs]
    except LookupError as exc:
        raise DataError(str(exc)) from exc


def stage_rows(
    ws, specs: list[str], stage: str, settings: EncodingSettings | None = None
) -> Iterator[tuple[int, dict]]:
    """The rows of the given dataset versions as (row number, row), streamed, each checked
    against what the stage needs: a row it cannot use raises DataError naming its line."""
    allowed = STAGE_FORMATS[stage]
    n, plain_text = 0, True
    for version in resolve_versions(ws, specs):
        label = f"{version.name}/{version.version}"
        try:
            for record in iter_records(dataset_file(version)):
                if record.format not in allowed:
                    raise DataError(
                        f"{label} line {record.line}: a {record.format} row cannot be used for "
                        f"{_stage_name(stage)}; it needs {_formats(allowed)} rows. Pick another "
                        "dataset or change the stage."
                    )
                plain_text = plain_text and record.format == "text"
                yield n, record.data
                n += 1
        except RecordError as exc:
            raise DataError(f"{label}: {exc}") from exc
    if not n:
        raise DataError(f"{', '.join(specs)} has no rows to train on")
    if stage == "sft" and settings is not None and not settings.response_template and plain_text:
        raise DataError(
            "SFT on plain text rows trains on every token; set a response marker "
            "(encoding.response_template) or use the pretrain stage"
        )


def read_rows(ws, specs: list[str], stage: str, settings: EncodingSettings | None = None):
    """All rows of the given dataset versions, checked against what the stage needs, and the
    exact versions (NAME/vNNNN) they came from."""
    rows = [data for _, data in stage_rows(ws, specs, stage, settings)]
    return rows, [f"{v.name}/{v.version}" for v in resolve_versions(ws, specs)]


def _stage_name(stage: str) -> str:
    return "continued pre-training" if stage == "pretrain" else "SFT"


def _formats(formats: set[str]) -> str:
    return " or ".join(sorted(f.replace("_", "/") for f in formats))


def split_rows(rows: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out `share` of the rows for evaluation, by row (a held-out row is never packed
    together with a training row)."""
    if share <= 0:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(rows) * share))
    if n_eval >= len(rows):
        raise DataError(f"validation_split {share} leaves no training rows out of {len(rows)}")
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def encode_rows(rows: list[dict], tok: Tokens, settings: EncodingSettings) -> list[Sequence]:
    encoded = []
    for i, data in enumerate(rows):
        try:
            encoded.append(encode_example(data, tok, settings, row=i))
        except (RecordError, ValueError) as exc:
            raise DataError(f"row {i + 1}: {exc}") from exc
    return pack(encoded, settings, tok)


def build(ws, config, tok: Tokens) -> TrainingData:
    """Encode the run's data exactly as the inspector does."""
    settings = config.encoding
    rows, versions = read_rows(ws, config.datasets, settings.stage, settings)
    eval_version = None
    if config.eval_dataset:
        train_rows = rows
        eval_rows, (eval_version,) = read_rows(ws, [config.eval_dataset], settings.stage)
    else:
        train_rows, eval_rows = split_rows(rows, config.validation_split, config.training.seed)
    train = encode_rows(train_rows, tok, settings)
    evaluation = encode_rows(eval_rows, tok, settings) if eval_rows else []
    trained = sum(sum(1 for x in s.labels[1:] if x != IGNORE) for s in train)
    if trained == 0:
        raise DataError(
            "no token of the training data carries loss; open the Inspect tab to see why"
        )
    return TrainingData(
        train=train,
        eval=evaluation,
        versions=versions,
        eval_version=eval_version,
        rows=len(train_rows),
        eval_rows=len(eval_rows),
        tokens=sum(len(s.input_ids) for s in train),
        trained_tokens=trained,
    )
