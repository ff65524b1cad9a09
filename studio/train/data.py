"""Training data: dataset versions -> the sequences the trainer trains on.

The rows are encoded once into a token store (`studio.tokens`) by the label inspector's
own encoder, shared with the Inspect tab and the Train check; the training and validation
sequences are packing indexes over it (`studio.labels.packing`), gathered when the Trainer
asks for them, and batches go through the inspector's `Collator`. What the inspector showed
is exactly what trains, and memory holds the index, not the corpus.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from studio.data.records import FORMATS, RecordError, dataset_file, iter_records
from studio.data.registry import find_version
from studio.errors import StudioError
from studio.labels.encode import EncodingSettings, Tokens

# Formats each stage can train on. Pre-training reads raw text; SFT reads prompt/completion
# or chat rows (or text with a response marker that separates prompt from answer).
STAGE_FORMATS = {"pretrain": {"text"}, "sft": {"prompt_completion", "messages", "text"}}


class DataError(StudioError, ValueError):
    """The data cannot be trained on as configured; the message says which row and why."""


@dataclass
class TrainingData:
    train: object  # studio.labels.packing.Sequences (a lazy list of Sequence)
    eval: object  # the same for the validation rows, or [] without them
    versions: list[str]  # resolved NAME/vNNNN of every dataset used
    eval_version: str | None
    rows: int
    eval_rows: int
    tokens: int  # non-padding tokens in the training sequences
    trained_tokens: int
    stores: list = field(default_factory=list, repr=False)  # the TokenRows read
    seconds: float | None = None  # how long opening (or encoding) it all took

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
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "stores": [
                {
                    "key": rows.folder.name,
                    "encoded_now": not rows.meta.get("cached", True),
                    "encode_seconds": rows.meta.get("seconds"),
                }
                for rows in self.stores
                if rows.folder is not None
            ],
        }

    def release(self) -> None:
        """Let go of the stores (a training process holds them while it trains)."""
        for rows in self.stores:
            if rows.pin is not None:
                rows.pin.release()
            rows.close()


def resolve_versions(ws, specs: list[str]) -> list:
    try:
        return [find_version(ws, spec) for spec in specs]
    except LookupError as exc:
        raise DataError(str(exc)) from exc


def stage_rows(
    ws, specs: list[str], stage: str | None, settings: EncodingSettings | None = None
) -> Iterator[tuple[int, dict]]:
    """The rows of the given dataset versions as (row number, row), streamed, each checked
    against what the stage needs: a row it cannot use raises DataError naming its line.
    Without a stage (the inspector), every canonical row is read."""
    allowed = STAGE_FORMATS[stage] if stage else set(FORMATS)
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
    held = set(_held_out(len(rows), share, seed).tolist())
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def _held_out(n: int, share: float, seed: int) -> np.ndarray:
    from studio.labels.packing import held_out

    try:
        return held_out(n, share, seed)
    except ValueError as exc:
        raise DataError(str(exc)) from exc


def open_rows(
    ws,
    specs: list[str],
    tok: Tokens,
    settings: EncodingSettings,
    *,
    stage: str | None = None,
    text_check: bool = True,
    workers: int | None = None,
    progress: Callable | None = None,
    cancel: Callable[[], bool] | None = None,
    pin: bool = False,
):
    """The token store of the given dataset versions (`studio.tokens.rows.TokenRows`),
    encoded now unless an earlier check or run already did. With a `stage`, every row must
    be one the stage can train on (`text_check`: plain text for SFT needs a response
    marker), whether the store is new or not."""
    from studio.tokens.build import RowError
    from studio.tokens.cache import open_or_build

    versions = resolve_versions(ws, specs)
    check = settings if text_check else None
    try:
        rows = open_or_build(
            ws,
            versions,
            tok,
            settings,
            lambda: stage_rows(ws, specs, stage, check),
            workers=workers,
            progress=progress,
            cancel=cancel,
            pin=pin,
        )
    except RowError as exc:  # say which dataset the row is in
        raise DataError(f"{_row_name(versions, exc.row)}: {exc.message}") from None
    if stage and rows.meta.get("cached") and not _stage_fits(rows, stage, check):
        # Found wanting: read the rows again for the exact row, line and reason.
        collections.deque(stage_rows(ws, specs, stage, check), maxlen=0)
    return rows


def _row_name(versions, position: int) -> str:
    """`name/vNNNN row N` of a row numbered across several versions."""
    for version in versions:
        if position < int(version.rows or 0):
            return f"{version.spec} row {position + 1}"
        position -= int(version.rows or 0)
    return f"row {position + 1}"


def _stage_fits(rows, stage: str, settings: EncodingSettings | None) -> bool:
    """From the store's count of rows of each format (no row is read)."""
    if "formats" in rows.meta:
        counts = {f: n for f, n in rows.meta["formats"].items() if n}
    else:  # a store written before the counts were kept
        found = np.bincount(np.asarray(rows.facts["format"]), minlength=len(FORMATS))
        counts = {f: int(n) for f, n in zip(FORMATS, found, strict=True) if n}
    if not counts or not set(counts) <= STAGE_FORMATS[stage]:
        return False
    plain_text = set(counts) == {"text"}
    answers_unmarked = settings is not None and not settings.response_template
    return not (stage == "sft" and answers_unmarked and plain_text)


def prepare(ws, config, tok: Tokens, **store_options) -> TrainingData:
    """The run's training and validation sequences: its stores (encoded if need be) and
    their packing indexes, kept beside the stores. Once those exist, this reads no row: the
    split is drawn and the rows packed only when an index is made."""
    from studio.labels.inspect import index_of
    from studio.labels.packing import Sequences

    settings = config.encoding
    source = open_rows(ws, config.datasets, tok, settings, stage=settings.stage, **store_options)
    stores = [source]
    versions = [v.spec for v in resolve_versions(ws, config.datasets)]
    eval_version, eval_index = None, None
    if config.eval_dataset:
        eval_source = open_rows(
            ws,
            [config.eval_dataset],
            tok,
            settings,
            stage=settings.stage,
            text_check=False,
            **store_options,
        )
        stores.append(eval_source)
        (eval_version,) = [v.spec for v in resolve_versions(ws, [config.eval_dataset])]
        train_index = index_of(source, settings, name="train:all")
        eval_index = index_of(eval_source, settings, name="eval:all")
    else:
        eval_source = source
        share, seed = config.validation_split, config.training.seed
        split = f"split:{share}:{seed}"
        held = functools.cache(lambda: _held_out(source.n_rows, share, seed))
        train_index = index_of(
            source,
            settings,
            lambda: np.setdiff1d(np.arange(source.n_rows), held()),
            f"train:{split}",
        )
        if share > 0:
            eval_index = index_of(source, settings, held, f"eval:{split}")
    evaluation = Sequences(eval_source, eval_index) if eval_index is not None else []
    return TrainingData(
        train=Sequences(source, train_index),
        eval=evaluation,
        versions=versions,
        eval_version=eval_version,
        rows=len(train_index.rows),
        eval_rows=len(eval_index.rows) if eval_index is not None else 0,
        tokens=train_index.tokens,
        trained_tokens=train_index.trained_in(source),
        stores=stores,
    )


def build(ws, config, tok: Tokens, **store_options) -> TrainingData:
    """`prepare`, refusing data in which no token carries loss."""
    data = prepare(ws, config, tok, **store_options)
    if data.trained_tokens == 0:
        data.release()
        raise DataError(
            "no token of the training data carries loss; open the Inspect tab to see why"
        )
    return data
