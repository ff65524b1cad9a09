"""Which attention kernel and which loss kernels a run uses, and why.

- Attention: FlashAttention 2 (`flash_attention_2`) when flash-attn is installed and the run
  trains on a CUDA GPU in bf16/fp16; else PyTorch's SDPA. With isolated packing, FA2's
  variable-length kernel takes a batch as ONE row of documents with restarting position ids
  (no padding token, no attention mask: `Collator(flatten=True)`); SDPA keeps the packed rows
  and transformers builds a block-diagonal causal mask from the position ids, so that no
  document attends to another either way.
- Fused kernels: Liger Kernel (`liger`) when installed, on CUDA, for an architecture it
  patches: its fused linear cross-entropy computes the loss chunk by chunk from the last
  hidden states, so the [tokens x vocabulary] logits are never materialised (with RMSNorm,
  RoPE and SwiGLU kernels besides). transformers applies it (`use_liger_kernel`).

Both choices are settings (`training.attention`, `training.fused_loss`), shown in the run's
header and kept in `run.json`, and the memory estimate follows them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from studio.train.backends import BackendError


@dataclass
class Kernels:
    attention: str  # an attn_implementation transformers accepts
    attention_why: str
    flatten: bool  # batches as one row without padding (FA2 with isolated packing)
    fused_loss: str  # "liger" or "off"
    fused_why: str

    def notes(self, packing: str = "isolated") -> list[str]:
        if self.flatten:
            layout = "each batch one row without padding (variable-length kernel)"
        elif packing == "isolated":
            layout = "packed rows, documents masked from each other"
        elif packing == "concatenated":
            layout = "packed rows, documents continuing into each other"
        else:
            layout = "one row per sequence, padded"
        return [
            f"attention: {self.attention} ({self.attention_why}); {layout}",
            f"fused loss: {self.fused_loss} ({self.fused_why})",
        ]


LIGER_WHY = "Liger Kernel: fused linear cross-entropy, no logits"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def liger_supports(model_type: str | None) -> bool:
    """Whether Liger Kernel patches this architecture (False when it is not installed)."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        return False
    return model_type in MODEL_TYPE_TO_APPLY_LIGER_FN


def attention_for(config, device: str, precision: str, backend: str) -> tuple[str, str, bool]:
    """(attn_implementation, why, flatten) for a run; raises BackendError when a kernel
    asked for by name cannot run here."""
    t = config.training
    cuda = device.startswith("cuda")
    half = precision in ("bf16", "fp16")
    if t.attention == "auto":
        if cuda and half and installed("flash_attn"):
            attention, why = "flash_attention_2", f"flash-attn installed, CUDA, {precision}"
        elif not cuda:
            attention, why = "sdpa", "no CUDA GPU"
        elif not half:
            attention, why = "sdpa", "FlashAttention 2 needs bf16 or fp16"
        else:
            attention, why = "sdpa", "flash-attn is not installed"
    else:
        attention, why = t.attention, "chosen"
        if attention == "flash_attention_2" and not (cuda and half and installed("flash_attn")):
            raise BackendError(
                "attention flash_attention_2 needs the flash-attn package, a CUDA GPU and "
                "bf16/fp16; set training.attention: auto",
                code="flash_attention_unavailable",
            )
    if backend == "unsloth":
        why += "; unsloth patches attention itself"
    return (
        attention,
        why,
        attention == "flash_attention_2" and config.encoding.packing == "isolated",
    )


def liger_blocker(device: str, model_type: str | None = None) -> str | None:
    """Why Liger Kernel cannot run here, or None; the architecture is asked about only when
    it is known (a check before the model is loaded does not know it)."""
    if not device.startswith("cuda"):
        return "no CUDA GPU"
    if not installed("liger_kernel"):
        return "liger-kernel is not installed"
    if model_type is not None and not liger_supports(model_type):
        return f"Liger does not patch {model_type}"
    return None


def fused_for(config, device: str, model_type: str | None, backend: str) -> tuple[str, str]:
    """("liger" or "off", why); raises BackendError when `liger` is asked for by name and
    cannot run here."""
    asked = config.training.fused_loss
    if asked == "off":
        return "off", "turned off"
    if backend == "unsloth":
        fused, why = "off", "unsloth fuses its own loss"
    else:
        blocker = liger_blocker(device, model_type)
        fused, why = ("off", blocker) if blocker else ("liger", LIGER_WHY)
    if asked == "liger" and fused != "liger":
        raise BackendError(
            f"fused_loss liger cannot run here: {why}; pip install -r requirements-gpu.txt on "
            "a CUDA machine, or set training.fused_loss: auto",
            code="liger_unavailable",
            why=why,
        )
    return fused, why
