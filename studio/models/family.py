"""Which model family a tokenizer and its chat template belong to.

The family decides the end-of-turn token generation must stop on, and what the chat
template writes around a reply. It is read from the template's own markers (and the
config's `model_type`), never from a hub id: a local fine-tune of Qwen2.5 is still Qwen2.5.
"""

from __future__ import annotations

# (family, markers that must all be in the chat template), first match wins.
SIGNATURES = (
    ("llama-3", ("<|start_header_id|>", "<|eot_id|>")),
    ("phi-3", ("<|user|>", "<|end|>")),
    ("gemma", ("<start_of_turn>", "<end_of_turn>")),
    ("chatml", ("<|im_start|>", "<|im_end|>")),
    ("llama-2", ("[INST]", "<<SYS>>")),
    ("mistral", ("[INST]", "[/INST]")),
    ("deepseek-llm", ("User: ", "Assistant:")),
)
# ChatML is written by several families; the config says which.
CHATML_FAMILIES = {"qwen2": "qwen2.5", "qwen3": "qwen3", "qwen2_moe": "qwen2.5"}


def family_of(template: str | None, model_type: str | None = None) -> str:
    """`llama-3`, `qwen2.5`, `chatml`, `phi-3`, `gemma`, `llama-2`, `mistral`,
    `deepseek-llm`, or `unknown` (no template: `none`)."""
    if not template:
        return "none"
    for family, markers in SIGNATURES:
        if all(m in template for m in markers):
            if family == "chatml":
                return CHATML_FAMILIES.get(model_type or "", "chatml")
            return family
    return "unknown"


def describe_family(tokenizer, template: str | None, model_type: str | None = None) -> dict:
    """The family, the end-of-turn tokens its template writes, and how the inspector finds
    the assistant's tokens in it (studio.labels.spans)."""
    from studio.labels.encode import EncodingSettings, resolve_tokens

    settings = EncodingSettings(chat_template=template) if template else EncodingSettings()
    tok = resolve_tokens(tokenizer, settings)
    ends = [
        {"id": int(i), "token": tokenizer.convert_ids_to_tokens(int(i))}
        for i in sorted(tok.end_ids)
    ]
    return {
        "family": family_of(template, model_type),
        "end_tokens": ends,
        "spans": tok.spans.method,
    }
