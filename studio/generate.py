"""Text generation from a loaded model: one call, with the facts that matter for judging a
fine-tune (how many tokens, whether it stopped on EOS/end-of-turn or ran into the limit)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from studio.errors import InputError
from studio.models.info import apply_chat_template, end_of_turn_ids, generation_eos_ids


@dataclass
class GenerationSettings:
    max_new_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    repetition_penalty: float = 1.0
    greedy: bool = False
    seed: int = 0

    def validate(self) -> GenerationSettings:
        if not 1 <= int(self.max_new_tokens) <= 8192:
            raise InputError("max_new_tokens must be between 1 and 8192")
        if not self.greedy and not 0 < float(self.temperature) <= 5:
            raise InputError("temperature must be in (0, 5]")
        if not 0 < float(self.top_p) <= 1:
            raise InputError("top_p must be in (0, 1]")
        if float(self.repetition_penalty) <= 0:
            raise InputError("repetition_penalty must be > 0")
        return self


@dataclass
class GenerationResult:
    prompt: str
    text: str
    raw_text: str
    prompt_tokens: int
    new_tokens: int
    stop_reason: str  # "eos" | "length"
    stop_token: str | None
    seconds: float
    settings: dict
    warnings: list[str] = field(default_factory=list)
    first_token_seconds: float | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"tokens_per_second": round(self.tokens_per_second, 1)}


def stop_ids(model, tokenizer) -> list[int]:
    """Every id that ends a reply: the generation config's EOS ids, the tokenizer's EOS and
    the end-of-turn markers the chat template uses."""
    ids = generation_eos_ids(model, tokenizer) + end_of_turn_ids(tokenizer)
    return list(dict.fromkeys(i for i in ids if i is not None))


# End-of-turn strings that should never appear as *text* in a reply: when they do, the model
# learned to spell the marker out of ordinary tokens instead of emitting the special token
# (the field reports' `</s>` symptom: a template rendered to text and tokenized again).
LITERAL_END_MARKERS = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


def reply_warnings(tokenizer, text: str, stop_reason: str, *, sampled: bool = False) -> list[str]:
    """What is wrong with a reply, as codes the UI explains: `length_no_eos` (it ran into the
    token limit instead of ending its turn under greedy decoding: the model did not learn to
    stop), `length_no_eos_sampled` (the same while sampling, where a long reply can be chance:
    greedy decoding tells), `literal_eos` (it typed an end marker as text)."""
    found = []
    if stop_reason == "length":
        found.append("length_no_eos_sampled" if sampled else "length_no_eos")
    markers = set(LITERAL_END_MARKERS)
    markers.update(t for t in [getattr(tokenizer, "eos_token", None)] if t)
    markers.update(tokenizer.convert_ids_to_tokens(end_of_turn_ids(tokenizer)))
    if any(m in text for m in markers):  # special tokens were skipped: this is literal text
        found.append("literal_eos")
    return found


def build_prompt(
    tokenizer,
    prompt: str = "",
    *,
    chat: bool,
    system: str | None = None,
    messages: list[dict] | None = None,
) -> list[int]:
    """Token ids of a prompt: plain text, or (chat) the template applied to `messages` (or to
    one user turn holding `prompt`) with the assistant's turn opened."""
    if chat or messages:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError(
                "This tokenizer has no chat template; turn chat mode off.", code="no_chat_template"
            )
        turns = list(messages) if messages else [{"role": "user", "content": prompt}]
        if system and not any(m.get("role") == "system" for m in turns):
            turns.insert(0, {"role": "system", "content": system})
        out = apply_chat_template(
            tokenizer, turns, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(out["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def generate_kwargs(loaded, settings: GenerationSettings, eos: list[int]) -> dict:
    tok = loaded.tokenizer
    kwargs = dict(
        max_new_tokens=int(settings.max_new_tokens),
        do_sample=not settings.greedy,
        repetition_penalty=float(settings.repetition_penalty),
        eos_token_id=eos or None,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else (eos or [0])[0],
    )
    if not settings.greedy:
        kwargs.update(
            temperature=float(settings.temperature),
            top_p=float(settings.top_p),
            top_k=int(settings.top_k),
        )
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs


def generate(
    loaded,
    prompt: str = "",
    settings: GenerationSettings | None = None,
    *,
    chat: bool = False,
    system: str | None = None,
    messages: list[dict] | None = None,
    streamer=None,
) -> GenerationResult:
    """Generate one reply. With `messages` (a conversation ending in a user turn) the chat
    template renders the whole conversation; `streamer` receives tokens as they come."""
    import torch

    from studio.models.load import transformers_names

    set_seed = transformers_names("set_seed")

    settings = (settings or GenerationSettings()).validate()
    model, tok = loaded.model, loaded.tokenizer
    input_ids = build_prompt(tok, prompt, chat=chat, system=system, messages=messages)
    if not input_ids:
        raise InputError(
            "The prompt is empty after tokenization; type something first.", code="empty_prompt"
        )
    eos = stop_ids(model, tok)
    kwargs = generate_kwargs(loaded, settings, eos)
    if streamer is not None:
        kwargs["streamer"] = streamer
    ids = torch.tensor([input_ids], device=loaded.device)
    set_seed(int(settings.seed))
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
    seconds = time.perf_counter() - started
    new = out[0, len(input_ids) :].tolist()
    stopped = bool(new) and new[-1] in eos
    text = tok.decode(new, skip_special_tokens=True)
    reason = "eos" if stopped else "length"
    return GenerationResult(
        prompt=prompt if not messages else str(messages[-1].get("content", "")),
        text=text,
        raw_text=tok.decode(new, skip_special_tokens=False),
        prompt_tokens=len(input_ids),
        new_tokens=len(new),
        stop_reason=reason,
        stop_token=tok.convert_ids_to_tokens(new[-1]) if stopped else None,
        seconds=round(seconds, 3),
        settings=asdict(settings),
        warnings=reply_warnings(tok, text, reason, sampled=not settings.greedy),
        first_token_seconds=_first_token_seconds(streamer, started),
    )


def _first_token_seconds(streamer, started: float) -> float | None:
    first = getattr(streamer, "first", None)  # TextStream notes when its first token came
    return round(first - started, 3) if first is not None else None


class TextStream:
    """A streamer for `model.generate` whose iterator yields the reply decoded so far each
    time it grows by whole characters. (transformers' TextIteratorStreamer holds text back
    until a space or a CJK ideograph, so Japanese kana arrive a sentence at a time.)"""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.queue: queue.Queue = queue.Queue()
        self.prompt_seen = False
        self.first: float | None = None  # perf_counter() when the first new token arrived

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        if self.first is None:
            self.first = time.perf_counter()
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):  # not in the middle of a multi-byte character
            self.queue.put(text)

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while (text := self.queue.get()) is not None:
            yield text


def stream(
    loaded,
    prompt: str = "",
    settings: GenerationSettings | None = None,
    *,
    chat: bool = False,
    system: str | None = None,
    messages: list[dict] | None = None,
) -> Iterator[str | GenerationResult]:
    """Generate one reply, yielding the text so far as it grows, then the finished
    `GenerationResult`. The caller holds the model (`with pool.use(...)`) while iterating."""
    streamer = TextStream(loaded.tokenizer)
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = generate(
                loaded,
                prompt,
                settings,
                chat=chat,
                system=system,
                messages=messages,
                streamer=streamer,
            )
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
            streamer.end()

    worker = threading.Thread(target=work, name="studio-generate", daemon=True)
    worker.start()
    shown = ""
    for text in streamer:
        if text != shown:
            shown = text
            yield text
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["result"]
