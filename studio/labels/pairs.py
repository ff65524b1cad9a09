"""Preference rows -> the token ids preference training reads, and what can go wrong.

A pair is encoded by the ONE encoding path (`encode.encode_examples`): each side is the SFT row
it would be (the prompt and that reply: a chat row whose reply is the assistant's last turn,
or a prompt/completion row), so the chat template, BOS/EOS and end-of-turn handling are the
studio's own. The prompt is the tokens before the first trained token; a side is its trained
tokens (what follows its last trained token, such as the newline after `<|im_end|>`, is not
part of it). trl's preference trainers receive exactly these `prompt_ids`, `chosen_ids` and
`rejected_ids` (`completion_ids` for KTO) and train every token of a side, so the Inspect tab
shows what trains.

Truncation keeps the prompt and cuts the end of a side that does not fit in `max_length`;
a pair whose prompt alone fills `max_length` is left out (there is nothing to compare).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.data.preference import prompt_messages
from studio.errors import InputError
from studio.labels.diagnose import ERROR, INFO, SEVERITY_ORDER, WARNING, Diagnostic
from studio.labels.encode import (
    IGNORE,
    MAX_LENGTH_LIMIT,
    EncodingSettings,
    Tokens,
    encode_examples,
)

SIDES = ("chosen", "rejected")
# Code -> severity; explanations and fixes: studio/locales/inspect.yaml (diag_/fix_<code>).
PAIR_CODES = {
    "pair_not_trained": ERROR,  # a side has no trained token (template not marked, ...)
    "pair_eos_missing": ERROR,  # a side does not end on EOS / end-of-turn
    "pair_no_room": WARNING,  # ERROR when no pair fits
    "pair_identical": WARNING,
    "pair_prompt_differs": WARNING,
    "pair_truncated": WARNING,
    "kto_unbalanced": INFO,
}
ROW_SAMPLE = 200


@dataclass
class EncodedPair:
    row: int
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]  # empty for a KTO row
    label: bool | None = None  # KTO: whether the completion is desirable
    full: dict = field(default_factory=dict)  # side -> trained tokens before truncation
    truncated: dict = field(default_factory=dict)  # side -> tokens cut away
    end_dropped: dict = field(default_factory=dict)  # side -> its end marker was cut away
    prompt_differs: bool = False
    reason: str | None = None  # why the pair cannot train: no_room, or the encoder's reason

    @property
    def kto(self) -> bool:
        return self.label is not None

    def sides(self) -> dict[str, list[int]]:
        if self.kto:
            return {"completion": self.chosen_ids}
        return {"chosen": self.chosen_ids, "rejected": self.rejected_ids}

    def tokens(self) -> int:
        return len(self.prompt_ids) * (1 if self.kto else 2) + sum(
            len(ids) for ids in self.sides().values()
        )

    def features(self) -> dict:
        """The row trl's trainer reads."""
        if self.kto:
            return {
                "prompt_ids": self.prompt_ids,
                "completion_ids": self.chosen_ids,
                "label": bool(self.label),
            }
        return {
            "prompt_ids": self.prompt_ids,
            "chosen_ids": self.chosen_ids,
            "rejected_ids": self.rejected_ids,
        }


def side_rows(data: dict) -> list[tuple[str, dict]]:
    """The SFT row each side of a preference (or KTO) row would be."""
    prompt = data["prompt"]
    replies = (
        [("completion", data["completion"])]
        if "completion" in data
        else [(side, data[side]) for side in SIDES]
    )
    out = []
    for side, reply in replies:
        if isinstance(prompt, list):
            turns = prompt_messages(prompt)
            row = {
                "messages": [*turns, {"role": "assistant", "content": reply}],
                "completion_start": len(turns),
            }
        else:
            row = {"prompt": prompt, "completion": reply}
        out.append((side, row))
    return out


def side_settings(settings: EncodingSettings) -> EncodingSettings:
    """The encoder's settings for one side: trained on the reply, unpacked, uncut (a pair is
    cut as a pair, below)."""
    return settings.replace(
        stage="sft",
        loss="auto",
        packing="off",
        max_length=MAX_LENGTH_LIMIT,
        response_template=None,
    )


def _split(encoded) -> tuple[list[int], list[int], str | None]:
    """(prompt ids, trained ids) of one encoded side."""
    trained = [i for i, label in enumerate(encoded.labels) if label != IGNORE]
    if not trained:
        return encoded.input_ids, [], encoded.reason or "no_trained_tokens"
    first, last = trained[0], trained[-1]
    return encoded.input_ids[:first], encoded.input_ids[first : last + 1], None


def encode_pairs(
    examples: list[tuple[int, dict]], tok: Tokens, settings: EncodingSettings
) -> list[EncodedPair]:
    """Encode preference or KTO rows (row number, canonical row) for training."""
    inner = side_settings(settings)
    flat, owners = [], []
    for row, data in examples:
        for side, sft in side_rows(data):
            flat.append((row, sft))
            owners.append(side)
    encoded = encode_examples(flat, tok, inner)
    out, at = [], 0
    for row, data in examples:
        kto = "completion" in data
        n = 1 if kto else 2
        parts = {owners[at + k]: _split(encoded[at + k]) for k in range(n)}
        at += n
        out.append(_pair(row, data, parts, kto, settings.max_length, tok))
    return out


def _pair(row, data, parts, kto, max_length, tok) -> EncodedPair:
    names = list(parts)
    prompts = [parts[s][0] for s in names]
    reason = next((parts[s][2] for s in names if parts[s][2]), None)
    prompt, differs = prompts[0], False
    sides = {s: parts[s][1] for s in names}
    if len(prompts) == 2 and prompts[0] != prompts[1]:
        # The prompt rendered differently beside the two replies: like trl, train from
        # where they part, and say so (the model then learns a context it never sees).
        differs = True
        n = 0
        while n < min(map(len, prompts)) and prompts[0][n] == prompts[1][n]:
            n += 1
        prompt = prompts[0][:n]
        sides = {s: parts[s][0][n:] + parts[s][1] for s in names}
    pair = EncodedPair(
        row,
        prompt,
        sides[names[0]],
        [] if kto else sides[names[1]],
        label=bool(data["label"]) if kto else None,
        full={s: len(ids) for s, ids in sides.items()},
        prompt_differs=differs,
        reason=reason,
    )
    room = max_length - len(prompt)
    if room <= 0:
        pair.reason = pair.reason or "no_room"
        return pair
    for side, ids in list(pair.sides().items()):
        if len(ids) > room:
            pair.truncated[side] = len(ids) - room
            pair.end_dropped[side] = any(i in tok.end_ids for i in ids[room:])
            if side in ("chosen", "completion"):
                pair.chosen_ids = ids[:room]
            else:
                pair.rejected_ids = ids[:room]
    return pair


class PairChecker:
    """The checks of preference pairs, row by row, in bounded memory (counts and the first
    `ROW_SAMPLE` row numbers of each finding)."""

    def __init__(self, tok: Tokens) -> None:
        self.tok = tok
        self.rows = 0
        self.hits: dict[str, list[int]] = {code: [] for code in PAIR_CODES}
        self.counts: dict[str, int] = dict.fromkeys(PAIR_CODES, 0)
        self.params: dict[str, dict] = {code: {} for code in PAIR_CODES}
        self.labels = [0, 0]  # KTO: undesirable, desirable
        # What would train: the pairs kept, their tokens (the prompt once per side) and
        # their trained tokens; the pairs left out by reason; every pair's full length.
        self.kept = self.tokens = self.trained = 0
        self.dropped: dict[str, int] = {}
        self.lengths: list[int] = []

    def _hit(self, code: str, row: int, **params) -> None:
        self.counts[code] += 1
        if len(self.hits[code]) < ROW_SAMPLE:
            self.hits[code].append(row)
        for key, value in params.items():
            bucket = self.params[code].setdefault(key, {})
            bucket[value] = bucket.get(value, 0) + 1

    def check(self, pair: EncodedPair) -> None:
        self.rows += 1
        self.lengths.append(len(pair.prompt_ids) + max(pair.full.values(), default=0))
        if pair.reason:
            self.dropped[pair.reason] = self.dropped.get(pair.reason, 0) + 1
        else:
            self.kept += 1
            self.tokens += pair.tokens()
            self.trained += sum(len(ids) for ids in pair.sides().values())
        row = pair.row + 1
        if pair.kto:
            self.labels[int(bool(pair.label))] += 1
        if pair.reason and pair.reason != "no_room":
            self._hit("pair_not_trained", row, reason=pair.reason)
            return
        if pair.reason == "no_room":
            self._hit("pair_no_room", row)
            return
        ends = self.tok.end_ids
        for side, ids in pair.sides().items():
            if side in pair.truncated:
                self._hit("pair_truncated", row, side=side)
            elif not ids or ids[-1] not in ends:
                self._hit("pair_eos_missing", row, side=side)
        if not pair.kto and pair.chosen_ids == pair.rejected_ids:
            self._hit("pair_identical", row)
        if pair.prompt_differs:
            self._hit("pair_prompt_differs", row)

    def findings(self) -> list[Diagnostic]:
        found = []
        if self.labels[0] and self.labels[1]:
            share = self.labels[1] / sum(self.labels)
            if not 0.25 <= share <= 0.75:
                self.counts["kto_unbalanced"] = sum(self.labels)
                self.params["kto_unbalanced"] = {
                    "desirable": self.labels[1],
                    "undesirable": self.labels[0],
                }
        elif any(self.labels):
            self.counts["kto_unbalanced"] = sum(self.labels)
            self.params["kto_unbalanced"] = {
                "desirable": self.labels[1],
                "undesirable": self.labels[0],
            }
        for code, severity in PAIR_CODES.items():
            n = self.counts[code]
            if not n:
                continue
            if code == "pair_no_room" and n >= self.rows:
                severity = ERROR
            params = {
                key: ", ".join(f"{k} ({v})" for k, v in sorted(value.items()))
                if isinstance(value, dict)
                else value
                for key, value in self.params[code].items()
            }
            params["share"] = round(n / max(self.rows, 1), 4)
            found.append(Diagnostic(code, severity, n, sorted(self.hits[code]), params))
        found.sort(key=lambda f: (SEVERITY_ORDER[f.severity], -f.count))
        return found


# --- the Inspect tab's view of pairs ------------------------------------------------------
def preference_rows(ws, specs: list[str]):
    """(row number, canonical row) of preference or KTO versions, streamed."""
    from studio.data.records import dataset_file, iter_records
    from studio.data.registry import find_version

    n = 0
    for spec in specs:
        for record in iter_records(dataset_file(find_version(ws, spec))):
            if record.format not in ("preference", "kto"):
                raise InputError(
                    f"{spec} line {record.line}: a {record.format} row among preference rows; "
                    "check preference data on its own",
                    code="mixed_preference",
                )
            yield n, record.data
            n += 1


def scan_pairs(ws, specs: list[str], target, settings: EncodingSettings, *, batch: int = 512):
    """The label inspector's report for preference versions of the workspace."""
    return scan_pair_rows(preference_rows(ws, specs), target, settings, batch=batch)


def checked_pairs(examples, tok: Tokens, settings: EncodingSettings, checker: PairChecker,
                  *, batch: int = 512):  # fmt: skip
    """Encode preference rows (row number, canonical row) a batch at a time, check each
    pair with `checker`, and yield it (the Inspect tab's scan and the run's data both read
    pairs this way)."""
    pending: list = []
    for item in examples:
        pending.append(item)
        if len(pending) >= batch:
            yield from _checked(pending, tok, settings, checker)
            pending = []
    yield from _checked(pending, tok, settings, checker)


def _checked(examples, tok, settings, checker):
    for pair in encode_pairs(examples, tok, settings) if examples else []:
        checker.check(pair)
        yield pair


def scan_pair_rows(examples, target, settings: EncodingSettings, *, batch: int = 512):
    """The label inspector's report for preference rows (row number, canonical row): every
    pair encoded and checked, in bounded memory (a batch of rows at a time)."""
    import time

    import numpy as np

    from studio.labels.encode import resolve_tokens
    from studio.labels.inspect import ScanReport

    started = time.perf_counter()
    tok = resolve_tokens(target.tokenizer, settings)
    checker = PairChecker(tok)
    for _ in checked_pairs(examples, tok, settings, checker, batch=batch):
        pass
    return ScanReport(
        rows=checker.rows,
        diagnostics=checker.findings(),
        settings=settings.to_dict(),
        model=target.name,
        seconds=time.perf_counter() - started,
        tokens=checker.tokens,
        trained_tokens=checker.trained,
        truncated_rows=checker.counts["pair_truncated"] + checker.counts["pair_no_room"],
        sequences=checker.kept,
        lengths=np.asarray(checker.lengths, np.int64),
    )


@dataclass
class _Shown:
    """A token run as the token view draws it (`view.render_sequence`)."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segments: list = field(default_factory=list)
    attention_mask: list | None = None


def shown_parts(pair: EncodedPair) -> list[tuple[str, _Shown]]:
    """The prompt once (not trained) and each reply (every token trained), for the view."""
    from studio.labels.encode import Segment

    parts = [("prompt", pair.prompt_ids, [IGNORE] * len(pair.prompt_ids))]
    parts += [(side, ids, list(ids)) for side, ids in pair.sides().items()]
    return [
        (name, _Shown(list(ids), labels, list(range(len(ids))), [Segment(0, 0, len(ids))]))
        for name, ids, labels in parts
    ]
