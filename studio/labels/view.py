"""The token view: every token of a post-collator sequence as a coloured chip.

Roles: trained (its label is its id), masked (label -100), padding, and special tokens
outlined. Byte pieces that only together make one character (common for Japanese in
byte-level BPE) are grouped into one chip, so the chip shows the character.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from studio.labels.encode import IGNORE

VISIBLE = str.maketrans({" ": "·", "\n": "↵\n", "\t": "→", "\r": "␍", "\u3000": "□"})
# Tokens merged into one chip at most. A UTF-8 character is at most 4 bytes, but a byte
# piece can end one character and begin the next ("形文" as 5 pieces), so allow more.
MAX_GROUP = 8


@dataclass
class Chip:
    start: int  # first token index in the sequence
    end: int  # exclusive
    text: str
    role: str  # trained | masked | pad
    special: bool
    row_start: bool  # the first token of a row in a packed sequence


def _roles(seq, i: int) -> str:
    if seq.attention_mask is not None and seq.attention_mask[i] == 0:
        return "pad"
    if seq.attention_mask is None and i >= sum(s.end - s.start for s in seq.segments):
        return "pad"
    return "trained" if seq.labels[i] != IGNORE else "masked"


def chips(seq, tokenizer, special_ids: set[int]) -> list[Chip]:
    starts = {s.start for s in seq.segments} if len(seq.segments) > 1 else set()
    ids = seq.input_ids
    out: list[Chip] = []
    i = 0
    while i < len(ids):
        role = _roles(seq, i)
        if ids[i] in special_ids or role == "pad":
            text = tokenizer.convert_ids_to_tokens(ids[i]) if role != "pad" else "▯"
            out.append(Chip(i, i + 1, text, role, ids[i] in special_ids, i in starts))
            i += 1
            continue
        end = i + 1
        text = tokenizer.decode(ids[i:end])
        # Merge byte pieces until they decode to whole characters, without crossing a
        # role change, a special token or a row boundary.
        while (
            "\ufffd" in text
            and end < len(ids)
            and end - i < MAX_GROUP
            and ids[end] not in special_ids
            and _roles(seq, end) == role
            and end not in starts
        ):
            end += 1
            text = tokenizer.decode(ids[i:end])
        out.append(Chip(i, end, text, role, False, i in starts))
        i = end
    return out


def _title(seq, chip: Chip) -> str:
    parts = []
    for i in range(chip.start, chip.end):
        label = seq.labels[i]
        parts.append(
            f"#{i} id {seq.input_ids[i]} · label {label if label != IGNORE else -100}"
            f" · pos {seq.position_ids[i]}"
        )
    return "\n".join(parts)


def render_sequence(seq, tokenizer, special_ids: set[int], *, compact: bool = False) -> str:
    """HTML for one sequence; `compact` shows the ids under each chip."""
    pieces = []
    for chip in chips(seq, tokenizer, special_ids):
        classes = [f"tok tok-{chip.role}"]
        if chip.special:
            classes.append("tok-special")
        if chip.row_start:
            classes.append("tok-row-start")
        shown = html.escape(chip.text.translate(VISIBLE) or "∅")
        ids = " ".join(str(seq.input_ids[i]) for i in range(chip.start, chip.end))
        sub = f'<span class="tok-id">{ids}</span>' if compact else ""
        pieces.append(
            f'<span class="{" ".join(classes)}" title="{html.escape(_title(seq, chip))}" '
            f'data-start="{chip.start}">{shown}{sub}</span>'
        )
    return f'<div class="token-view{" compact" if compact else ""}">{"".join(pieces)}</div>'


def trained_runs(seq) -> list[list[int]]:
    """The runs of consecutive trained token ids of a sequence (or an encoded row)."""
    spans, current = [], []
    for token_id, label in zip(seq.input_ids, seq.labels, strict=True):
        if label != IGNORE:
            current.append(token_id)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    return spans


def trained_text(seq, tokenizer) -> list[str]:
    """The decoded text of each trained span, in order: what the model learns to write."""
    return [tokenizer.decode(span) for span in trained_runs(seq)]


def legend_counts(seq) -> dict:
    roles = [_roles(seq, i) for i in range(len(seq.input_ids))]
    return {role: roles.count(role) for role in ("trained", "masked", "pad")}


def histogram_svg(bins: list[dict], max_length: int, *, width: int = 560, height: int = 150) -> str:
    """Token-length histogram as inline SVG, with the max length drawn as a red line."""
    if not bins:
        return ""
    top = max(b["rows"] for b in bins) or 1
    right = max(bins[-1]["end"], max_length)
    pad_l, pad_b = 36, 18
    plot_w, plot_h = width - pad_l - 6, height - pad_b - 6

    def x(v):
        return pad_l + plot_w * v / right

    bars = []
    for b in bins:
        h = plot_h * b["rows"] / top
        bars.append(
            f'<rect x="{x(b["start"]):.1f}" y="{6 + plot_h - h:.1f}" '
            f'width="{max(x(b["end"]) - x(b["start"]) - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="#3aa59a"><title>{b["start"]}–{b["end"]}: {b["rows"]}</title></rect>'
        )
    line = x(max_length)
    return (
        f'<svg class="length-histogram" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{pad_l}" y1="{6 + plot_h}" x2="{width - 6}" y2="{6 + plot_h}" stroke="#888"/>'
        + "".join(bars)
        + f'<line x1="{line:.1f}" y1="4" x2="{line:.1f}" y2="{6 + plot_h}" stroke="#d33" '
        f'stroke-width="2"><title>max_length {max_length}</title></line>'
        f'<text x="{pad_l - 4}" y="14" font-size="10" text-anchor="end" fill="#888">{top}</text>'
        f'<text x="{pad_l}" y="{height - 4}" font-size="10" fill="#888">0</text>'
        f'<text x="{width - 6}" y="{height - 4}" font-size="10" text-anchor="end" '
        f'fill="#888">{right}</text></svg>'
    )
