"""An exported GGUF as a model the Compare and Chat tabs can run, through llama.cpp.

`GGUFCausalLM.generate` takes what `studio.generate` hands a transformers model (prompt ids,
`max_new_tokens`, sampling settings, a streamer) and runs llama.cpp's own sampler, so a
fine-tune and its q4_k_m answer the same prompts side by side through one code path. The
prompt is rendered by the export's own tokenizer files (the training template); the self-check
proved llama.cpp splits it into the same ids. A reply ends where llama.cpp ends it: on the ids
its vocabulary marks as end of generation, which is what Ollama and LM Studio stop on.
"""

from __future__ import annotations

import atexit
import time
import weakref
from pathlib import Path
from types import SimpleNamespace

from studio.export import llama_cpp

# llama-cpp-python frees a model in its finalizer; at interpreter exit its library may be gone
# by then (a "NoneType is not callable" message). Open models are closed before that.
_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for model in list(_OPEN):
        model.close()


class GGUFCausalLM:
    """The slice of a transformers causal LM that generation and the model pool use."""

    def __init__(self, path: Path, n_ctx: int = 4096) -> None:
        self.path = path
        self.llm = llama_cpp.open_gguf(path, n_ctx=n_ctx)
        _OPEN.add(self)
        self.eog = llama_cpp.eog_ids(self.llm)
        self.generation_config = SimpleNamespace(eos_token_id=sorted(self.eog))
        self.config = SimpleNamespace(model_type="gguf", use_cache=True)

    # what the pool and the loaders call on a model
    def parameters(self):
        return iter(())

    def buffers(self):
        return iter(())

    def eval(self):
        return self

    def to(self, *args, **kwargs):  # noqa: ARG002
        return self

    def close(self) -> None:
        self.llm.close()

    def generate(self, input_ids, attention_mask=None, **kw):  # noqa: ARG002
        import torch

        prompt = [int(i) for i in input_ids[0].tolist()]
        limit = int(kw.get("max_new_tokens") or 64)
        room = self.llm.n_ctx() - len(prompt)
        if room <= 0:
            from studio.errors import InputError

            raise InputError(
                f"The prompt has {len(prompt)} tokens; this GGUF was opened with room for "
                f"{self.llm.n_ctx()}.",
                code="prompt_too_long",
            )
        limit = min(limit, room)
        greedy = not kw.get("do_sample", False)
        self.llm.set_seed(int(torch.initial_seed()) & 0x7FFFFFFF)
        streamer = kw.get("streamer")
        if streamer is not None:
            streamer.put(torch.tensor([prompt]))
        new: list[int] = []
        tokens = self.llm.generate(
            prompt,
            top_k=int(kw.get("top_k") or 0) if not greedy else 1,
            top_p=float(kw.get("top_p") or 1.0) if not greedy else 1.0,
            min_p=0.0,
            temp=0.0 if greedy else float(kw.get("temperature") or 1.0),
            repeat_penalty=float(kw.get("repetition_penalty") or 1.0),
            reset=True,
        )
        for token in tokens:
            new.append(int(token))
            if streamer is not None:
                streamer.put(torch.tensor([int(token)]))
            if token in self.eog or len(new) >= limit:
                break
        if streamer is not None:
            streamer.end()
        return torch.tensor([prompt + new])


def load_gguf(source, *, n_ctx: int = 4096):
    """A `LoadedModel` over an exported GGUF file: the export's tokenizer renders prompts,
    llama.cpp runs the model."""
    from studio.models.load import LoadedModel, ModelLoadError, ModelSource, load_tokenizer

    path = Path(source.ref)
    started = time.perf_counter()
    if not (path.parent / "tokenizer_config.json").is_file():
        raise ModelLoadError(
            f"{path.name} has no tokenizer files beside it; load a GGUF the studio exported"
        )
    tokenizer = load_tokenizer(ModelSource("local", str(path.parent), path.parent.name))
    try:
        model = GGUFCausalLM(path, n_ctx=n_ctx)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"llama.cpp could not load {path.name}: {exc}") from exc
    return LoadedModel(
        source=source,
        model=model,
        tokenizer=tokenizer,
        device="cpu",
        dtype="gguf",
        load_seconds=time.perf_counter() - started,
    )
