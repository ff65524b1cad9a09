"""Find the mistakes that silently ruin a fine-tune, in the batches the trainer would see.

Every diagnostic has a stable code, a severity and the rows it affects; its explanation and
its fix live in `studio/locales/inspect.yaml` (`diag_<code>` and `fix_<code>`) in Japanese
and English. `Checker` looks at post-collator batches chunk by chunk, so a whole dataset is
scanned in bounded memory and a single row is checked by exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.labels.encode import (
    IGNORE,
    Encoded,
    EncodingSettings,
    Sequence,
    Tokens,
)
from studio.models.info import apply_chat_template, has_generation_markers

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
    "constant_trained_prefix": INFO,
    "pad_is_eos": INFO,
}

# End-of-sequence strings of common model families. Found as literal text in the data,
# they are either a control token typed by hand or, when this tokenizer does not know them,
# a string of ordinary pieces the model will learn to print (the `</s>` story).
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
ROW_SAMPLE = 200  # rows kept per code for the report (the count is exact)


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


def _trained_spans(labels: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, label in enumerate(labels):
        if label != IGNORE and start is None:
            start = i
        elif label == IGNORE and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(labels)))
    return spans


def contents(data: dict, fmt: str) -> list[tuple[str, str]]:
    """(role, text) pairs a row's author wrote; templates add the rest."""
    if fmt == "text":
        return [("text", data["text"])]
    if fmt == "prompt_completion":
        return [("prompt", data["prompt"]), ("completion", data["completion"])]
    return [(m["role"], m["content"]) for m in data["messages"]]


class Checker:
    """Accumulates diagnostics over chunks of (examples, encodings, sequences, batch)."""

    def __init__(
        self,
        tok: Tokens,
        settings: EncodingSettings,
        generation_eos_ids: list[int] | None = None,
        *,
        inference_template: str | None = None,
    ) -> None:
        self.tok = tok
        self.settings = settings
        self.stop_ids = set(generation_eos_ids or ([tok.eos_id] if tok.eos_id is not None else []))
        # The template the model will be prompted with after training: its own.
        self.inference_template = inference_template
        self.rows: dict[str, set[int]] = {code: set() for code in CODES}
        self.params: dict[str, dict] = {code: {} for code in CODES}
        self.rows_seen = 0
        self.trained_by_row: dict[int, int] = {}
        self.first_tokens: list[tuple[int, ...]] = []
        self.drift_checked = 0
        self.literals: dict[str, set[str]] = {}  # every typed marker found, per code
        self.by_row: dict[int, Encoded] = {}
        self._whitespace: dict[int, bool] = {}  # token id -> decodes to whitespace only
        special = set(tok.tokenizer.all_special_tokens)
        candidates = {*KNOWN_END_STRINGS, *(t for t in [tok.tokenizer.eos_token] if t)}
        self.literal_as_text = sorted(s for s in candidates if s not in special)
        self.literal_special = sorted(s for s in candidates if s in special)

    def _is_whitespace(self, token_id: int) -> bool:
        # Decided per token as spans end, not by decoding the vocabulary up front: the token
        # view builds a Checker for every click, and real vocabularies are 100k+ tokens.
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

    def _flag(self, code: str, row: int, **params) -> None:
        self.rows[code].add(row)
        for key, value in params.items():
            self.params[code].setdefault(key, value)

    # --- per chunk -------------------------------------------------------------------

    def observe(
        self,
        examples: list[tuple[int, dict]],
        encoded: list[Encoded],
        sequences: list[Sequence],
        batch: dict,
    ) -> None:
        if encoded:  # the first batch of a chunk brings the chunk's encodings
            self.by_row = {e.row: e for e in encoded}
        self.rows_seen += len(encoded)
        for (row, data), enc in zip(examples, encoded, strict=True):
            self._check_row(row, data, enc)
        labels = batch["labels"].tolist()
        ids = batch["input_ids"].tolist()
        positions = batch["position_ids"].tolist()
        has_attention = "attention_mask" in batch
        for k, seq in enumerate(sequences):
            self._check_sequence(seq, ids[k], labels[k], positions[k], has_attention)

    def _check_row(self, row: int, data: dict, enc: Encoded) -> None:
        tok, settings = self.tok, self.settings
        parts = contents(data, enc.format)
        for role, text in parts:
            for literal in self.literal_as_text:
                if literal in text:
                    self._flag("eos_as_text", row, literal=literal, role=role)
                    self.literals.setdefault("eos_as_text", set()).add(literal)
            if enc.format != "text":
                for literal in self.literal_special:
                    if literal in text:
                        self._flag("special_token_in_text", row, literal=literal, role=role)
                        self.literals.setdefault("special_token_in_text", set()).add(literal)
        if enc.trained_dropped or enc.end_dropped:
            self._flag("response_truncated", row, max_length=settings.max_length)
        answers_only = settings.stage == "sft" and settings.loss != "all"
        if enc.format == "text" and answers_only and not settings.response_template:
            # Plain text has no prompt/answer boundary: every token carries loss.
            self._flag("prompt_trained", row, reason="text_rows", role="text")
        if enc.format == "messages" and enc.loss == "assistant":
            if not has_generation_markers(tok.template):
                self._flag("template_not_marked", row)
            else:
                self._check_prompt_in_trained(row, parts, enc)
            if self.drift_checked < DRIFT_SAMPLE and self.inference_template:
                self._check_drift(row, data, enc)
        if enc.reason:
            self.params["no_trained_tokens"].setdefault("reasons", {})
            reasons = self.params["no_trained_tokens"]["reasons"]
            reasons[enc.reason] = reasons.get(enc.reason, 0) + 1

    def _check_prompt_in_trained(self, row, parts, enc: Encoded) -> None:
        trained = [i for i, label in zip(enc.input_ids, enc.labels, strict=True) if label != -100]
        if not trained:
            return
        text = self.tok.tokenizer.decode(trained)
        answers = [content for role, content in parts if role == "assistant"]
        for role, content in parts:
            content = content.strip()
            # More often than the replies themselves quote it (an echoed greeting is fine).
            quoted = sum(answer.count(content) for answer in answers)
            if role != "assistant" and len(content) >= 4 and text.count(content) > quoted:
                self._flag("prompt_trained", row, reason="prompt_in_trained", role=role)
                return

    def _check_drift(self, row: int, data: dict, enc: Encoded) -> None:
        messages = data["messages"]
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
        if first is None or enc.truncated and self.settings.truncation_side == "left":
            return
        self.drift_checked += 1
        prompt = apply_chat_template(
            self.tok.tokenizer,
            messages[:first],
            chat_template=self.inference_template,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        prompt = list(prompt)
        trained_at = next((i for i, lab in enumerate(enc.labels) if lab != IGNORE), None)
        head = enc.input_ids[: len(prompt)] if trained_at is None else enc.input_ids[:trained_at]
        if trained_at is None and enc.truncated:
            prompt = prompt[: len(head)]  # truncation cut the prompt: reported as truncation
        if head != prompt:
            self._flag("template_drift", row)

    def _check_sequence(self, seq, ids, labels, positions, has_attention) -> None:
        tok = self.tok
        rows_in_seq = {s.row for s in seq.segments}
        if len(rows_in_seq) > 1:
            isolated = not has_attention and all(positions[s.start] == 0 for s in seq.segments)
            if not isolated:
                for row in rows_in_seq:
                    self._flag("packing_cross_contamination", row)
        for seg in seq.segments:
            seg_ids, seg_labels = ids[seg.start : seg.end], labels[seg.start : seg.end]
            pre_labels = seq.labels[seg.start : seg.end]
            self.trained_by_row[seg.row] = self.trained_by_row.get(seg.row, 0) + sum(
                1 for label in seg_labels if label != IGNORE
            )
            if seg.offset == 0 and tok.bos_id is not None and seg_ids[:2] == [tok.bos_id] * 2:
                self._flag("double_bos", seg.row)
            masked_ends = [
                i
                for i, (pre, post) in enumerate(zip(pre_labels, seg_labels, strict=True))
                if pre != IGNORE and post == IGNORE and pre in tok.end_ids and seg.start + i > 0
            ]
            if masked_ends:
                token = tok.tokenizer.convert_ids_to_tokens(seg_ids[masked_ends[0]])
                self._flag("eos_masked", seg.row, token=token)
            # A span whose end token was masked is reported once, as eos_masked.
            if not masked_ends:
                self._check_spans(seg, seg_ids, seg_labels)

    def _check_spans(self, seg, seg_ids, seg_labels) -> None:
        tok = self.tok
        spans = _trained_spans(seg_labels)
        for n, (start, end) in enumerate(spans):
            if n == 0 and seg.offset == 0 and len(self.first_tokens) < 100_000:
                self.first_tokens.append(tuple(seg_ids[start : start + 4]))
            if end == len(seg_labels) and not seg.last:
                continue  # the row goes on in the next block
            last = end - 1
            while last > start and self._is_whitespace(seg_ids[last]):
                last -= 1
            final = seg_ids[last]
            enc = self.by_row.get(seg.row)
            if final not in tok.end_ids:
                if enc is not None and enc.end_dropped:
                    continue  # reported as response_truncated
                tail = tok.tokenizer.decode(seg_ids[max(start, last - 3) : last + 1])
                self._flag("eos_missing", seg.row, ending=tail)
            elif final not in self.stop_ids:
                token = tok.tokenizer.convert_ids_to_tokens(final)
                self._flag("stop_token_mismatch", seg.row, token=token, id=final)

    # --- result ----------------------------------------------------------------------

    def _global_checks(self) -> None:
        tok = self.tok
        if tok.pad_id in tok.end_ids and not self.settings.mask_pad_token_id:
            token = tok.tokenizer.convert_ids_to_tokens(tok.pad_id)
            self.params["pad_is_eos"]["token"] = token
            self.rows["pad_is_eos"].update(self.trained_by_row)
        for row, trained in self.trained_by_row.items():
            if trained == 0:
                self.rows["no_trained_tokens"].add(row)
        spans = self.first_tokens
        if len(spans) >= PREFIX_MIN_SPANS:
            common = list(spans[0])
            for span in spans[1:]:
                n = 0
                while n < min(len(common), len(span)) and common[n] == span[n]:
                    n += 1
                common = common[:n]
                if not common:
                    break
            if common:
                self.params["constant_trained_prefix"]["prefix"] = tok.tokenizer.decode(common)
                self.rows["constant_trained_prefix"].update(self.trained_by_row)
        self.params["template_drift"]["checked"] = self.drift_checked
        for code, found in self.literals.items():
            self.params[code]["literals"] = sorted(found)

    def diagnostics(self) -> list[Diagnostic]:
        self._global_checks()
        found = []
        for code, severity in CODES.items():
            rows = self.rows[code]
            if not rows:
                continue
            if code == "no_trained_tokens" and len(rows) >= len(self.trained_by_row):
                severity = ERROR
            if code == "eos_missing" and self.settings.stage == "pretrain":
                severity = WARNING
            params = {k: v for k, v in self.params[code].items() if v is not None}
            params["share"] = round(len(rows) / max(self.rows_seen, 1), 4)
            found.append(Diagnostic(code, severity, len(rows), sorted(rows)[:ROW_SAMPLE], params))
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
