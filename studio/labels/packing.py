"""Training sequences as an index over encoded rows, gathered when they are needed.

`PackIndex` says which rows (or pieces of rows) make each sequence: one row per sequence
(`off`), several whole rows per sequence by first-fit decreasing (`isolated`), or the rows
joined and cut into blocks of `max_length` (`concatenated`). It is a few numpy arrays, so
it is computed once and kept beside a token store. `gather` reads the tokens and trained
masks of any pieces from the rows (`studio.tokens.rows.TokenRows`), `sequence` turns one
sequence's pieces into the `Sequence` the collator takes, and `Sequences` is the lazy list
of them that the Trainer samples from.
"""

from __future__ import annotations

import collections.abc
import io
import random
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import InputError
from studio.labels.encode import IGNORE, Segment, Sequence

_I64 = np.int64


@dataclass
class Pieces:
    """Parts of rows, in sequence order: row `row` from `offset`, `length` tokens, placed at
    position `pos` of sequence `seq`; `last`: the part holds the end of its row."""

    row: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    seq: np.ndarray
    pos: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


@dataclass
class Group:
    """The tokens of some pieces, flat: ids, whether each token carries loss in its row
    (before any rule of packing or collation), its position in its sequence, and where each
    piece lies (`start`..`end` in the flat arrays)."""

    ids: np.ndarray
    trained: np.ndarray
    pos: np.ndarray
    pieces: Pieces
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, _I64)
    np.cumsum(values, out=out[1:])
    return out


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: start[i], start[i]+1, ... (counts[i] numbers each)."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, _I64)
    shift = np.repeat(starts - _exclusive_cumsum(counts)[:-1], counts)
    return shift + np.arange(total, dtype=_I64)


def first_fit_decreasing(lengths: np.ndarray, capacity: int) -> np.ndarray:
    """The bin of each item: longest first (ties in the order given), each into the first
    bin with room. A max-tree over the bins' free room finds that bin in log time, so
    millions of rows pack in seconds; the tree and the result are arrays of machine
    integers (16 bytes a row), not lists of Python ints."""
    lengths = np.asarray(lengths, _I64)
    n = len(lengths)
    order = np.argsort(-lengths, kind="stable")
    size = 1
    while size < max(n, 1):
        size *= 2
    room = array("q", [-1]) * (2 * size)  # max free room under each node; -1: no bin yet
    bins = np.zeros(n, _I64)
    count = 0
    for first in range(0, n, 1 << 16):  # a slice at a time, as Python ints
        items = order[first : first + (1 << 16)]
        chosen = []
        for need in lengths[items].tolist():
            if room[1] >= need:
                node = 1
                while node < size:
                    node = 2 * node if room[2 * node] >= need else 2 * node + 1
            else:
                node = size + count
                room[node] = capacity
                count += 1
            chosen.append(node - size)
            room[node] -= need
            node //= 2
            while node:
                left, right = room[2 * node], room[2 * node + 1]
                room[node] = left if left > right else right
                node //= 2
        bins[items] = chosen
    return bins


def _compact(values) -> np.ndarray:
    values = np.asarray(values)
    if len(values) and int(values.max()) >= 1 << 31:
        return values.astype(_I64)
    return values.astype(np.int32)


class PackIndex:
    """Which pieces of which rows make each training sequence."""

    def __init__(self, packing, max_length, rows, lengths, bounds=None, trained=None) -> None:
        self.packing = packing
        self.max_length = int(max_length)
        # Row positions in sequence order, and their lengths: four bytes each where they
        # fit, as the training process keeps them for the whole run.
        self.rows = _compact(rows)
        self.lengths = _compact(lengths)
        # isolated: where each bin starts in `rows`; concatenated: where each row starts
        # in the joined stream.
        self.bounds = None if bounds is None else np.asarray(bounds, _I64)
        self.trained = trained  # tokens carrying loss, once counted (`trained_in`)
        self.path: Path | None = None  # where it is kept, if it is

    @classmethod
    def build(cls, lengths: np.ndarray, rows: np.ndarray, packing: str, max_length: int):
        """The index over `rows` (positions into `lengths`, in order)."""
        rows = np.asarray(rows, _I64)
        sizes = np.asarray(lengths, _I64)[rows]
        if packing == "off":
            return cls(packing, max_length, rows, sizes)
        if packing == "isolated":
            bins = first_fit_decreasing(sizes, max_length)
            order = np.lexsort((rows, bins))
            counts = np.bincount(bins, minlength=int(bins.max()) + 1 if len(bins) else 0)
            return cls(packing, max_length, rows[order], sizes[order], _exclusive_cumsum(counts))
        return cls(packing, max_length, rows, sizes, _exclusive_cumsum(sizes))

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())

    def trained_in(self, source) -> int:
        """Tokens that carry loss in these sequences (`trained_tokens`), counted once and
        kept with the index."""
        if self.trained is None:
            self.trained = trained_tokens(source, self)
            if self.path is not None:
                self.save(self.path)
        return self.trained

    def __len__(self) -> int:
        if self.packing == "off":
            return len(self.rows)
        if self.packing == "isolated":
            return len(self.bounds) - 1
        return -(-self.tokens // self.max_length)

    def pieces(self, start: int, stop: int) -> Pieces:
        """The pieces of sequences `start`..`stop-1`, in order."""
        stop = min(stop, len(self))
        if self.packing == "off":
            n = max(stop - start, 0)
            zeros = np.zeros(n, _I64)
            return Pieces(
                row=self.rows[start:stop],
                offset=zeros,
                length=self.lengths[start:stop],
                seq=np.arange(start, start + n, dtype=_I64),
                pos=zeros,
                last=np.ones(n, bool),
            )
        if self.packing == "isolated":
            stop = max(stop, start)
            lo, hi = self.bounds[start], self.bounds[stop]
            counts = np.diff(self.bounds[start : stop + 1])
            lengths = self.lengths[lo:hi]
            stream = _exclusive_cumsum(lengths)
            bin_first = _exclusive_cumsum(counts)[:-1]  # each bin's first piece
            return Pieces(
                row=self.rows[lo:hi],
                offset=np.zeros(hi - lo, _I64),
                length=lengths,
                seq=np.repeat(np.arange(start, stop, dtype=_I64), counts),
                pos=stream[:-1] - np.repeat(stream[bin_first], counts),
                last=np.ones(hi - lo, bool),
            )
        return self._concatenated(start, stop)

    def _concatenated(self, start: int, stop: int) -> Pieces:
        block, cum = self.max_length, self.bounds
        lo, hi = start * block, min(max(stop, start) * block, self.tokens)
        if hi <= lo:
            empty = np.empty(0, _I64)
            return Pieces(empty, empty, empty, empty, empty, np.empty(0, bool))
        row_starts = cum[np.searchsorted(cum, lo, "right") : np.searchsorted(cum, hi, "left")]
        block_starts = np.arange(-(-lo // block) * block, hi, block, dtype=_I64)
        cuts = np.unique(np.concatenate([[lo, hi], row_starts, block_starts]))
        begin, end = cuts[:-1], cuts[1:]
        k = np.searchsorted(cum, begin, "right") - 1  # the row each piece comes from
        seq = begin // block
        return Pieces(
            row=self.rows[k],
            offset=begin - cum[k],
            length=end - begin,
            seq=seq,
            pos=begin - seq * block,
            last=end == cum[k + 1],
        )

    # --- kept beside the store -------------------------------------------------------------

    def save(self, path: Path) -> None:
        from studio.fsutil import atomic_write_bytes

        buffer = io.BytesIO()
        arrays = {"rows": self.rows, "lengths": self.lengths}
        if self.bounds is not None:
            arrays["bounds"] = self.bounds
        if self.trained is not None:
            arrays["trained"] = np.int64(self.trained)
        np.savez(buffer, packing=self.packing, max_length=self.max_length, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        self.path = Path(path)

    @classmethod
    def load(cls, path: Path) -> PackIndex:
        with np.load(path) as data:
            trained = int(data["trained"]) if "trained" in data else None
            index = cls(
                str(data["packing"]),
                int(data["max_length"]),
                data["rows"],
                data["lengths"],
                data.get("bounds", None),
                trained,
            )
        index.path = Path(path)
        return index


def _piece_spans(source, pieces: Pieces):
    """The trained spans of the pieces' rows, cut to the pieces: (piece, start, end), in
    row coordinates."""
    first = np.asarray(source.span_offsets[pieces.row], _I64)
    counts = np.asarray(source.span_offsets[pieces.row + 1], _I64) - first
    spans = np.asarray(source.spans[_ranges(first, counts)], _I64).reshape(-1, 2)
    owner = np.repeat(np.arange(len(pieces)), counts)
    lo = pieces.offset[owner]
    hi = lo + pieces.length[owner]
    begin, end = np.clip(spans[:, 0], lo, hi), np.clip(spans[:, 1], lo, hi)
    keep = begin < end
    return owner[keep], begin[keep], end[keep]


def trained_tokens(source, index: PackIndex, packing: str | None = None) -> int:
    """Tokens that carry loss in the index's sequences as the collator leaves them, from
    the spans alone (no token is read). The first token of a sequence never carries loss
    (nothing precedes it), nor, with isolated packing, the first token of each row."""
    packing = packing or index.packing
    total, step = 0, max(1, (1 << 20) // max(index.max_length, 1))
    for start in range(0, len(index), step):
        pieces = index.pieces(start, start + step)
        owner, begin, end = _piece_spans(source, pieces)
        total += int((end - begin).sum())
        # ... less the pieces whose first token is trained and comes first in its sequence
        # (isolated: first in its row).
        heads = (pieces.pos == 0) | (packing == "isolated")
        first_trained = np.zeros(len(pieces), bool)
        first_trained[owner[begin == pieces.offset[owner]]] = True
        total -= int((first_trained & heads & (pieces.length > 0)).sum())
    return total


def gather(source, pieces: Pieces) -> Group:
    """Read the pieces' tokens and trained masks from `source` (a TokenRows)."""
    n_pieces = len(pieces)
    flat = _exclusive_cumsum(pieces.length)
    total = int(flat[-1])
    stored = np.asarray(source.offsets[pieces.row], _I64) + pieces.offset
    # Pieces that follow each other on disk are read in one go (a scan reads whole runs).
    breaks = np.flatnonzero(stored[1:] != stored[:-1] + pieces.length[:-1]) + 1
    firsts, lasts = np.concatenate([[0], breaks]), np.concatenate([breaks, [n_pieces]])
    parts = [
        source.read(int(stored[a]), int(stored[b - 1] + pieces.length[b - 1]))
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)
        if n_pieces
    ]
    ids = np.concatenate(parts).astype(_I64) if parts else np.empty(0, _I64)
    owner, begin, end = _piece_spans(source, pieces)
    shift = flat[:-1][owner] - pieces.offset[owner]
    edges = np.zeros(total + 1, np.int32)
    edges[begin + shift] += 1
    edges[end + shift] -= 1
    trained = np.cumsum(edges[:-1]) > 0
    pos = np.repeat(pieces.pos - flat[:-1], pieces.length) + np.arange(total, dtype=_I64)
    return Group(ids, trained, pos, pieces, flat[:-1], flat[1:])


def sequence(group: Group, packing: str, numbers: np.ndarray) -> Sequence:
    """One sequence's group as the collator takes it. `numbers`: the row numbers of the
    group's pieces."""
    p = group.pieces
    labels = np.where(group.trained, group.ids, IGNORE)
    within = group.pos - np.repeat(p.pos, p.length)  # position inside the piece
    if packing == "isolated":
        # The first token of a row would be predicted from the previous row's last token:
        # it carries no loss, as in transformers' DataCollatorWithFlattening.
        labels[group.start[p.length > 0]] = IGNORE
    positions = group.pos if packing == "concatenated" else within
    segments = [
        Segment(int(number), int(a), int(b), int(offset), bool(last))
        for number, a, b, offset, last in zip(
            numbers.tolist(),
            (p.pos).tolist(),
            (p.pos + p.length).tolist(),
            p.offset.tolist(),
            p.last.tolist(),
            strict=True,
        )
    ]
    return Sequence(group.ids.tolist(), labels.tolist(), positions.tolist(), segments)


class Sequences(collections.abc.Sequence):
    """The training sequences of an index, each gathered from the rows when asked for:
    what the Trainer samples from. Memory: the index, not the tokens."""

    def __init__(self, source, index: PackIndex) -> None:
        self.source = source
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        pieces = self.index.pieces(k, k + 1)
        group = gather(self.source, pieces)
        return sequence(group, self.index.packing, self.source.numbers(pieces.row))

    def groups(self, tokens: int = 1 << 20):
        """The sequences in order, gathered many at a time (about `tokens` per group)."""
        step = max(1, tokens // max(self.index.max_length, 1))
        for start in range(0, len(self), step):
            yield gather(self.source, self.index.pieces(start, start + step))


def held_out(n: int, share: float, seed: int) -> np.ndarray:
    """The row positions (sorted) held out for evaluation: `share` of `n`, at random.

    Python's seeded shuffle, as the studio has always split (a run resumed after an
    upgrade keeps its validation rows), over an array of machine integers: 8 bytes a row
    instead of a list of Python ints."""
    if share <= 0:
        return np.empty(0, _I64)
    n_eval = max(1, round(n * share))
    if n_eval >= n:
        raise InputError(f"validation_split {share} leaves no training rows out of {n}")
    order = array("q", range(n))
    random.Random(seed).shuffle(order)
    return np.sort(np.frombuffer(order, _I64)[:n_eval])
