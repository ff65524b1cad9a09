"""Encode rows into token arrays: in this process for a few rows, or in worker processes
straight into a store folder for a whole dataset.

Both go through `encode_chunk`, which is `encode_examples` (the label inspector's encoding
path, batched) plus the row checks, so a store is exactly what the inspector computes row
by row. Rows are read in order by this process and sent to the workers a chunk at a time;
results come back in order and are appended to the store's files, so memory holds a few
chunks whatever the size of the corpus.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from studio.errors import StudioError
from studio.labels.diagnose import DRIFT_SAMPLE, RowChecker, merge_findings
from studio.labels.encode import EncodingSettings, Tokens, encode_example, encode_examples
from studio.tokens.rows import Columns, StoreWriter, TokenRows, columns, id_dtype

CHUNK_ROWS = 1024
CHUNK_CHARS = 2 << 20  # characters of text per chunk sent to a worker
DRIFT_CHUNKS = 4  # the drift check's sample comes from the first chunks
PROGRESS_EVERY_S = 0.5
MAX_WORKERS = 8
WORKERS_ENV = "STUDIO_ENCODE_WORKERS"


class RowError(StudioError, ValueError):
    """A row that cannot be encoded (a chat template that refuses it, ...)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(row, message)
        self.row, self.message = row, message

    def __str__(self) -> str:
        return f"row {self.row + 1}: {self.message}"


class Cancelled(Exception):
    """The user stopped the encoding; nothing of it was kept."""


@dataclass
class Progress:
    """How far an encoding has come (also: `waiting` for another process that encodes the
    same data, `indexing`, `checking`)."""

    state: str
    rows: int = 0
    total_rows: int | None = None
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        if not self.total_rows:
            return None
        return min(self.rows / self.total_rows, 1.0)

    @property
    def eta_s(self) -> float | None:
        done = self.fraction
        if not done or self.seconds <= 0:
            return None
        return self.seconds * (1 - done) / done

    def to_dict(self) -> dict:
        return {
            "state": self.state,
            "rows": self.rows,
            "total_rows": self.total_rows,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 1),
            "tokens_per_s": round(self.tokens_per_s),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }

    def line(self) -> str:
        """One line for a terminal or a log."""
        if self.state != "encoding":
            return f"[studio] {self.state}..."
        total = f"/{self.total_rows:,}" if self.total_rows else ""
        bar = ""
        if self.fraction is not None:
            filled = int(self.fraction * 24)
            bar = f"[{'#' * filled}{'.' * (24 - filled)}] {self.fraction:6.1%} "
        eta = f", ETA {_duration(self.eta_s)}" if self.eta_s is not None else ""
        return (
            f"[studio] encoding {bar}{self.rows:,}{total} rows, {self.tokens:,} tokens, "
            f"{self.tokens_per_s:,.0f} tokens/s{eta}"
        )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def default_workers() -> int:
    """Worker processes for encoding: `STUDIO_ENCODE_WORKERS`, else the cores this process
    may use less one for the app, at most MAX_WORKERS (each holds a tokenizer and a few
    chunks: a few hundred MB)."""
    chosen = os.environ.get(WORKERS_ENV, "").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores - 1))


def row_chars(data: dict) -> int:
    if "messages" in data:
        return sum(len(m.get("content") or "") for m in data["messages"])
    return sum(len(data.get(k) or "") for k in ("text", "prompt", "completion"))


def chunks(rows: Iterable[tuple[int, dict]]) -> Iterator[list[tuple[int, dict]]]:
    """Rows in chunks of at most CHUNK_ROWS rows or about CHUNK_CHARS characters."""
    chunk, chars = [], 0
    for item in rows:
        chunk.append(item)
        chars += row_chars(item[1])
        if len(chunk) >= CHUNK_ROWS or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def encode_chunk(
    examples: list[tuple[int, dict]],
    first_position: int,
    tok: Tokens,
    settings: EncodingSettings,
    drift_budget: int = 0,
) -> tuple[Columns, np.ndarray, dict]:
    """One chunk of rows -> their flat encoding, their flag words and the row checks'
    details. Rows are numbered by position from `first_position`."""
    try:
        encoded = encode_examples(examples, tok, settings)
    except ValueError:
        for position, (row, data) in enumerate(examples, first_position):
            try:
                encode_example(data, tok, settings, row=row)
            except ValueError as exc:
                raise RowError(position, str(exc)) from None
        raise
    checker = RowChecker(tok, settings, drift_budget)
    for position, ((_, data), enc) in enumerate(zip(examples, encoded, strict=True)):
        checker.check(first_position + position, data, enc)
    flags, details = checker.findings()
    return columns(encoded), flags, details


def encode_rows(
    examples: Iterable[tuple[int, dict]], tok: Tokens, settings: EncodingSettings
) -> TokenRows:
    """Encode rows in this process, into memory (a few rows, or a file outside the
    workspace). The rows keep the numbers they came with."""
    parts, flags, details, numbers = [], [], [], []
    position = 0
    for n, chunk in enumerate(chunks(examples)):
        cols, chunk_flags, chunk_details = encode_chunk(
            chunk, position, tok, settings, DRIFT_SAMPLE if n < DRIFT_CHUNKS else 0
        )
        parts.append(cols)
        flags.append(chunk_flags)
        details.append(chunk_details)
        numbers += [row for row, _ in chunk]
        position += len(chunk)
    return TokenRows.from_columns(
        parts,
        np.concatenate(flags) if flags else np.empty(0, np.uint16),
        merge_findings(details),
        row_numbers=np.asarray(numbers, np.int64),
    )


# --- worker processes -------------------------------------------------------------------

_WORKER: dict = {}


def _start_worker(payload: bytes) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker
    import logging
    import pickle

    logging.getLogger("transformers").setLevel(logging.ERROR)
    _WORKER["tok"], _WORKER["settings"] = pickle.loads(payload)


def _work(examples, first_position, drift_budget):
    return encode_chunk(examples, first_position, _WORKER["tok"], _WORKER["settings"], drift_budget)


def _pool(workers: int, tok: Tokens, settings: EncodingSettings):
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    # Spawned, not forked: the app has threads (and a tokenizer's own thread pool) that a
    # fork would copy in whatever state they are in.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(pickle.dumps((tok, settings)),),
    )


def _stop_pool(pool) -> None:
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()


def encode_to_folder(
    folder,
    rows: Iterable[tuple[int, dict]],
    tok: Tokens,
    settings: EncodingSettings,
    *,
    meta: dict,
    workers: int | None = None,
    total_rows: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> None:
    """Encode `rows` (in order, numbered by position) into the store files of `folder`."""
    workers = default_workers() if workers is None else max(1, workers)
    started = time.perf_counter()
    writer = StoreWriter(folder, id_dtype(max(tok.tokenizer.get_vocab().values(), default=0)))
    details: list[dict] = []
    state = Progress("encoding", total_rows=total_rows)
    reported = 0.0

    def write(result) -> None:
        nonlocal reported
        cols, flags, chunk_details = result
        writer.append(cols, flags)
        details.append(chunk_details)
        state.rows, state.tokens = writer.rows, writer.tokens
        state.seconds = time.perf_counter() - started
        if progress and state.seconds - reported >= PROGRESS_EVERY_S:
            progress(state)
            reported = state.seconds

    def stopped() -> bool:
        return bool(cancel and cancel())

    try:
        if progress:
            progress(state)
        if workers == 1:
            position = 0
            for n, chunk in enumerate(chunks(rows)):
                if stopped():
                    raise Cancelled()
                budget = DRIFT_SAMPLE if n < DRIFT_CHUNKS else 0
                write(encode_chunk(chunk, position, tok, settings, budget))
                position += len(chunk)
        else:
            _encode_in_workers(rows, tok, settings, workers, write, stopped)
        state.seconds = time.perf_counter() - started
        if progress:
            progress(state)
        writer.finish(
            {**meta, "seconds": round(state.seconds, 3), "workers": workers},
            merge_findings(details),
        )
    finally:
        writer.close()


def _encode_in_workers(rows, tok, settings, workers, write, stopped) -> None:
    from concurrent.futures import TimeoutError as FutureTimeout
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(workers, tok, settings)
    pending: deque = deque()

    def collect_one():
        future = pending.popleft()
        while True:
            if stopped():
                raise Cancelled()
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                continue
            except BrokenProcessPool:
                raise RuntimeError(
                    "an encoding worker process died (killed, or out of memory?); nothing was "
                    f"kept. Try again with fewer workers ({WORKERS_ENV}=2)."
                ) from None

    try:
        position = 0
        for n, chunk in enumerate(chunks(rows)):
            if stopped():
                raise Cancelled()
            while len(pending) >= 2 * workers:
                write(collect_one())
            budget = DRIFT_SAMPLE if n < DRIFT_CHUNKS else 0
            pending.append(pool.submit(_work, chunk, position, budget))
            position += len(chunk)
        while pending:
            write(collect_one())
        pool.shutdown(wait=True)
    except BaseException:
        _stop_pool(pool)
        raise
