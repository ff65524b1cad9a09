"""Find the mistakes that silently ruin a fine-tune, in the batches the trainer would see.

Every diagnostic has a stable code, a severity and the rows it affects; its explanation and
its fix live in `studio/locales/inspect.yaml` (`diag_<code>` and `fix_<code>`) in Japanese
and English.

The checks come in two halves. `RowChecker` reads each row's own text beside its encoding;
it runs where rows are encoded (in the token store's workers) and leaves one flag word per
row. `SequenceChecker` reads the token arrays of the sequences the trainer will see, as the
collator leaves them, many thousands of tokens per numpy operation, so a corpus of billions
of tokens is checked whole. One row in the token view goes through exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.labels.encode import IGNORE, Encoded, EncodingSettings, Tokens, end_strings
from studio.labels.spans import prompt_ids

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# Code -> severity. Errors block a run unless the user overrides.
CODES = {
    "template_not_marked": ERROR,
    "no_trained_tokens": WARNING,  # ERROR when no row at all carries loss
    "eos_as_text": ERROR,
    "eos_masked": ERROR,
    "eos_missing": ERROR,  # WARNING for continued pre-training
    "stop_token_mismatch": ERROR,
    "double_bos": WARNING,
    "response_truncated": WARNING,
    "prompt_trained": WARNING,
    "template_drift": WARNING,
    "packing_cross_contamination": WARNING,
    "special_token_in_text": WARNING,
    "foreign_end_marker": WARNING,
    "leading_space_trained": WARNING,
    "constant_trained_prefix": INFO,
    "pad_is_eos": INFO,
    "spans_by_rendering": INFO,
}

# End-of-sequence strings of common model families. Found as literal text in the data, they
# are judged by what this tokenizer makes of them: the model's own end marker cut into
# ordinary pieces is one it will learn to print and never stop on (the `</s>` story); a
# string the tokenizer turns into a control token is a control token typed by hand; another
# family's end marker that stays ordinary text is just text, suspicious only where it ends
# a reply.
KNOWN_END_STRINGS = (
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "<eos>",
)
DRIFT_SAMPLE = 64  # rows per scan whose training and inference renderings are compared
PREFIX_MIN_SPANS = 8
PREFIX_SPANS = 100_000  # trained spans whose first tokens are compared
ROW_SAMPLE = 200  # rows kept per code for the report (the count is exact)
# The codes decided from a row's own text, one bit each in the row's flag word.
ROW_CODES = (
    "eos_as_text",
    "special_token_in_text",
    "response_truncated",
    "prompt_trained",
    "template_not_marked",
    "spans_by_rendering",
    "foreign_end_marker",
    "leading_space_trained",
)
BIT = {code: 1 << i for i, code in enumerate(ROW_CODES)}
# The codes decided from the sequences' tokens.
SEQUENCE_CODES = (
    "double_bos",
    "eos_masked",
    "eos_missing",
    "stop_token_mismatch",
    "packing_cross_contamination",
)


@dataclass
class Diagnostic:
    code: str
    severity: str
    count: int
    rows: list[int]
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "count": self.count,
            "rows": self.rows,
            "params": self.params,
        }


# The parts of a row the model learns to write.
WRITTEN = ("assistant", "completion", "text")


def contents(data: dict, fmt: str) -> list[tuple[str, str]]:
    """(role, text) pairs a row's author wrote; templates add the rest."""
    if fmt == "text":
        return [("text", data["text"])]
    if fmt == "prompt_completion":
        return [("prompt", data["prompt"]), ("completion", data["completion"])]
    return [(m["role"], m["content"]) for m in data["messages"]]


def _first(params: dict, **values) -> None:
    """Keep what the first row found: the message names an example, not the last one."""
    for key, value in values.items():
        params.setdefault(key, value)


def judge_literals(tok: Tokens) -> dict[str, str]:
    """Every known end string, and this model's own BOS/EOS/end-of-turn strings, judged by
    the ids this tokenizer gives them as they would appear in a row (its own settings:
    split_special_tokens, legacy SentencePiece behaviour):

    - `split`: the model's own end marker cut into ordinary pieces (eos_as_text);
    - `special`: turned into one control token (special_token_in_text);
    - `foreign`: another family's end marker, ordinary text here (foreign_end_marker where
      it ends a reply).

    A BOS string that stays ordinary text (`<s>` is also HTML) is not judged at all."""
    tokenizer = tok.tokenizer
    own = set(end_strings(tokenizer, tok.eot_ids))  # this model's own EOS and end-of-turn
    specials = set(tok.special_ids) | set(tokenizer.get_added_vocab().values())
    bos = tokenizer.bos_token
    judged = {}
    for literal in sorted({*KNOWN_END_STRINGS, *own, *([bos] if bos else [])}):
        ids = tokenizer(literal, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] in specials:
            judged[literal] = "special"
        elif literal in own:
            judged[literal] = "split"
        elif literal != bos:
            judged[literal] = "foreign"
    return judged


class RowChecker:
    """The checks that need a row's text: typed end markers, truncated answers, prompts
    that carry loss, templates without generation markers. Collects one flag word per row
    and the details the messages show (the first example of each, every literal found,
    the reasons rows carry no loss), and keeps the first chat rows for the drift check."""

    def __init__(self, tok: Tokens, settings: EncodingSettings, drift_budget: int = 0) -> None:
        self.tok = tok
        self.settings = settings
        self.judged = judge_literals(tok)
        self._lone_space: dict[int, bool] = {}
        self.flags: list[int] = []
        self.params: dict[str, dict] = {code: {} for code in ROW_CODES}
        self.literals: dict[str, set[str]] = {}
        self.reasons: dict[str, int] = {}
        self.drift_budget = drift_budget
        self.drift_sample: list[tuple[int, dict]] = []

    def check(self, position: int, data: dict, enc: Encoded) -> None:
        """Check the row at `position` (its place among the rows encoded)."""
        settings, bits = self.settings, 0

        def flag(code, **params):
            nonlocal bits
            bits |= BIT[code]
            _first(self.params[code], **params)

        parts = contents(data, enc.format)
        for role, text in parts:
            for literal, kind in self.judged.items():
                if literal not in text:
                    continue
                if kind == "split":
                    code = "eos_as_text"
                elif kind == "special" and enc.format != "text":
                    code = "special_token_in_text"
                elif kind == "foreign" and role in WRITTEN and text.rstrip().endswith(literal):
                    code = "foreign_end_marker"
                else:
                    continue
                flag(code, literal=literal, role=role)
                self.literals.setdefault(code, set()).add(literal)
        if enc.trained_dropped or enc.end_dropped:
            flag("response_truncated", max_length=settings.max_length)
        if enc.format != "messages" and (token := self._leading_space(enc)) is not None:
            flag("leading_space_trained", token=token)
        answers_only = settings.stage == "sft" and settings.loss != "all"
        if enc.format == "text" and answers_only and not settings.response_template:
            # Plain text has no prompt/answer boundary: every token carries loss.
            flag("prompt_trained", reason="text_rows", role="text")
        if enc.format == "messages" and enc.loss == "assistant":
            if enc.spans == "none":
                flag("template_not_marked")
            elif enc.spans in ("rendered", "trl"):
                flag("spans_by_rendering", method=enc.spans)
            if enc.spans != "none" and (role := self._prompt_in_trained(parts, enc)):
                flag("prompt_trained", reason="prompt_in_trained", role=role)
            left_cut = enc.truncated and settings.truncation_side == "left"
            start = int(data.get("completion_start") or 0)
            has_answer = any(m["role"] == "assistant" for m in data["messages"][start:])
            if len(self.drift_sample) < self.drift_budget and has_answer and not left_cut:
                self.drift_sample.append((position, data))
        if enc.reason:
            self.reasons[enc.reason] = self.reasons.get(enc.reason, 0) + 1
        self.flags.append(bits)

    def _leading_space(self, enc: Encoded) -> str | None:
        """The lone space token a completion's trained part starts with, if it does: the
        model learns to open its answers with a space the prompt should hold. (In chat rows
        the template decides what the model writes, so a template's own space before a
        reply, as Llama-2's, is what the model must write.)"""
        if enc.labels[:1] != [IGNORE]:
            return None  # trained from the first token: no seam
        first = next((t for t in enc.labels if t != IGNORE), None)
        if first is None:
            return None
        if first not in self._lone_space:
            tokenizer = self.tok.tokenizer
            piece = tokenizer.convert_ids_to_tokens(first)
            self._lone_space[first] = first not in self.tok.special_ids and (
                piece in ("▁", "Ġ", " ") or tokenizer.decode([first]) == " "
            )
        return self.tok.tokenizer.convert_ids_to_tokens(first) if self._lone_space[first] else None

    def _prompt_in_trained(self, parts, enc: Encoded) -> str | None:
        trained = [i for i, label in zip(enc.input_ids, enc.labels, strict=True) if label != -100]
        if not trained:
            return None
        text = self.tok.tokenizer.decode(trained)
        answers = [content for role, content in parts if role == "assistant"]
        for role, content in parts:
            content = content.strip()
            # More often than the replies themselves quote it (an echoed greeting is fine).
            quoted = sum(answer.count(content) for answer in answers)
            if role != "assistant" and len(content) >= 4 and text.count(content) > quoted:
                return role
        return None

    def findings(self) -> tuple[np.ndarray, dict]:
        """(flag word per row, the details as JSON-able data)."""
        details = {
            "params": {code: p for code, p in self.params.items() if p},
            "literals": {code: sorted(found) for code, found in self.literals.items()},
            "reasons": self.reasons,
            "drift_sample": [[pos, data] for pos, data in self.drift_sample],
        }
        return np.asarray(self.flags, np.uint16), details


def merge_findings(parts: list[dict], drift_limit: int = 2 * DRIFT_SAMPLE) -> dict:
    """The details of consecutive chunks of rows as if they had been checked in one go."""
    merged = {"params": {}, "literals": {}, "reasons": {}, "drift_sample": []}
    for part in parts:
        for code, params in part["params"].items():
            _first(merged["params"].setdefault(code, {}), **params)
        for code, found in part["literals"].items():
            merged["literals"][code] = sorted({*merged["literals"].get(code, []), *found})
        for reason, count in part["reasons"].items():
            merged["reasons"][reason] = merged["reasons"].get(reason, 0) + count
        room = drift_limit - len(merged["drift_sample"])
        merged["drift_sample"] += part["drift_sample"][: max(room, 0)]
    return merged


def drifts(tok: Tokens, inference_template: str, data: dict, row_tokens, truncated: int) -> bool:
    """Whether the training rendering of a chat row (`row_tokens`: its ids and labels)
    teaches its first answer after other tokens than the inference prompt the model will
    get. What both renderings share (a default system prompt, a date header) is not drift,
    nor are trained tokens the prompt also holds (a training template that trains the
    newline after the assistant header)."""
    ids, labels = row_tokens
    messages = data["messages"]
    start = int(data.get("completion_start") or 0)
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant" and i >= start)
    prompt = prompt_ids(tok.tokenizer, inference_template, messages[:first])
    trained_at = next((i for i, lab in enumerate(labels) if lab != IGNORE), None)
    if trained_at is None and truncated and len(ids) < len(prompt):
        return list(ids) != prompt[: len(ids)]  # truncation cut the prompt: reported as truncation
    if list(ids[: len(prompt)]) != prompt:
        return True
    return trained_at is not None and trained_at > len(prompt)


class SequenceChecker:
    """The checks on the sequences the trainer sees, as the collator leaves them: doubled
    BOS, masked or missing end markers, end markers generation does not stop on, rows that
    see each other through packing; and how many tokens of each row carry loss."""

    def __init__(
        self,
        tok: Tokens,
        settings: EncodingSettings,
        generation_eos_ids: list[int] | None,
        n_rows: int,
        end_dropped,
    ) -> None:
        self.tok = tok
        self.settings = settings
        self.stop_ids = set(generation_eos_ids or ([tok.eos_id] if tok.eos_id is not None else []))
        self.end_dropped = end_dropped  # per row: the end of its answer was cut away
        self.hits = {code: np.zeros(n_rows, bool) for code in SEQUENCE_CODES}
        self.params: dict[str, dict] = {code: {} for code in SEQUENCE_CODES}
        self.trained = np.zeros(n_rows, np.int64)  # tokens carrying loss, per row
        self.seen = np.zeros(n_rows, bool)  # rows that are in some sequence
        self.first_tokens: list[tuple[int, ...]] = []
        self._whitespace: dict[int, bool] = {}
        self.end_ids = np.fromiter(sorted(tok.end_ids), np.int64)
        self.plain_end_ids = np.fromiter(
            sorted(i for i in tok.end_ids if not self._is_whitespace(i)), np.int64
        )
        self.stop_array = np.fromiter(sorted(self.stop_ids), np.int64)

    def _is_whitespace(self, token_id: int) -> bool:
        # Decided per token as spans end, not by decoding the vocabulary up front: the token
        # view builds a checker for every click, and real vocabularies are 100k+ tokens.
        if token_id not in self._whitespace:
            tokenizer = self.tok.tokenizer
            piece = tokenizer.convert_ids_to_tokens(token_id)
            text = tokenizer.decode([token_id])
            self._whitespace[token_id] = (
                token_id not in self.tok.special_ids
                and piece is not None
                and len(piece) <= 4
                and bool(text)
                and not text.strip()
            )
        return self._whitespace[token_id]

    def _token(self, token_id: int) -> str:
        return self.tok.tokenizer.convert_ids_to_tokens(int(token_id))

    def observe(self, group) -> None:
        """Check a `studio.labels.packing.Group` of whole sequences."""
        tok, settings, p = self.tok, self.settings, group.pieces
        ids, rows, start, end = group.ids, p.row, group.start, group.end
        # The collator: the first token of a sequence has nothing before it, and with
        # mask_pad_token_id every pad id is masked.
        trained = group.trained & (group.pos != 0)
        if settings.mask_pad_token_id:
            trained &= ids != tok.pad_id
        counted = np.concatenate([[0], np.cumsum(trained)])
        np.add.at(self.trained, rows, counted[end] - counted[start])
        self.seen[rows] = True
        if settings.packing == "concatenated":  # rows share the attention of their block
            seq, count = np.unique(p.seq, return_counts=True)
            self.hits["packing_cross_contamination"][rows[np.isin(p.seq, seq[count > 1])]] = True
        if tok.bos_id is not None:
            head = start[(p.offset == 0) & (p.length >= 2)]
            double = (ids[head] == tok.bos_id) & (ids[head + 1] == tok.bos_id)
            self.hits["double_bos"][rows[(p.offset == 0) & (p.length >= 2)][double]] = True
        is_end = np.isin(ids, self.end_ids)
        masked = np.flatnonzero(group.trained & ~trained & is_end & (group.pos != 0))
        masked_pieces = np.unique(np.searchsorted(start, masked, "right") - 1)
        if len(masked):
            self.hits["eos_masked"][rows[masked_pieces]] = True
            _first(self.params["eos_masked"], token=self._token(ids[masked[0]]))
        self._check_spans(group, trained, masked_pieces)

    def _check_spans(self, group, trained, masked_pieces) -> None:
        """Every trained span must end on an end marker that generation stops on. A span
        whose end marker was masked is reported once, as eos_masked."""
        p, ids, start, end = group.pieces, group.ids, group.start, group.end
        span_start, span_end = runs_within(trained, start, len(ids))
        owner = np.searchsorted(start, span_start, "right") - 1
        keep = ~np.isin(owner, masked_pieces)
        span_start, span_end, owner = span_start[keep], span_end[keep], owner[keep]
        room = PREFIX_SPANS - len(self.first_tokens)
        if room > 0 and len(owner):
            pieces, first = np.unique(owner, return_index=True)
            first = first[p.offset[pieces] == 0][:room]
            for a, piece in zip(span_start[first].tolist(), owner[first].tolist(), strict=True):
                self.first_tokens.append(tuple(ids[a : min(a + 4, end[piece])].tolist()))
        # A span reaching the end of a piece whose row goes on in the next block is not over.
        ongoing = (span_end == end[owner]) & ~p.last[owner]
        span_start, span_end, owner = span_start[~ongoing], span_end[~ongoing], owner[~ongoing]
        final = ids[span_end - 1]
        plain = np.isin(final, self.plain_end_ids)
        found = {}  # code -> (span index, row, params) of the first span found
        wrong_stop = np.flatnonzero(plain & ~np.isin(final, self.stop_array))
        if len(wrong_stop):
            self.hits["stop_token_mismatch"][p.row[owner[wrong_stop]]] = True
            k = int(wrong_stop[0])
            found["stop_token_mismatch"] = (
                k,
                {"token": self._token(final[k]), "id": int(final[k])},
            )
        for k in np.flatnonzero(~plain).tolist():
            a, last = int(span_start[k]), int(span_end[k]) - 1
            while last > a and self._is_whitespace(int(ids[last])):
                last -= 1
            token, row = int(ids[last]), int(p.row[owner[k]])
            if token not in self.tok.end_ids:
                if self.end_dropped[row]:
                    continue  # reported as response_truncated
                self.hits["eos_missing"][row] = True
                ending = self.tok.tokenizer.decode(ids[max(a, last - 3) : last + 1].tolist())
                found.setdefault("eos_missing", (k, {"ending": ending}))
            elif token not in self.stop_ids:
                self.hits["stop_token_mismatch"][row] = True
                params = {"token": self._token(token), "id": token}
                if k < found.get("stop_token_mismatch", (k + 1,))[0]:
                    found["stop_token_mismatch"] = (k, params)
        for code, (_, params) in found.items():
            _first(self.params[code], **params)


def runs_within(mask: np.ndarray, starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in `mask` that stay inside the parts starting at `starts`."""
    from studio.tokens.rows import runs

    return runs(mask, np.concatenate([starts, [n]]))


def common_prefix(spans: list[tuple[int, ...]]) -> list[int]:
    common = list(spans[0])
    for span in spans[1:]:
        n = 0
        while n < min(len(common), len(span)) and common[n] == span[n]:
            n += 1
        common = common[:n]
        if not common:
            break
    return common


def diagnose(
    tok: Tokens,
    settings: EncodingSettings,
    flags: np.ndarray,
    details: dict,
    sequences: SequenceChecker,
    numbers,
    drifted: list[int],
    drift_checked: int,
) -> list[Diagnostic]:
    """The diagnostics of a scan: the row checks' flags and details, the sequence checks,
    the drift sample, and what holds for the data as a whole. `numbers` maps row positions
    to the row numbers shown to the user."""
    n_rows = len(flags)
    hit = {code: (flags & bit) != 0 for code, bit in BIT.items()}
    hit.update(sequences.hits)
    params = {code: dict(p) for code, p in details["params"].items()}
    for code, p in sequences.params.items():
        params.setdefault(code, {}).update(p)
    hit["template_drift"] = np.zeros(n_rows, bool)
    hit["template_drift"][drifted] = True
    params.setdefault("template_drift", {})["checked"] = drift_checked
    seen = sequences.seen
    if tok.pad_id in tok.end_ids and not settings.mask_pad_token_id:
        params.setdefault("pad_is_eos", {})["token"] = tok.tokenizer.convert_ids_to_tokens(
            tok.pad_id
        )
        hit["pad_is_eos"] = seen
    hit["no_trained_tokens"] = seen & (sequences.trained == 0)
    if details["reasons"]:
        params.setdefault("no_trained_tokens", {})["reasons"] = dict(details["reasons"])
    if len(sequences.first_tokens) >= PREFIX_MIN_SPANS:
        common = common_prefix(sequences.first_tokens)
        # A space every reply opens with (SentencePiece's `▁` before Japanese text after
        # `[/INST]`) is how the template spells the reply, not trained boilerplate.
        if common and tok.tokenizer.decode(common).strip():
            params.setdefault("constant_trained_prefix", {})["prefix"] = tok.tokenizer.decode(
                common
            )
            hit["constant_trained_prefix"] = seen
    for code, found in details["literals"].items():
        params.setdefault(code, {})["literals"] = list(found)
    found = []
    for code, severity in CODES.items():
        rows = np.flatnonzero(hit.get(code, ()))
        if not len(rows):
            continue
        if code == "no_trained_tokens" and len(rows) >= int(seen.sum()):
            severity = ERROR
        if code == "eos_missing" and settings.stage == "pretrain":
            severity = WARNING
        shown = {k: v for k, v in params.get(code, {}).items() if v is not None}
        shown["share"] = round(len(rows) / max(n_rows, 1), 4)
        listed = np.sort(np.asarray(numbers(rows)))[:ROW_SAMPLE].tolist()
        found.append(Diagnostic(code, severity, len(rows), listed, shown))
    found.sort(key=lambda d: (SEVERITY_ORDER[d.severity], -d.count))
    return found


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == ERROR for d in diagnostics)


def explain(diagnostic: Diagnostic, lang: str = "en") -> tuple[str, str]:
    """The plain explanation and the concrete fix of a diagnostic, in `lang`."""
    from studio.i18n import t

    params = dict(diagnostic.params)
    reasons = params.get("reasons")
    if isinstance(reasons, dict):
        params["reasons"] = ", ".join(
            f"{t(f'inspect.reason_{k}', lang)} ({v})" for k, v in sorted(reasons.items())
        )
    elif diagnostic.code == "no_trained_tokens":
        params["reasons"] = "?"
    params.setdefault("role", "")
    message = t(f"inspect.diag_{diagnostic.code}", lang, **params)
    fix = t(f"inspect.fix_{diagnostic.code}", lang, **params)
    return message, fix
