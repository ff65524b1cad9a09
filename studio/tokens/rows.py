"""Encoded rows as flat arrays, in memory or in a store folder on disk.

What `encode_example` makes of each row is kept as: every token id in one flat array, the
row boundaries (`offsets`), the trained spans of each row (labels are either -100 or the
token itself, so start/end pairs say everything), and one record of facts per row (length
before truncation, tokens and trained tokens cut, whether the end marker was cut, why no
token carries loss). The checks that need a row's own text leave one flag word per row.

A store folder holds these as raw little-endian files named in `FILES`, plus `meta.json`
(what was encoded, how, counts) and `findings.json` (the text checks' details). Ids are
read with `pread` and the per-row arrays through memory maps, so reading a sequence costs
memory for that sequence only, whatever the size of the corpus.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from studio.data.records import FORMATS
from studio.labels.encode import IGNORE, Encoded

LOSSES = ("completion", "assistant", "all")
# Why a row carries no loss, as the encoder says it (index 0: it does, or it does not say).
REASONS = (None, "response_template_not_found", "no_assistant_turn", "template_not_marked")
REASONS += ("truncated",)

ROW_FACTS = np.dtype(
    [
        ("full_length", "<i8"),  # tokens before truncation
        ("truncated", "<i8"),  # tokens removed by truncation
        ("trained_dropped", "<i8"),  # tokens that would have carried loss, removed
        ("end_dropped", "?"),  # the end marker of a trained span was cut away
        ("reason", "u1"),  # index into REASONS
        ("format", "u1"),  # index into studio.data.records.FORMATS
        ("loss", "u1"),  # index into LOSSES
    ]
)
SPAN = np.dtype("<i4")
OFFSET = np.dtype("<i8")
FLAGS = np.dtype("<u2")

# name -> dtype; `ids` is uint16 or uint32 (meta.json says which).
FILES = {
    "offsets": OFFSET,
    "span_offsets": OFFSET,
    "spans": SPAN,
    "facts": ROW_FACTS,
    "flags": FLAGS,
}


def id_dtype(max_id: int) -> np.dtype:
    """The narrowest type that holds every token id: two bytes a token for vocabularies
    up to 65,536 (Llama-2, Gemma-2's 256k do not fit), else four."""
    return np.dtype("<u2") if max_id < 1 << 16 else np.dtype("<u4")


@dataclass
class Columns:
    """One chunk of encoded rows, flat."""

    ids: np.ndarray  # uint32
    lengths: np.ndarray  # int64 per row (after truncation)
    spans: np.ndarray  # int32 (n, 2): trained [start, end) within the row
    span_counts: np.ndarray  # int64 per row
    facts: np.ndarray  # ROW_FACTS per row

    def __len__(self) -> int:
        return len(self.lengths)


def runs(mask: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every run of True in `mask` that does not cross a boundary in
    `offsets` (the starts of the parts `mask` is made of, with its length last)."""
    n = len(mask)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    inner = offsets[(offsets > 0) & (offsets < n)]
    before = np.zeros(n, bool)  # the token before is trained and in the same part
    before[1:] = mask[:-1]
    before[inner] = False
    after = np.zeros(n, bool)
    after[:-1] = mask[1:]
    after[inner - 1] = False
    return np.flatnonzero(mask & ~before), np.flatnonzero(mask & ~after) + 1


def columns(encoded: list[Encoded]) -> Columns:
    """The flat form of `encode_example`'s results."""
    n = len(encoded)
    lengths = np.fromiter((len(e.input_ids) for e in encoded), np.int64, n)
    total = int(lengths.sum())
    ids = np.fromiter(chain.from_iterable(e.input_ids for e in encoded), np.int64, total)
    labels = np.fromiter(chain.from_iterable(e.labels for e in encoded), np.int64, total)
    mask = labels != IGNORE
    if not np.array_equal(labels[mask], ids[mask]):
        raise AssertionError("a trained label differs from its token; the encoder changed")
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    starts, ends = runs(mask, offsets)
    row_of = np.searchsorted(offsets, starts, side="right") - 1
    spans = np.stack([starts - offsets[row_of], ends - offsets[row_of]], axis=1).astype(SPAN)
    facts = np.zeros(n, ROW_FACTS)
    facts["full_length"] = [e.full_length for e in encoded]
    facts["truncated"] = [e.truncated for e in encoded]
    facts["trained_dropped"] = [e.trained_dropped for e in encoded]
    facts["end_dropped"] = [e.end_dropped for e in encoded]
    facts["reason"] = [REASONS.index(e.reason) for e in encoded]
    facts["format"] = [FORMATS.index(e.format) for e in encoded]
    facts["loss"] = [LOSSES.index(e.loss) for e in encoded]
    return Columns(
        ids=ids.astype(np.uint32),
        lengths=lengths,
        spans=spans.reshape(-1, 2),
        span_counts=np.bincount(row_of, minlength=n).astype(np.int64),
        facts=facts,
    )


class _FileIds:
    """Token ids in a file, read with `pread` (no mapping: what was read is not kept)."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self._fd: int | None = None
        self._pid = 0

    def _handle(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, start: int, stop: int) -> np.ndarray:
        size = self.dtype.itemsize
        want = (stop - start) * size
        data = os.pread(self._handle(), want, start * size)
        if len(data) != want:
            raise OSError(f"{self.path} is shorter than its store says; remove the store")
        return np.frombuffer(data, self.dtype)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self):
        return {"path": self.path, "dtype": self.dtype, "_fd": None, "_pid": 0}

    def __del__(self):
        with contextlib.suppress(OSError):
            self.close()


class _MemoryIds:
    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.ids[start:stop]

    def close(self) -> None:
        pass


class TokenRows:
    """Encoded rows: token ids, trained spans and facts, by row position (0-based)."""

    def __init__(
        self,
        *,
        ids,
        offsets: np.ndarray,
        span_offsets: np.ndarray,
        spans: np.ndarray,
        facts: np.ndarray,
        flags: np.ndarray,
        findings: dict,
        row_numbers: np.ndarray | None = None,
        folder: Path | None = None,
        meta: dict | None = None,
    ) -> None:
        self._ids = ids
        self.offsets = offsets
        self.span_offsets = span_offsets
        self.spans = spans
        self.facts = facts
        self.flags = flags
        self.findings = findings
        self.row_numbers = row_numbers
        self.folder = folder
        self.meta = meta or {}
        self.pin = None  # studio.tokens.cache.Pin while a process holds the store

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Token ids `start`..`stop` of the flat array."""
        return self._ids.read(start, stop)

    def numbers(self, positions) -> np.ndarray:
        """The row numbers the user knows the rows by (their place in the data)."""
        positions = np.asarray(positions, np.int64)
        return positions if self.row_numbers is None else self.row_numbers[positions]

    def drift_sample(self) -> list[tuple[int, dict]]:
        """The first chat rows, kept with their text for the template drift check."""
        return [(int(pos), data) for pos, data in self.findings.get("drift_sample", [])]

    def close(self) -> None:
        self._ids.close()

    # --- in memory ---------------------------------------------------------------------

    @classmethod
    def from_columns(
        cls,
        parts: Iterable[Columns],
        flags: np.ndarray,
        findings: dict,
        row_numbers: np.ndarray | None = None,
    ) -> TokenRows:
        parts = list(parts)
        lengths = np.concatenate([p.lengths for p in parts] or [np.empty(0, np.int64)])
        counts = np.concatenate([p.span_counts for p in parts] or [np.empty(0, np.int64)])
        return cls(
            ids=_MemoryIds(np.concatenate([p.ids for p in parts] or [np.empty(0, np.uint32)])),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(OFFSET),
            span_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(OFFSET),
            spans=np.concatenate([p.spans for p in parts] or [np.empty((0, 2), SPAN)]),
            facts=np.concatenate([p.facts for p in parts] or [np.empty(0, ROW_FACTS)]),
            flags=flags,
            findings=findings,
            row_numbers=row_numbers,
        )

    # --- on disk -------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path) -> TokenRows:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        findings = json.loads((folder / "findings.json").read_text(encoding="utf-8"))
        arrays = {name: _map(folder / f"{name}.bin", dtype) for name, dtype in FILES.items()}
        rows = cls(
            ids=_FileIds(folder / "ids.bin", np.dtype(meta["id_dtype"])),
            spans=arrays.pop("spans").reshape(-1, 2),
            findings=findings,
            folder=folder,
            meta=meta,
            **arrays,
        )
        if rows.n_rows != meta["rows"] or rows.n_tokens != meta["tokens"]:
            raise OSError(f"{folder} does not match its meta.json; remove the store")
        return rows


def _map(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.stat().st_size == 0:  # an empty file cannot be mapped
        return np.empty(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")


class StoreWriter:
    """Appends chunks of encoded rows to the files of a store folder, in row order."""

    def __init__(self, folder: Path, ids_dtype: np.dtype) -> None:
        self.folder = Path(folder)
        self.ids_dtype = np.dtype(ids_dtype)
        self.files = {name: open(self.folder / f"{name}.bin", "wb") for name in FILES}  # noqa: SIM115
        self.files["ids"] = open(self.folder / "ids.bin", "wb")  # noqa: SIM115
        self.rows = self.tokens = self.spans = 0
        self.formats = np.zeros(len(FORMATS), np.int64)  # rows of each format
        self._write("offsets", np.zeros(1, OFFSET))
        self._write("span_offsets", np.zeros(1, OFFSET))

    def _write(self, name: str, array: np.ndarray) -> None:
        self.files[name].write(np.ascontiguousarray(array).tobytes())

    def append(self, cols: Columns, flags: np.ndarray) -> None:
        if len(cols.ids) and int(cols.ids.max()) > np.iinfo(self.ids_dtype).max:
            raise ValueError("a token id does not fit the store's id type")
        self._write("ids", cols.ids.astype(self.ids_dtype))
        self._write("offsets", self.tokens + np.cumsum(cols.lengths))
        self._write("span_offsets", self.spans + np.cumsum(cols.span_counts))
        self._write("spans", cols.spans.astype(SPAN))
        self._write("facts", cols.facts)
        self._write("flags", flags.astype(FLAGS))
        self.formats += np.bincount(cols.facts["format"], minlength=len(FORMATS))
        self.rows += len(cols)
        self.tokens += int(cols.lengths.sum())
        self.spans += int(cols.span_counts.sum())

    def finish(self, meta: dict, findings: dict) -> None:
        """Flush everything to disk; meta.json is written last, so a store that has it is
        complete."""
        from studio.fsutil import atomic_write_json

        for handle in self.files.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        atomic_write_json(self.folder / "findings.json", findings)
        meta = {
            **meta,
            "rows": self.rows,
            "tokens": self.tokens,
            "spans": self.spans,
            "formats": dict(zip(FORMATS, self.formats.tolist(), strict=True)),
            "id_dtype": self.ids_dtype.str,
        }
        atomic_write_json(self.folder / "meta.json", meta)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
