"""Which tokens of a chat rendering the assistant wrote, for any chat template.

Assistant-only loss needs to know, token by token, what the assistant wrote. A template
with `{% generation %}` markers says so itself. Stock templates (Qwen2.5, Llama-3.x,
Llama-2, Phi-3.5, DeepSeek, ...) have no markers, so the spans are found from the template
itself: the conversation up to each assistant turn is rendered as the model will be
prompted (`add_generation_prompt`), and what the full conversation adds after that prompt,
up to where the next message starts, is the assistant's turn: its reply and its end-of-turn
token. Whitespace the template writes after the end-of-turn token (the newline after
`<|im_end|>`) is not trained: generation stops on the token, so the model never writes it
(axolotl's `train_on_eos: turn`; trl's training templates for Qwen2.5 and Phi-3.5 train it,
and the newline after the assistant header too). The characters map to tokens through the
tokenizer's offsets.

This needs the template to render earlier turns the same whatever follows them
("prefix-preserving"). A template that rewrites earlier turns (some reasoning templates drop
earlier thinking) cannot be read this way; for the templates trl ships a training variant of,
that variant is used instead, and otherwise the row has no spans and the inspector says why.

Methods, as the inspector shows them: `markers` (the template's own generation markers),
`rendered` (derived by rendering, above), `trl` (trl's training template for this stock
template), `none` (no way found).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.models.info import ChatTemplateError, apply_chat_template, has_generation_markers

METHODS = ("markers", "rendered", "trl", "none")
# A conversation that exercises what rendering needs: a system prompt, two assistant turns.
PROBE = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "6."},
]


class SpansNotFound(ValueError):
    """This row's assistant turns cannot be told apart by rendering the template."""


@dataclass(frozen=True)
class SpanPlan:
    """How the spans of a template are found: its method, and the marked template used
    instead (trl's training variant) where rendering cannot be used."""

    method: str
    ends: tuple[str, ...] = ()  # end-of-turn strings: a turn's training stops after them
    marked: str | None = field(default=None, repr=False)  # a template with generation markers
    fallback: str | None = field(default=None, repr=False)  # trl's, for rows rendering misreads

    @property
    def found(self) -> bool:
        return self.method != "none"


@functools.cache
def trl_training_templates() -> dict[str, str]:
    """trl's stock chat templates -> their training variants (with generation markers), read
    from trl's package files so that trl need not be imported."""
    import importlib.util

    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "chat_templates"
    pairs = {}
    for training in sorted(folder.glob("*_training.jinja")):
        stock = training.with_name(training.name.replace("_training.jinja", ".jinja"))
        if stock.is_file():
            pairs[stock.read_text(encoding="utf-8")] = training.read_text(encoding="utf-8")
    return pairs


def trl_training_template(template: str | None) -> str | None:
    return trl_training_templates().get(template) if template else None


def render(tokenizer, template: str, messages: list[dict], *, prompt: bool = False) -> str:
    return apply_chat_template(
        tokenizer, messages, chat_template=template, tokenize=False, add_generation_prompt=prompt
    )


def char_spans(
    tokenizer, template: str, messages: list[dict], first: int = 0, ends: tuple[str, ...] = ()
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (those at
    message index `first` or later), each cut right after its last end marker (`ends`).
    Raises SpansNotFound when the template does not render a turn's prompt as the start of
    the conversation."""
    text = render(tokenizer, template, messages)
    spans = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant" or k < first:
            continue
        try:
            prompt = render(tokenizer, template, messages[:k], prompt=True)
            upto = render(tokenizer, template, messages[: k + 1])
        except ChatTemplateError as exc:
            raise SpansNotFound(f"turn {k + 1}: {exc}") from None
        if not text.startswith(prompt):
            raise SpansNotFound(f"turn {k + 1}: the prompt is rendered differently later on")
        end = len(os.path.commonprefix((upto, text)))
        if end <= len(prompt):
            raise SpansNotFound(f"turn {k + 1}: the reply is not rendered after its prompt")
        spans.append((len(prompt), _after_end_marker(text, len(prompt), end, ends)))
    return text, spans


def _after_end_marker(text: str, start: int, end: int, ends: tuple[str, ...]) -> int:
    """Where a turn's training stops: right after its last end marker. What follows it
    before the next message is whitespace the model never writes, or, where the template
    ends a conversation differently from a turn (Phi-3.5 appends EOS after the last one),
    the first characters the two renderings happen to share."""
    turn = text[start:end]
    cut = max((turn.rfind(m) + len(m) for m in ends if m and m in turn), default=-1)
    return start + cut if cut > 0 else end


def token_mask(offsets, spans: list[tuple[int, int]]) -> list[int]:
    """1 for every token that starts inside a span (offsets: (start, end) per token)."""
    mask, k = [], 0
    for start, end in offsets:
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        inside = k < len(spans) and spans[k][0] <= start < spans[k][1] and end > start
        mask.append(1 if inside else 0)
    return mask


def rendered_tokens(
    tokenizer, template: str, messages: list[dict], first: int = 0, ends: tuple[str, ...] = ()
) -> tuple[list[int], list[int]]:
    """(input ids, assistant mask) of a conversation, the spans found by rendering. The ids
    are those `apply_chat_template(tokenize=True)` gives: the rendering tokenized without
    the tokenizer's own special tokens."""
    text, spans = char_spans(tokenizer, template, messages, first, ends)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), token_mask(encoded["offset_mapping"], spans)


def marked_tokens(
    tokenizer, template: str, messages: list[dict], first: int = 0
) -> tuple[list[int], list[int]]:
    """(input ids, assistant mask) from a template's generation markers; with `first`, the
    assistant turns before message `first` carry no mask (a conversational prompt)."""
    rendered = _rendered_ids(tokenizer, template, messages, return_assistant_tokens_mask=True)
    ids = list(rendered["input_ids"])
    mask = list(rendered.get("assistant_masks") or [0] * len(ids))
    if first:
        cut = min(len(prompt_ids(tokenizer, template, messages[:first])), len(mask))
        mask[:cut] = [0] * cut
    return ids, mask


def plan_for(tokenizer, template: str | None, ends: tuple[str, ...] = ()) -> SpanPlan:
    """How spans will be found for this tokenizer and template (`ends`: the strings of the
    model's end-of-turn tokens)."""
    if not template:
        return SpanPlan("none")
    if has_generation_markers(template):
        return SpanPlan("markers", marked=template)
    fallback = trl_training_template(template)
    fast = bool(getattr(tokenizer, "is_fast", False))
    if fast:
        try:
            rendered_tokens(tokenizer, template, PROBE)
            return SpanPlan("rendered", ends=ends, fallback=fallback)
        except (SpansNotFound, ChatTemplateError, ValueError, TypeError):
            pass
    if fallback:
        return SpanPlan("trl", marked=fallback)
    return SpanPlan("none")


def assistant_tokens(
    tokenizer, plan: SpanPlan, template: str, messages: list[dict], first: int = 0
) -> tuple[list[int], list[int], str]:
    """(ids, assistant mask, method used) of a conversation under `plan`."""
    if plan.method == "rendered":
        try:
            ids, mask = rendered_tokens(tokenizer, template, messages, first, plan.ends)
            return ids, mask, "rendered"
        except SpansNotFound:
            if not plan.fallback:
                ids = plain_tokens(tokenizer, template, messages)
                return ids, [0] * len(ids), "none"
            ids, mask = marked_tokens(tokenizer, plan.fallback, messages, first)
            return ids, mask, "trl"
    if plan.marked:
        ids, mask = marked_tokens(tokenizer, plan.marked, messages, first)
        return ids, mask, plan.method
    ids = plain_tokens(tokenizer, template, messages)
    return ids, [0] * len(ids), "none"


def _rendered_ids(tokenizer, template: str, messages: list[dict], **options) -> dict:
    return apply_chat_template(
        tokenizer, messages, chat_template=template, tokenize=True, return_dict=True, **options
    )


def prompt_ids(tokenizer, template: str, messages: list[dict]) -> list[int]:
    """The ids of the prompt the model is given to write the next assistant turn."""
    rendered = _rendered_ids(tokenizer, template, messages, add_generation_prompt=True)
    return list(rendered["input_ids"])


def plain_tokens(tokenizer, template: str, messages: list[dict]) -> list[int]:
    """The ids of a conversation rendered with its template."""
    return list(_rendered_ids(tokenizer, template, messages)["input_ids"])
