"""Text generation from a loaded model: one call, with the facts that matter for judging a
fine-tune (how many tokens, whether it stopped on EOS/end-of-turn or ran into the limit)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from studio.models.info import end_of_turn_ids, generation_eos_ids


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
            raise ValueError("max_new_tokens must be between 1 and 8192")
        if not self.greedy and not 0 < float(self.temperature) <= 5:
            raise ValueError("temperature must be in (0, 5]")
        if not 0 < float(self.top_p) <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if float(self.repetition_penalty) <= 0:
            raise ValueError("repetition_penalty must be > 0")
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


def build_prompt(tokenizer, prompt: str, *, chat: bool, system: str | None = None) -> list[int]:
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("This tokenizer has no chat template; turn chat mode off.")
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        out = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(out["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def generate(
    loaded,
    prompt: str,
    settings: GenerationSettings | None = None,
    *,
    chat: bool = False,
    system: str | None = None,
) -> GenerationResult:
    import torch

    from studio.models.load import transformers_names

    set_seed = transformers_names("set_seed")

    settings = (settings or GenerationSettings()).validate()
    model, tok = loaded.model, loaded.tokenizer
    input_ids = build_prompt(tok, prompt, chat=chat, system=system)
    if not input_ids:
        raise ValueError("The prompt is empty after tokenization; type something first.")
    eos = stop_ids(model, tok)
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
    ids = torch.tensor([input_ids], device=loaded.device)
    set_seed(int(settings.seed))
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
    seconds = time.perf_counter() - started
    new = out[0, len(input_ids) :].tolist()
    stopped = bool(new) and new[-1] in eos
    return GenerationResult(
        prompt=prompt,
        text=tok.decode(new, skip_special_tokens=True),
        raw_text=tok.decode(new, skip_special_tokens=False),
        prompt_tokens=len(input_ids),
        new_tokens=len(new),
        stop_reason="eos" if stopped else "length",
        stop_token=tok.convert_ids_to_tokens(new[-1]) if stopped else None,
        seconds=round(seconds, 3),
        settings=asdict(settings),
    )
