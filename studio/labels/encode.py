"""Example -> token ids + labels, and batches of them: the ONE encoding path.

The label inspector shows and diagnoses the batches these functions produce, and the
trainer trains on exactly the same batches. Anything that changes which tokens carry loss
belongs here and nowhere else.

Flow: `encode_example` (one row -> `Encoded`), `pack` (rows -> sequences, with or without
packing), `Collator` (sequences -> a padded batch of tensors).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from studio.data.records import detect_format
from studio.errors import InputError
from studio.labels.spans import SpanPlan, assistant_tokens, plain_tokens, plan_for
from studio.models.info import END_OF_TURN_TOKENS
from studio.settings import as_bool, as_int

IGNORE = -100  # label of a token that carries no loss

STAGES = ("sft", "pretrain", "preference")
LOSSES = ("auto", "completion", "assistant", "all")
PACKINGS = ("off", "isolated", "concatenated")
SPECIAL_TOKEN_MODES = ("auto", "yes", "no")
TRUNCATION_SIDES = ("right", "left")
# Padding tokens some vocabularies reserve without naming them as their pad token.
PAD_TOKENS = ("<|finetune_right_pad_id|>", "<pad>", "<|pad|>")
MAX_LENGTH_LIMIT = 1 << 24  # tokens: longer than any model's context


@dataclass
class EncodingSettings:
    """How examples become training tokens. Every field is a choice a user can get wrong;
    the inspector shows the consequences before any training."""

    stage: str = "sft"
    """`sft` (prompt/completion or chat, loss on answers), `pretrain` (raw text, loss on all)
    or `preference` (pairs of a chosen and a rejected reply, or KTO's judged replies: the
    run config's `preference` section chooses the loss)."""
    loss: str = "auto"
    """Which tokens carry loss: `completion`, `assistant` (assistant turns), `all`, or `auto`
    (all for pretrain and plain text, completion for prompt/completion, assistant for chat)."""
    max_length: int = 1024
    """Longest sequence in tokens; longer rows are truncated (or split when concatenating)."""
    truncation_side: str = "right"
    """`right` cuts the end of a row, `left` cuts its beginning."""
    packing: str = "off"
    """`off`: one row per sequence, padded. `isolated`: several rows share a sequence, each
    with its own position ids so they cannot attend to each other. `concatenated`: rows are
    joined and cut into blocks of `max_length` (classic pre-training; rows see each other)."""
    chat_template: str | None = None
    """A Jinja chat template used instead of the tokenizer's own (None: the tokenizer's)."""
    add_eos: bool = True
    """Append the EOS token to text rows and completions that do not already end with it."""
    add_special_tokens: str = "auto"
    """Whether the tokenizer adds its own BOS/EOS: `auto` (yes for text and prompts, no for
    chat-template renderings, which already contain them), `yes` or `no`."""
    pad_token: str | None = None
    """Token used for padding (None: the tokenizer's pad token, else its unk token)."""
    response_template: str | None = None
    """For plain-text SFT rows: only the text after this marker carries loss."""
    mask_pad_token_id: bool = False
    """Also mask every token whose id equals the pad id, as transformers'
    `DataCollatorForLanguageModeling` does. Off by default: with pad == EOS it masks every
    real EOS. Exists so that what a plain transformers script would train on can be shown."""

    def validate(self) -> EncodingSettings:
        choices = {
            "stage": STAGES,
            "loss": LOSSES,
            "packing": PACKINGS,
            "add_special_tokens": SPECIAL_TOKEN_MODES,
            "truncation_side": TRUNCATION_SIDES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"{name} must be one of {', '.join(allowed)}",
                    code="not_a_choice",
                    field=name,
                    value=getattr(self, name),
                    choices=", ".join(allowed),
                )
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise InputError("max_length must be an integer of at least 8")
        if self.max_length > MAX_LENGTH_LIMIT:
            raise InputError(
                f"max_length must be at most {MAX_LENGTH_LIMIT:,} tokens (got {self.max_length:,})"
            )
        for name in ("chat_template", "pad_token", "response_template"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InputError(f"{name} must be a non-empty string or empty")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> EncodingSettings:
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"unknown encoding setting(s): {', '.join(unknown)}",
                code="unknown_fields",
                fields=", ".join(unknown),
                known=", ".join(sorted(known)),
            )
        for name in ("chat_template", "pad_token", "response_template"):
            if data.get(name) == "":
                data[name] = None
        # studio/settings.py: the same reading as run configs and cleaning pipelines
        if "max_length" in data:
            data["max_length"] = as_int(data["max_length"], "max_length (tokens)")
        for name in ("add_eos", "mask_pad_token_id"):
            if name in data:
                data[name] = as_bool(data[name], name)
        return cls(**data).validate()

    def replace(self, **changes) -> EncodingSettings:
        return dataclasses.replace(self, **changes).validate()


@dataclass
class Tokens:
    """What the encoder needs to know about a tokenizer, resolved once per settings."""

    tokenizer: object
    template: str | None
    bos_id: int | None
    eos_id: int | None
    pad_id: int
    eot_ids: list[int]  # end-of-turn ids the template uses (e.g. <|im_end|>)
    prefix_ids: list[int]  # what add_special_tokens=True puts before a text (usually BOS)
    suffix_ids: list[int]  # ... and after it (usually nothing; some tokenizers add EOS)
    special_ids: set[int]
    spans: SpanPlan = field(default_factory=lambda: SpanPlan("none"))
    """How the assistant's tokens are found in this template's renderings."""

    @property
    def end_ids(self) -> set[int]:
        """Ids that legitimately end a trained span."""
        return {i for i in [self.eos_id, *self.eot_ids] if i is not None}


def resolve_tokens(tokenizer, settings: EncodingSettings) -> Tokens:
    vocab = tokenizer.get_vocab()
    template = settings.chat_template or getattr(tokenizer, "chat_template", None)
    if settings.pad_token is not None:
        if settings.pad_token not in vocab:
            raise InputError(
                f"pad token {settings.pad_token!r} is not in the tokenizer's vocabulary"
            )
        pad_id = vocab[settings.pad_token]
    elif tokenizer.pad_token_id is not None:
        pad_id = tokenizer.pad_token_id
    elif tokenizer.unk_token_id is not None:
        pad_id = tokenizer.unk_token_id
    elif any(t in vocab for t in PAD_TOKENS):  # Llama-3.1's reserved padding token
        pad_id = vocab[next(t for t in PAD_TOKENS if t in vocab)]
    elif tokenizer.eos_token_id is not None:
        pad_id = tokenizer.eos_token_id
    else:
        raise InputError("the tokenizer has no pad, unk or EOS token to pad with; set pad_token")
    # Which end-of-turn markers the template writes (a template that never writes
    # <|im_end|> does not end turns with it, even if the vocabulary has it).
    eot_ids = [
        vocab[tok] for tok in END_OF_TURN_TOKENS if tok in vocab and template and tok in template
    ]
    probe = tokenizer("", add_special_tokens=True)["input_ids"]
    bos_id = tokenizer.bos_token_id
    prefix = probe[:1] if probe and bos_id is not None and probe[0] == bos_id else []
    suffix = probe[len(prefix) :]
    return Tokens(
        tokenizer=tokenizer,
        template=template,
        bos_id=bos_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=pad_id,
        eot_ids=eot_ids,
        prefix_ids=prefix,
        suffix_ids=suffix,
        special_ids=set(tokenizer.all_special_ids),
        spans=plan_for(tokenizer, template, end_strings(tokenizer, eot_ids)),
    )


def end_strings(tokenizer, eot_ids: list[int]) -> tuple[str, ...]:
    """The strings of the EOS and end-of-turn tokens, longest first."""
    ids = [i for i in [tokenizer.eos_token_id, *eot_ids] if i is not None]
    found = {tokenizer.convert_ids_to_tokens(int(i)) for i in ids}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def effective_loss(settings: EncodingSettings, fmt: str) -> str:
    if settings.stage == "pretrain":
        return "all"
    if settings.loss != "auto":
        return settings.loss
    if fmt == "prompt_completion":
        return "completion"
    if fmt == "messages":
        return "assistant"
    return "completion" if settings.response_template else "all"


@dataclass
class Encoded:
    """One row's tokens and labels, and what happened on the way."""

    row: int
    format: str
    input_ids: list[int]
    labels: list[int]
    loss: str
    full_length: int = 0  # tokens before truncation
    truncated: int = 0  # tokens removed by truncation
    trained_dropped: int = 0  # tokens that would have carried loss, removed by truncation
    end_dropped: bool = False  # the final EOS/end-of-turn of a trained span was cut away
    reason: str | None = None  # why no token carries loss, when the encoder knows
    spans: str | None = None  # chat rows: how the assistant's tokens were found (spans.METHODS)

    @property
    def trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _piece(data: dict, fmt: str, settings: EncodingSettings, loss: str):
    """(the string a text or prompt/completion row tokenizes, where its trained part starts
    in characters): 0 trains it all, None means the response marker was not found. Chat
    rows render their template instead and have none.

    A prompt and its completion are tokenized as one string, as the model reads them, and
    split where the completion starts: tokenizing the completion on its own would start it
    as if it began a text (a SentencePiece tokenizer puts a spurious `▁` there)."""
    if fmt == "text":
        text, marker = data["text"], settings.response_template
        if loss != "completion" or not marker:
            return text, 0
        cut = text.find(marker)
        return text, (None if cut < 0 else cut + len(marker))
    if fmt == "prompt_completion":
        return data["prompt"] + data["completion"], len(data["prompt"])
    return None


def _seam(offsets, cut: int) -> int:
    """How many leading tokens hold no character at or after `cut` (a token that straddles
    the seam belongs to the completion: it holds characters the model must write)."""
    n = 0
    for _, end in offsets:
        if end > cut:
            break
        n += 1
    return n


def _with_eos(tok: Tokens, ids: list[int], settings: EncodingSettings) -> list[int]:
    if settings.add_eos and tok.eos_id is not None and (not ids or ids[-1] != tok.eos_id):
        return [*ids, tok.eos_id]
    return ids


def _encode_piece(ids, offsets, cut, fmt, tok: Tokens, settings: EncodingSettings, loss: str):
    """(ids, number of leading tokens without loss, reason) of a text or prompt/completion
    row; the tokenizer's own BOS goes first unless turned off, EOS last."""
    add_special = settings.add_special_tokens != "no"
    prefix = tok.prefix_ids if add_special else []
    if fmt == "text" and cut == 0:
        suffix = tok.suffix_ids if add_special else []
        return _with_eos(tok, prefix + ids + suffix, settings), 0, None
    full = _with_eos(tok, prefix + ids, settings)
    if cut is None:
        return full, len(full), "response_template_not_found"
    masked = 0 if loss == "all" else len(prefix) + _seam(offsets, cut)
    return full, masked, None


def _encode_messages(data: dict, tok: Tokens, settings: EncodingSettings, loss: str):
    """(ids, assistant mask, how the assistant's tokens were found) of a chat row. A row
    with `completion_start` (a conversational prompt/completion) masks the turns before it."""
    if not tok.template:
        raise InputError(
            "the tokenizer has no chat template; choose a template for chat data",
            code="no_chat_template",
        )
    messages = data["messages"]
    if loss == "all":
        ids = plain_tokens(tok.tokenizer, tok.template, messages)
        mask, method = [1] * len(ids), None
    else:
        first = int(data.get("completion_start") or 0)
        ids, mask, method = assistant_tokens(
            tok.tokenizer, tok.spans, tok.template, messages, first
        )
    if settings.add_special_tokens == "yes":
        # The common mistake of rendering the template to text and tokenizing that text
        # again with the tokenizer's defaults: its BOS comes on top of the template's.
        ids = tok.prefix_ids + ids + tok.suffix_ids
        mask = [0] * len(tok.prefix_ids) + mask + [0] * len(tok.suffix_ids)
    return ids, mask, method


def encode_example(
    data: dict, tokenizer_or_tokens, settings: EncodingSettings, *, row: int = 0
) -> Encoded:
    """Turn one canonical row into `input_ids` and `labels` (label -100 = no loss)."""
    return encode_examples([(row, data)], tokenizer_or_tokens, settings)[0]


def encode_examples(
    examples: list[tuple[int, dict]], tokenizer_or_tokens, settings: EncodingSettings
) -> list[Encoded]:
    """`encode_example` for a batch of (row number, row): the same result row for row, with
    the tokenizer called once for all the text and prompt/completion rows of the batch (the
    fast tokenizers encode a batch in one call)."""
    tok = (
        tokenizer_or_tokens
        if isinstance(tokenizer_or_tokens, Tokens)
        else resolve_tokens(tokenizer_or_tokens, settings)
    )
    plans, texts, cuts = [], [], []
    for row, data in examples:
        fmt = detect_format(data)
        loss = effective_loss(settings, fmt)
        piece = _piece(data, fmt, settings, loss)
        plans.append((row, data, fmt, loss, len(texts) if piece else None))
        if piece:
            texts.append(piece[0])
            cuts.append(piece[1])
    ids, offsets = [], []
    if texts:
        # Offsets only where a seam must be found: plain text rows train every token.
        seams = any(cut != 0 for cut in cuts)
        out = tok.tokenizer(
            texts,
            add_special_tokens=False,
            return_attention_mask=False,
            return_offsets_mapping=seams,
        )
        ids = out["input_ids"]
        offsets = out["offset_mapping"] if seams else [None] * len(ids)
    return [
        _encoded(
            row,
            data,
            fmt,
            loss,
            None if at is None else (ids[at], offsets[at], cuts[at]),
            tok,
            settings,
        )
        for row, data, fmt, loss, at in plans
    ]


def _encoded(row, data, fmt, loss, piece, tok: Tokens, settings: EncodingSettings) -> Encoded:
    reason, method = None, None
    if piece is not None:
        ids, masked, reason = _encode_piece(*piece, fmt, tok, settings, loss)
        labels = [IGNORE] * masked + ids[masked:]
    else:
        ids, mask, method = _encode_messages(data, tok, settings, loss)
        if loss == "all":
            labels = list(ids)
        else:
            labels = [i if m else IGNORE for i, m in zip(ids, mask, strict=True)]
            if not any(m["role"] == "assistant" for m in data["messages"]):
                reason = "no_assistant_turn"
            elif method == "none":
                reason = "template_not_marked"
    encoded = Encoded(
        row, fmt, ids, labels, loss, full_length=len(ids), reason=reason, spans=method
    )
    if settings.packing != "concatenated":
        truncate(encoded, settings, tok)
    return encoded


def truncate(encoded: Encoded, settings: EncodingSettings, tok: Tokens) -> None:
    excess = len(encoded.input_ids) - settings.max_length
    if excess <= 0:
        return
    if settings.truncation_side == "right":
        kept = slice(0, settings.max_length)
        removed_labels = encoded.labels[settings.max_length :]
    else:
        kept = slice(excess, None)
        removed_labels = encoded.labels[:excess]
    encoded.input_ids = encoded.input_ids[kept]
    encoded.labels = encoded.labels[kept]
    encoded.truncated = excess
    encoded.trained_dropped = sum(1 for label in removed_labels if label != IGNORE)
    encoded.end_dropped = any(label in tok.end_ids for label in removed_labels)
    if encoded.trained == 0 and encoded.reason is None and encoded.trained_dropped:
        encoded.reason = "truncated"


@dataclass
class Segment:
    """Where a source row lies inside a packed or padded sequence."""

    row: int
    start: int
    end: int  # exclusive
    offset: int = 0  # where in the row this piece starts (> 0: a row split across blocks)
    last: bool = True  # this piece holds the end of the row


@dataclass
class Sequence:
    """One training sequence before collation: ids, labels, positions, and its rows."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segments: list[Segment] = field(default_factory=list)


def pack(encoded: list[Encoded], settings: EncodingSettings, tok: Tokens) -> list[Sequence]:
    """Arrange encoded rows into training sequences according to `settings.packing`, by
    the same index the trainer uses over a token store (`studio.labels.packing`)."""
    import numpy as np

    from studio.labels.packing import PackIndex, Sequences
    from studio.tokens.rows import TokenRows, columns

    rows = TokenRows.from_columns(
        [columns(encoded)],
        np.zeros(len(encoded), np.uint16),
        {},
        row_numbers=np.array([e.row for e in encoded], np.int64),
    )
    index = PackIndex.build(
        rows.lengths, np.arange(len(encoded)), settings.packing, settings.max_length
    )
    return list(Sequences(rows, index))


@dataclass
class Collator:
    """Sequences -> a batch of tensors for the model.

    Without packing: right-padded `input_ids`, `labels` (-100 on padding) and an
    `attention_mask`. With isolated packing: no attention mask, and `position_ids` that
    restart at every row, which transformers turns into a block-diagonal causal mask (SDPA,
    eager) or into FlashAttention 2's variable-length boundaries; with `flatten`, the batch
    is one row without any padding.
    """

    pad_id: int
    packing: str = "off"
    mask_pad_token_id: bool = False
    pad_to_multiple_of: int | None = None
    # The whole batch as one row, no padding (FlashAttention 2's variable-length kernel
    # separates the documents by their restarting position ids); isolated packing only.
    flatten: bool = False

    @classmethod
    def for_settings(
        cls, tok: Tokens, settings: EncodingSettings, *, flatten: bool = False
    ) -> Collator:
        return cls(
            tok.pad_id,
            settings.packing,
            settings.mask_pad_token_id,
            flatten=flatten and settings.packing == "isolated",
        )

    def __call__(self, sequences: list[Sequence]) -> dict:
        import torch

        if self.flatten:
            return self._one_row(sequences)

        longest = max(len(s.input_ids) for s in sequences)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids, labels, attention, positions = [], [], [], []
        for s in sequences:
            pad = longest - len(s.input_ids)
            ids.append(s.input_ids + [self.pad_id] * pad)
            labels.append(s.labels + [IGNORE] * pad)
            attention.append([1] * len(s.input_ids) + [0] * pad)
            # Padding restarts its positions, so in a packed batch it is its own block.
            positions.append(s.position_ids + list(range(pad)))
        batch = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
        }
        if self.mask_pad_token_id:
            batch["labels"][batch["input_ids"] == self.pad_id] = IGNORE
        # Nothing precedes the first token, so the shifted loss never reaches it: say so.
        batch["labels"][:, 0] = IGNORE
        if self.packing != "isolated":
            batch["attention_mask"] = torch.tensor(attention, dtype=torch.long)
        return batch

    def _one_row(self, sequences: list[Sequence]) -> dict:
        """Every sequence of the batch end to end in one row: ids, labels and positions
        concatenated, nothing padded. Each sequence's first token (a document's first, with
        isolated packing) carries no loss: the shifted loss would otherwise predict it from
        the previous sequence's last token."""
        import torch

        ids, labels, positions = [], [], []
        for s in sequences:
            ids += s.input_ids
            labels += [IGNORE] + s.labels[1:]
            positions += s.position_ids
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }
