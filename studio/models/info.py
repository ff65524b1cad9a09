"""What a user should know about a base model before training on it.

Architecture and size, the context length, the special tokens (and the classic traps:
pad == EOS, no pad at all, an end-of-turn token that generation would not stop on), and the
chat template rendered on an example so that BOS/EOS placement can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.errors import StudioError
from studio.fsutil import dir_size

EXAMPLE_MESSAGES = [
    {"role": "system", "content": "あなたは丁寧なアシスタントです。"},
    {"role": "user", "content": "富士山の高さは？"},
    {"role": "assistant", "content": "富士山の高さは3776メートルですわ。"},
]
# End-of-turn markers of common chat templates; generation must stop on them too.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


class ChatTemplateError(StudioError, ValueError):
    """A chat template that cannot be rendered: a Jinja syntax error, or the template's own
    `raise_exception(...)` refusing the conversation."""


def apply_chat_template(tokenizer, conversation, **kwargs):
    """`tokenizer.apply_chat_template(...)`, with a broken template reported as a
    `ChatTemplateError` that says where it broke and what to do, not as a Jinja traceback."""
    from jinja2 import TemplateError, TemplateSyntaxError

    from studio.models.template_guard import check_template

    refused = check_template(
        kwargs.get("chat_template") or getattr(tokenizer, "chat_template", None)
    )
    if refused:
        raise ChatTemplateError(
            f"The chat template cannot be used: {refused}. Fix the template (the model's "
            "chat_template.jinja or tokenizer_config.json, or the chat_template setting), or "
            "choose another model or template."
        )
    try:
        return tokenizer.apply_chat_template(conversation, **kwargs)
    except TemplateSyntaxError as exc:
        problem = f"a syntax error on line {exc.lineno}: {exc.message}"
    except TemplateError as exc:
        problem = f"it raised an error: {exc}"
    except RecursionError:
        problem = "it recurses without end (a macro or include that calls itself)"
    raise ChatTemplateError(
        f"The chat template cannot be rendered ({problem}). Fix the template (the model's "
        "chat_template.jinja or tokenizer_config.json, or the chat_template setting), or "
        "choose another model or template."
    )


@dataclass
class Note:
    code: str
    severity: str  # "warning" | "info"
    params: dict


def count_parameters(model, adapter: str | None = None) -> tuple[int, int]:
    """(all, trainable) parameters of the model as shown: the base, plus `adapter`'s weights
    when it is the adapter shown. Other adapters loaded into the same base (Compare and Chat
    load several) are not part of it."""
    adapters = set(getattr(model, "peft_config", None) or {})
    total = trainable = 0
    for name, p in model.named_parameters():
        owners = adapters.intersection(name.split("."))
        if owners and adapter not in owners:
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def _token_entry(tokenizer, role: str) -> dict:
    token = getattr(tokenizer, f"{role}_token", None)
    token_id = getattr(tokenizer, f"{role}_token_id", None)
    return {"role": role, "token": token, "id": token_id}


def special_tokens(tokenizer) -> list[dict]:
    entries = [_token_entry(tokenizer, r) for r in ("bos", "eos", "pad", "unk")]
    named = {e["token"] for e in entries}
    extra = [t for t in tokenizer.all_special_tokens if t not in named]
    for token in extra:
        entries.append(
            {"role": "special", "token": token, "id": tokenizer.convert_tokens_to_ids(token)}
        )
    return entries


def has_generation_markers(template: str | None) -> bool:
    """Whether a chat template marks what the assistant writes ({% generation %}, in any
    whitespace-control spelling), which assistant-only loss needs."""
    return bool(template) and "generation %}" in template and "endgeneration" in template


def end_of_turn_ids(tokenizer) -> list[int]:
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in END_OF_TURN_TOKENS if t in vocab]


def generation_eos_ids(model, tokenizer) -> list[int]:
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None) if gen is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return list(eos) if isinstance(eos, list | tuple) else [eos]


def render_chat_example(tokenizer) -> dict | None:
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        text = apply_chat_template(tokenizer, EXAMPLE_MESSAGES, tokenize=False)
        ids = apply_chat_template(tokenizer, EXAMPLE_MESSAGES, tokenize=True, return_dict=True)
    except ChatTemplateError as exc:
        return {
            "messages": EXAMPLE_MESSAGES,
            "text": "",
            "num_tokens": 0,
            "has_generation_markers": has_generation_markers(tokenizer.chat_template),
            "bos_when_retokenized": 0,
            "error": str(exc),
        }
    ids = ids["input_ids"]
    # What happens if someone renders the template to text and tokenizes it again with the
    # default add_special_tokens=True: the classic doubled BOS.
    retokenized = tokenizer(text)["input_ids"]
    bos = tokenizer.bos_token_id
    leading_bos = 0
    for tok in retokenized:
        if bos is None or tok != bos:
            break
        leading_bos += 1
    return {
        "messages": EXAMPLE_MESSAGES,
        "text": text,
        "num_tokens": len(ids),
        "has_generation_markers": has_generation_markers(tokenizer.chat_template),
        "bos_when_retokenized": leading_bos,
    }


def describe(loaded) -> dict:
    """A JSON-able summary of a loaded model (see `studio.models.load.LoadedModel`)."""
    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.model.config
    total, trainable = count_parameters(model, (loaded.extra or {}).get("adapter"))
    eos_ids = generation_eos_ids(model, tok)
    eot_ids = end_of_turn_ids(tok)
    chat = render_chat_example(tok)
    probe = tok("a")["input_ids"]
    info = {
        "name": loaded.source.name,
        "source": {"kind": loaded.source.kind, "ref": loaded.source.ref},
        "architecture": (getattr(cfg, "architectures", None) or [type(model).__name__])[0],
        "model_type": getattr(cfg, "model_type", None),
        "parameters": total,
        "trainable_parameters": trainable,
        "layers": getattr(cfg, "num_hidden_layers", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "attention_heads": getattr(cfg, "num_attention_heads", None),
        "kv_heads": getattr(cfg, "num_key_value_heads", None),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "context_length": getattr(cfg, "max_position_embeddings", None),
        "tokenizer_max_length": tok.model_max_length if tok.model_max_length < 1e9 else None,
        "tied_embeddings": bool(getattr(cfg, "tie_word_embeddings", False)),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "device": loaded.device,
        "disk_bytes": dir_size(loaded.source.local_dir) if loaded.source.local_dir else None,
        "load_seconds": round(loaded.load_seconds, 2),
        "trust_remote_code": loaded.trust_remote_code,
        "special_tokens": special_tokens(tok),
        "pad_equals_eos": tok.pad_token_id is not None and tok.pad_token_id == tok.eos_token_id,
        "adds_bos": bool(probe) and tok.bos_token_id is not None and probe[0] == tok.bos_token_id,
        "adds_eos": bool(probe) and tok.eos_token_id is not None and probe[-1] == tok.eos_token_id,
        "generation_eos_ids": [{"id": i, "token": tok.convert_ids_to_tokens(i)} for i in eos_ids],
        "chat_template": chat,
    }
    from studio.models.family import describe_family

    info["family"] = describe_family(
        tok, getattr(tok, "chat_template", None), getattr(cfg, "model_type", None)
    )
    info["notes"] = [n.__dict__ for n in notes(info, eos_ids, eot_ids)]
    return info


def notes(info: dict, eos_ids: list[int], eot_ids: list[int]) -> list[Note]:
    """Facts about the tokenizer that silently ruin fine-tunes, found before any training."""
    found = []
    pad = next(e for e in info["special_tokens"] if e["role"] == "pad")
    if pad["id"] is None:
        found.append(Note("no_pad", "warning", {}))
    elif info["pad_equals_eos"]:
        found.append(Note("pad_equals_eos", "warning", {"token": pad["token"]}))
    chat = info["chat_template"]
    if chat is None:
        found.append(Note("no_chat_template", "info", {}))
    elif chat.get("error"):
        found.append(Note("template_error", "warning", {"error": chat["error"]}))
    else:
        spans = (info.get("family") or {}).get("spans")
        if spans == "none":
            found.append(Note("no_generation_markers", "warning", {}))
        elif not chat["has_generation_markers"]:
            found.append(Note("spans_by_rendering", "info", {"method": spans}))
        if chat["bos_when_retokenized"] > 1:
            found.append(
                Note("double_bos_on_retokenize", "info", {"count": chat["bos_when_retokenized"]})
            )
    missing = [i for i in eot_ids if i not in eos_ids]
    if missing:
        found.append(Note("eot_not_in_generation_eos", "warning", {"ids": missing}))
    return found
