"""Documents cut into passages: the unit a generator reads and the data's lineage.

A passage is a span of one document, by characters or by the generator's tokens, with an
overlap, ending at a sentence end where one lies in the window's last part (so a question is
not asked about half a sentence). Passages are numbered in document order; the numbering
depends only on the dataset version and these settings, so a stopped job that is started
again finds the same passages under the same numbers and skips the finished ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from studio.errors import InputError

UNITS = ("chars", "tokens")
SENTENCE_ENDS = "。！？!?\n"
SNAP_FROM = 0.6  # a sentence end after this share of the window ends the passage there


@dataclass
class PassageSettings:
    unit: str = "chars"
    size: int = 600
    overlap: int = 100
    min_chars: int = 40  # shorter passages (a short document's tail) are not worth a prompt

    def validate(self) -> PassageSettings:
        if self.unit not in UNITS:
            raise InputError(f"unit must be one of {', '.join(UNITS)}", code="bad_passage_unit")
        if not 16 <= int(self.size) <= 100_000:
            raise InputError("passage size must be between 16 and 100,000", code="bad_passage")
        if not 0 <= int(self.overlap) < int(self.size) // 2 + 1:
            raise InputError(
                "overlap must be at least 0 and at most half the passage size",
                code="bad_passage",
            )
        if int(self.min_chars) < 1:
            raise InputError("min_chars must be at least 1", code="bad_passage")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Passage:
    index: int  # in the job's numbering: document order, then position
    row: int  # the document's row in the dataset version
    doc_id: str
    start: int  # character offsets in the document's text, end exclusive
    end: int
    text: str


def _snap(text: str, start: int, end: int) -> int:
    """Move `end` back to just after the last sentence end in the window's last part."""
    if end >= len(text):
        return len(text)
    floor = start + int((end - start) * SNAP_FROM)
    last = max(text.rfind(c, floor, end) for c in SENTENCE_ENDS)
    return last + 1 if last >= 0 else end


def char_spans(text: str, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    start, n = 0, len(text)
    while start < n:
        end = _snap(text, start, min(n, start + size))
        yield start, end
        if end >= n:
            return
        start = max(end - overlap, start + 1)


def token_spans(text: str, size: int, overlap: int, tokenizer) -> Iterator[tuple[int, int]]:
    """Windows of `size` tokens (character offsets from the tokenizer's offset mapping)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    offsets = [(s, e) for s, e in offsets if e > s]
    first, n = 0, len(offsets)
    while first < n:
        last = min(n, first + size) - 1
        yield offsets[first][0], offsets[last][1] if last < n - 1 else len(text)
        if last >= n - 1:
            return
        first = max(last + 1 - overlap, first + 1)


def spans(text: str, settings: PassageSettings, tokenizer=None) -> Iterator[tuple[int, int]]:
    if settings.unit == "tokens":
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise InputError(
                "cutting by tokens needs the generator's fast tokenizer; cut by characters",
                code="tokens_need_fast_tokenizer",
            )
        return token_spans(text, int(settings.size), int(settings.overlap), tokenizer)
    return char_spans(text, int(settings.size), int(settings.overlap))


def passages(
    documents, settings: PassageSettings, tokenizer=None, *, limit: int | None = None
) -> Iterator[Passage]:
    """Passages of `documents` ((row, id, text) in order), at most `limit` of them."""
    index = 0
    for row, doc_id, text in documents:
        for start, end in spans(text, settings, tokenizer):
            piece = text[start:end]
            if len(piece.strip()) < int(settings.min_chars):
                continue
            if limit is not None and index >= limit:
                return
            yield Passage(index, row, str(doc_id), start, end, piece)
            index += 1


def plan(documents, settings: PassageSettings, tokenizer=None, *, limit: int | None = None):
    """The passages as an (n, 3) int64 array of (row, start, end): the same passages as
    `passages`, without their text, so that a corpus of billions of tokens plans in a few
    hundred MB (24 bytes a passage) and each batch reads its own texts when it runs."""
    from array import array

    import numpy as np

    found = array("q")
    for p in passages(((row, "", text) for row, _, text in documents), settings, tokenizer,
                      limit=limit):  # fmt: skip
        found.extend((p.row, p.start, p.end))
    return np.frombuffer(found, dtype=np.int64).reshape(-1, 3).copy()
