"""Generators: a batch of conversations in, one reply each out.

Two backends behind one interface (`generate(conversations) -> list[Reply]`):

- `vllm`, when the `vllm` package is installed, a CUDA GPU is present and the model is a
  full model folder (not a LoRA adapter). Imported only then.
- `transformers`: left-padded batched `generate` on the model the studio's model pool opens
  (so `run:<id>` adapters load over their base, like everywhere else).

`pick_backend` chooses and says why; the job shows the choice.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from studio.errors import InputError
from studio.generate import GenerationSettings, build_prompt, generate_kwargs, stop_ids

BACKENDS = ("auto", "vllm", "transformers")


@dataclass
class Reply:
    text: str  # with the template's response prefix in front
    new_tokens: int
    stopped: bool  # ended on an end-of-turn/EOS id (False: ran into the token limit)
    prompt_tokens: int = 0
    too_long: bool = False  # the prompt leaves no room for the reply in the model's context


def context_length(model_config, tokenizer) -> int | None:
    """How many tokens the model attends over (prompt and reply together), when it says."""
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10_000_000 else None


def fitting(
    lengths: list[int], settings: GenerationSettings, context: int | None
) -> tuple[list[int], list[Reply]]:
    """(the indices of the prompts whose reply fits the context, a `too_long` reply for every
    prompt, which the generated replies then replace)."""
    room = None if context is None else context - int(settings.max_new_tokens)
    fits = [i for i, n in enumerate(lengths) if room is None or n <= room]
    return fits, [Reply("", 0, False, n, too_long=True) for n in lengths]


def plain_prompt(conversation: list[dict]) -> str:
    """A conversation as text, for a model without a chat template."""
    return "\n\n".join(m["content"] for m in conversation) + "\n\n"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


# Why a backend was chosen, as codes the Data tab and the CLI say in words.
WHY = {
    "chosen": "transformers (chosen)",
    "vllm": "vLLM (installed, CUDA present)",
    "no_vllm": "transformers: vLLM is not installed (pip install -r requirements-synth.txt "
    "on a CUDA machine)",
    "no_cuda": "transformers: vLLM needs a CUDA GPU and none is present",
    "adapter": "transformers: vLLM here loads full models; merge the adapter in the Export "
    "tab first",
}


def pick_backend(requested: str, *, adapter: bool) -> tuple[str, str]:
    """(backend, why: a key of WHY) for `requested` (auto, vllm or transformers)."""
    if requested not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}", code="bad_backend")
    if requested == "transformers":
        return "transformers", "chosen"
    missing = None
    if not vllm_installed():
        missing = "no_vllm"
    elif not cuda_available():
        missing = "no_cuda"
    elif adapter:
        missing = "adapter"
    if missing is None:
        return "vllm", "vllm"
    if requested == "vllm":
        why = WHY[missing].removeprefix("transformers: ")
        raise InputError(why, code=f"vllm_{missing}")
    return "transformers", missing


class TransformersGenerator:
    backend = "transformers"

    def __init__(self, loaded, settings: GenerationSettings, prefix: str = "") -> None:
        self.loaded, self.settings, self.prefix = loaded, settings.validate(), prefix
        self.tokenizer = loaded.tokenizer
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.eos = stop_ids(loaded.model, self.tokenizer)
        self._prefix_ids = (
            list(self.tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else []
        )
        self.context = context_length(loaded.model.config, self.tokenizer)

    def prompt_ids(self, conversation: list[dict]) -> list[int]:
        """The conversation rendered by the model's chat template (or, without one, as plain
        text), with the assistant's reply opened and the response prefix in it."""
        if self.chat:
            ids = build_prompt(self.tokenizer, chat=True, messages=conversation)
        else:
            ids = list(self.tokenizer(plain_prompt(conversation))["input_ids"])
        return ids + self._prefix_ids

    def generate(self, conversations: list[list[dict]], seed: int = 0) -> list[Reply]:
        import torch

        from studio.models.load import transformers_names

        every = [self.prompt_ids(c) for c in conversations]
        fits, replies = fitting([len(p) for p in every], self.settings, self.context)
        if not fits:
            return replies
        prompts = [every[i] for i in fits]
        longest = max(len(p) for p in prompts)
        kwargs = generate_kwargs(self.loaded, self.settings, self.eos)
        pad = kwargs["pad_token_id"]
        ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])
        transformers_names("set_seed")(int(self.settings.seed) + seed)
        with torch.inference_mode():
            out = self.loaded.model.generate(
                input_ids=ids.to(self.loaded.device),
                attention_mask=mask.to(self.loaded.device),
                **kwargs,
            )
        for i, row in zip(fits, out[:, longest:].tolist(), strict=True):
            ends = [j for j, token in enumerate(row) if token in self.eos]
            new = row[: ends[0]] if ends else row
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            replies[i] = Reply(self.prefix + text, len(new) + bool(ends), bool(ends), len(every[i]))
        return replies


class VllmGenerator:
    backend = "vllm"

    def __init__(self, path, settings: GenerationSettings, prefix: str = "") -> None:
        from vllm import LLM  # an optional extra: imported only when chosen

        self.settings, self.prefix = settings.validate(), prefix
        self.llm = LLM(model=str(path), seed=int(settings.seed), trust_remote_code=False)
        self.tokenizer = self.llm.get_tokenizer()
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        config = getattr(self.llm, "model_config", None) or getattr(
            getattr(self.llm, "llm_engine", None), "model_config", None
        )
        self.context = getattr(config, "max_model_len", None)

    def generate(self, conversations: list[list[dict]], seed: int = 0) -> list[Reply]:
        from vllm import SamplingParams

        s = self.settings
        params = SamplingParams(
            max_tokens=int(s.max_new_tokens),
            temperature=0.0 if s.greedy else float(s.temperature),
            top_p=1.0 if s.greedy else float(s.top_p),
            repetition_penalty=float(s.repetition_penalty),
            seed=int(s.seed) + seed,
        )
        prompts = []
        for c in conversations:
            if self.chat:
                text = self.tokenizer.apply_chat_template(
                    c, tokenize=False, add_generation_prompt=True
                )
            else:
                text = plain_prompt(c)
            prompts.append(text + self.prefix)
        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        fits, replies = fitting(lengths, s, self.context)
        results = (
            self.llm.generate([prompts[i] for i in fits], params, use_tqdm=False) if fits else []
        )
        for i, result in zip(fits, results, strict=True):
            o = result.outputs[0]
            stopped = o.finish_reason == "stop"
            replies[i] = Reply(self.prefix + o.text, len(o.token_ids), stopped, lengths[i])
        return replies
