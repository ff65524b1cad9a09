"""What this machine can do: device, precision, and whether unsloth's fast path is usable.

torch is imported lazily so that `python -m studio --help` stays instant.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import resource
import sys
from functools import lru_cache

LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "gradio", "unsloth")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def pick_device(prefer: str | None = None) -> str:
    import torch

    if prefer and prefer != "auto":
        return prefer
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str):
    """fp32 on CPU (bf16 there is many times slower without native bf16 units), bf16 on
    GPUs that support it, else fp16."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def prefer_expandable_segments() -> bool:
    """Before a training process first touches CUDA: let torch's allocator grow and shrink
    its segments instead of caching fixed blocks, which fragment when batch shapes vary.
    Measured on an H100 (docs/benchmarks.md), the qwen2.5-7b-qlora preset: 17.2 GiB
    allocated either way, 25.8 GiB reserved by the default allocator (26.6 GiB in
    nvidia-smi, more than the 24 GB card the preset is sized for) and 19.1 GiB with
    expandable segments (19.9 GiB in nvidia-smi). A value the user set is kept. Returns
    whether it was set here."""
    import os

    if any(os.environ.get(k) for k in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")):
        return False
    import torch

    if not torch.cuda.is_available() or torch.cuda.is_initialized():
        return False  # no CUDA, or too late: the allocator read its settings already
    os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    return True


@lru_cache(maxsize=1)
def unsloth_status() -> tuple[bool, str]:
    """(usable, reason). unsloth is only imported when CUDA is present: on a CPU its import
    raises, and it must come before transformers to patch it."""
    if importlib.util.find_spec("unsloth") is None:
        return False, "unsloth is not installed (optional: pip install -r requirements-gpu.txt)"
    import torch

    if not torch.cuda.is_available():
        return False, "unsloth is installed but needs a CUDA GPU; using transformers + peft"
    late = "transformers" in sys.modules and "unsloth" not in sys.modules
    try:
        import unsloth  # noqa: F401
    except (ImportError, NotImplementedError, RuntimeError) as exc:
        return False, f"unsloth failed to import ({type(exc).__name__}: {exc})"
    if late:  # said, not hidden: unsloth patches transformers when it is imported first
        return True, "unsloth fast path (imported after transformers: some patches may be missing)"
    return True, "unsloth fast path available"


def device_report() -> dict:
    import torch

    device = pick_device()
    report = {
        "device": device,
        "dtype": str(pick_dtype(device)).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": sys.version.split()[0],
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        report["gpu"] = props.name
        report["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        report["bf16_supported"] = torch.cuda.is_bf16_supported()
    usable, reason = unsloth_status()
    report["unsloth"] = {"usable": usable, "reason": reason}
    report["backend"] = "unsloth" if usable else "transformers+peft+trl"
    return report
