"""Looking at a dataset version: a page of rows (optionally only those containing a search
text), per-column statistics, and length histograms in characters and in tokens. Every
function walks the Arrow dataset in batches and stops as soon as it has what it needs."""

from __future__ import annotations

import json
import math

from studio.data.store import document_text

BATCH = 1000
SHOWN_CHARS = 300


def _rows(data, start: int = 0):
    for offset in range(start, len(data), BATCH):
        yield from data.select(range(offset, min(offset + BATCH, len(data)))).to_list()


def cell(value) -> str:
    """A value as table text: strings shortened, lists and objects as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def page(data, format: str, *, number: int = 1, size: int = 20, query: str = "") -> dict:
    """Rows of page `number` (1-based) among the rows whose text contains `query` (all rows
    when empty). `matches` is exact when the search reached the end, else a lower bound."""
    size = max(1, min(int(size), 200))
    number = max(1, int(number))
    query = (query or "").strip()
    if not query:
        start = (number - 1) * size
        rows = data.select(range(start, min(start + size, len(data)))).to_list()
        indices = list(range(start, start + len(rows)))
        return {"rows": rows, "indices": indices, "matches": len(data), "complete": True}
    wanted = number * size
    found, indices = [], []
    complete = True
    for i, row in enumerate(_rows(data)):
        if query in document_text(row, format):
            found.append(row)
            indices.append(i)
            if len(found) > wanted:  # one more than needed: there is a next page
                complete = False
                break
    first = (number - 1) * size
    return {
        "rows": found[first : first + size],
        "indices": indices[first : first + size],
        "matches": len(found) if complete else wanted,
        "complete": complete,
    }


def column_stats(data, *, limit: int = 20000) -> list[dict]:
    """Per column: rows looked at, empty values, and for text the length in characters
    (mean, min, max); lists (messages) report their length in items."""
    stats: dict[str, dict] = {}
    looked = 0
    for row in _rows(data):
        if looked >= limit:
            break
        looked += 1
        for name, value in row.items():
            s = stats.setdefault(
                name, {"column": name, "empty": 0, "n": 0, "sum": 0, "lengths": []}
            )
            if value in (None, "", []):
                s["empty"] += 1
                continue
            size = len(value) if isinstance(value, str | list) else len(str(value))
            s["n"] += 1
            s["sum"] += size
            s["lengths"].append(size)
    out = []
    for s in stats.values():
        lengths = s.pop("lengths")
        out.append(
            {
                "column": s["column"],
                "rows": looked,
                "empty": s["empty"],
                "mean_length": round(s["sum"] / s["n"], 1) if s["n"] else 0,
                "min_length": min(lengths, default=0),
                "max_length": max(lengths, default=0),
            }
        )
    return out


def histogram(values: list[int], bins: int = 20) -> list[dict]:
    """Counts of `values` in `bins` equal-width buckets (labelled by their range)."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = max(1, math.ceil((high - low + 1) / bins))
    counts: dict[int, int] = {}
    for v in values:
        b = (v - low) // width
        counts[b] = counts.get(b, 0) + 1
    return [
        {"bucket": f"{low + b * width}–{low + (b + 1) * width - 1}", "start": low + b * width,
         "count": counts.get(b, 0)}
        for b in range(max(counts) + 1)
    ]  # fmt: skip


def lengths(data, format: str, *, tokenizer=None, limit: int = 5000) -> dict:
    """Length in characters of every document (up to `limit`), and in tokens when a
    tokenizer is given (the same documents)."""
    chars, tokens, texts = [], [], []
    for i, row in enumerate(_rows(data)):
        if i >= limit:
            break
        text = document_text(row, format)
        chars.append(len(text))
        texts.append(text)
        if tokenizer is not None and len(texts) >= 256:
            tokens += [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
            texts = []
    if tokenizer is not None and texts:
        tokens += [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return {"looked": len(chars), "total": len(data), "chars": chars, "tokens": tokens}
