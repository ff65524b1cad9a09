"""Batched log-probabilities and batched greedy answers from a loaded model.

A continuation is never tokenized on its own: context + continuation is encoded as one
string, and the continuation's tokens are found from the character offsets (a Japanese
candidate often merges with the next character into one token, `富士山は`, so tokenizing
it alone would score tokens the model never sees together). Where a token straddles the
boundary, `straddle="include"` counts it as part of the continuation (the continuation is
scored in full, conditioned on a little less context) and `straddle="exclude"` leaves it in
the context (only what lies wholly after the boundary is scored, conditioned on everything
before it; `Score.chars` says how many characters that was).

Sequences are left-padded and scored many per forward pass, longest first, within a token
budget; only the logits of the continuation positions are kept (`logits_to_keep`), so a
large vocabulary does not multiply the memory by the whole sequence length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from studio.errors import InputError

DEFAULT_BATCH_TOKENS = 8192  # padded tokens per forward pass
LOGIT_BUDGET = 2**26  # kept logits per forward pass (256 MiB in fp32)
DEFAULT_MAX_LENGTH = 2048


@dataclass(frozen=True)
class Score:
    logprob: float  # sum of the continuation tokens' log-probabilities (natural log)
    tokens: int  # continuation tokens scored
    chars: int  # characters of the continuation those tokens cover

    def per_char(self) -> float | None:
        return self.logprob / self.chars if self.chars else None


def max_length(loaded) -> int:
    config = getattr(loaded.model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    value = getattr(loaded.tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 1 < value < 10**6 else DEFAULT_MAX_LENGTH


def lead_ids(tokenizer) -> list[int]:
    """What the tokenizer itself puts before a text (a BOS, or nothing)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return list(full[:i])
    return []


def score_prefix(tokenizer) -> list[int]:
    """Token(s) that start every scored sequence, so that the first real token has a
    probability: the tokenizer's own lead (BOS), else its BOS or EOS id (as lm-eval does)."""
    lead = lead_ids(tokenizer)
    if lead:
        return lead
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [int(token_id)]
    return []


def split_ids(
    tokenizer, context: str, continuation: str, *, straddle: str = "include"
) -> tuple[list[int], list[int], int]:
    """(context ids, continuation ids, continuation characters covered) of the text
    context + continuation, encoded once, without special tokens."""
    text = context + continuation
    boundary = len(context)
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    except (NotImplementedError, TypeError, ValueError, KeyError):
        ids, offsets = list(tokenizer(text, add_special_tokens=False)["input_ids"]), None
    if offsets is None:  # a slow tokenizer: the longest prefix shared with the context alone
        alone = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        cut = 0
        while cut < min(len(alone), len(ids)) and alone[cut] == ids[cut]:
            cut += 1
        return ids[:cut], ids[cut:], len(continuation)
    if straddle == "include":
        cut = next((i for i, (_, end) in enumerate(offsets) if end > boundary), len(ids))
    else:
        cut = next((i for i, (start, _) in enumerate(offsets) if start >= boundary), len(ids))
    covered = len(text) - max(boundary, offsets[cut][0]) if cut < len(ids) else 0
    return ids[:cut], ids[cut:], covered


def _budget(pairs: list[tuple[list[int], list[int]]], order, vocab: int, batch_tokens: int):
    """Batches of indices (longest first) within the padded-token and kept-logit budgets."""
    batch: list[int] = []
    width = keep = 0
    for i in order:
        ctx, cont = pairs[i]
        w, k = max(width, len(ctx) + len(cont)), max(keep, len(cont) + 1)
        if batch and (
            (len(batch) + 1) * w > batch_tokens or (len(batch) + 1) * k * vocab > LOGIT_BUDGET
        ):
            yield batch
            batch, w, k = [], len(ctx) + len(cont), len(cont) + 1
        batch.append(i)
        width, keep = w, k
    if batch:
        yield batch


def _forward(model, input_ids, attention_mask, keep: int):
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    try:
        logits = model(**kwargs, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(**kwargs, use_cache=False).logits
    return logits[:, -keep:, :]


def token_logprobs(
    loaded,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    batch_tokens: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[float]]:
    """Log-probability of every continuation token given everything before it, for each
    (context ids, continuation ids) pair. The context must hold at least one token."""
    import torch

    batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS
    model, tok = loaded.model, loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    limit = max_length(loaded)
    fitted = []
    for ctx, cont in pairs:
        if not ctx:
            raise InputError("a scored sequence needs at least one context token")
        cont = list(cont)[: limit - 1]
        fitted.append((list(ctx)[-(limit - len(cont)) :], cont))
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or len(tok))
    order = sorted(range(len(fitted)), key=lambda i: -(len(fitted[i][0]) + len(fitted[i][1])))
    out: list[list[float]] = [[] for _ in fitted]
    done = 0
    with torch.no_grad():
        for batch in _budget(fitted, order, vocab, batch_tokens):
            seqs = [fitted[i][0] + fitted[i][1] for i in batch]
            width = max(len(s) for s in seqs)
            keep = max(len(fitted[i][1]) for i in batch) + 1
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for row, seq in enumerate(seqs):
                ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, width - len(seq) :] = 1
            ids, mask = ids.to(loaded.device), mask.to(loaded.device)
            logits = _forward(model, ids, mask, keep)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(batch):
                n = len(fitted[i][1])
                if not n:
                    continue
                targets = ids[row, width - n :]
                predicted = logprobs[row, keep - 1 - n : keep - 1, :]
                out[i] = predicted.gather(-1, targets.unsqueeze(-1)).squeeze(-1).tolist()
            done += len(batch)
            if progress:
                progress(done, len(fitted))
    return out


def continuation_scores(
    loaded,
    requests: Sequence[tuple[str, str]],
    *,
    straddle: str = "include",
    batch_tokens: int | None = None,
) -> list[Score]:
    """Score each (context, continuation) pair: the summed log-probability of the
    continuation's tokens given the context, encoded together (see the module docstring)."""
    tok = loaded.tokenizer
    prefix = score_prefix(tok)
    pairs, covered = [], []
    for context, continuation in requests:
        ctx, cont, chars = split_ids(tok, context, continuation, straddle=straddle)
        pairs.append((prefix + ctx, cont))
        covered.append(chars)
    if not prefix and any(not ctx for ctx, _ in pairs):
        raise InputError(
            f"{loaded.source.name}'s tokenizer has no BOS or EOS token to start a sequence with"
        )
    logprobs = token_logprobs(loaded, pairs, batch_tokens=batch_tokens)
    return [
        Score(sum(lp), len(lp), chars if lp else 0)
        for lp, chars in zip(logprobs, covered, strict=True)
    ]


def text_nll(loaded, texts: Sequence[str], *, batch_tokens: int | None = None):
    """(negative log-likelihood, tokens) of each whole text. A text longer than the model's
    context is cut into windows of half the context, each scored with up to the other half
    of preceding tokens as context."""
    tok = loaded.tokenizer
    prefix = score_prefix(tok)
    limit = max_length(loaded)
    stride = max(1, limit // 2)
    pairs, owner = [], []
    for n, text in enumerate(texts):
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if not prefix:
            ids, start = ids, 1  # the first token has nothing to be predicted from
        else:
            ids, start = prefix + ids, len(prefix)
        for at in range(start, len(ids), stride):
            chunk = ids[at : at + stride]
            pairs.append((ids[max(0, at - (limit - len(chunk))) : at], chunk))
            owner.append(n)
    logprobs = token_logprobs(loaded, pairs, batch_tokens=batch_tokens)
    nll = [0.0] * len(texts)
    count = [0] * len(texts)
    for n, lp in zip(owner, logprobs, strict=True):
        nll[n] -= sum(lp)
        count[n] += len(lp)
    return list(zip(nll, count, strict=True))


# --- greedy answers --------------------------------------------------------------------------


def _stopping(tokenizer, prompt_width: int, stop_ids: set[int]):
    import torch
    from transformers import StoppingCriteria

    class StopAtNewline(StoppingCriteria):
        """Done per sequence once its answer has a newline or an end token."""

        def __call__(self, input_ids, scores, **kwargs):
            done = []
            for row in input_ids[:, prompt_width:].tolist():
                ended = any(t in stop_ids for t in row)
                done.append(ended or "\n" in tokenizer.decode(row, skip_special_tokens=True))
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopAtNewline()


def greedy_answers(
    loaded,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 16,
) -> list[str]:
    """The first line each prompt's greedy continuation produces, many prompts per batch."""
    import torch

    from studio.generate import stop_ids as end_ids

    model, tok = loaded.model, loaded.tokenizer
    stops = end_ids(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (stops or [0])[0]
    lead = lead_ids(tok)
    limit = max(1, max_length(loaded) - max_new_tokens)
    encoded = [
        (lead + list(tok(p, add_special_tokens=False)["input_ids"]))[-limit:] for p in prompts
    ]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    answers = [""] * len(prompts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            ids, mask = ids.to(loaded.device), mask.to(loaded.device)
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=stops or None,
                pad_token_id=pad,
                stopping_criteria=[_stopping(tok, width, set(stops))],
            )
            for row, i in enumerate(batch):
                new = out[row, width:].tolist()
                end = next((n for n, t in enumerate(new) if t in stops), len(new))
                text = tok.decode(new[:end], skip_special_tokens=True)
                answers[i] = text.split("\n", 1)[0].strip()
    return answers
