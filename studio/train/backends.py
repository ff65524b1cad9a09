"""Model + method: load the base, make the right parameters trainable, pick the backend.

- full: every weight trains.
- lora: peft LoRA adapters (rank, alpha, dropout, targets, rsLoRA, DoRA); base frozen.
- qlora: the frozen base loaded in 4 bit by bitsandbytes (CUDA only), LoRA on top.
- galore: every weight trains, with GaLore's low-rank projected optimizer (galore-torch).

unsloth's fast path is used for lora/qlora when CUDA is present and unsloth imports;
everything else runs on transformers + peft.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.errors import StudioError
from studio.hardware import pick_device, pick_dtype, unsloth_status
from studio.models.load import ModelLoadError, ModelSource, _check_weights_format

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# Module names unsloth and the VRAM estimate understand for "every linear layer".
LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
UNSLOTH_METHODS = ("lora", "qlora")


class BackendError(StudioError, RuntimeError):
    """The method cannot run here; the message says why and what to do instead."""


@dataclass
class Prepared:
    model: Any
    tokenizer: Any
    backend: str
    device: str
    precision: str
    trainable_parameters: int
    total_parameters: int
    optim: str
    optim_args: str | None = None
    optim_target_modules: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    kernels: Any = None  # kernels.Kernels: the attention and loss kernels, and why


def resolve_precision(requested: str, device: str) -> str:
    if requested != "auto":
        if device == "cpu" and requested == "fp16":
            raise BackendError("fp16 training needs a GPU; use fp32 on CPU")
        return requested
    name = str(pick_dtype(device)).removeprefix("torch.")
    return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[name]


def choose_backend(config, device: str) -> tuple[str, str]:
    """(backend, why)."""
    if config.backend == "transformers":
        return "transformers", "transformers + peft (chosen in the config)"
    if config.method not in UNSLOTH_METHODS:
        return "transformers", f"unsloth does not handle {config.method}; transformers + peft"
    if config.lora.use_dora:
        return "transformers", "DoRA runs on transformers + peft"
    if not device.startswith("cuda"):
        if config.backend == "unsloth":
            raise BackendError("the unsloth backend needs a CUDA GPU; set backend: auto")
        return "transformers", "no CUDA GPU: transformers + peft"
    usable, reason = unsloth_status()
    if not usable:
        if config.backend == "unsloth":
            raise BackendError(reason)
        return "transformers", reason
    return "unsloth", "unsloth fast path"


def check_method(config, device: str) -> None:
    if config.method == "qlora":
        if not device.startswith("cuda"):
            raise BackendError(
                "QLoRA loads the base model in 4 bit with bitsandbytes, which needs a CUDA GPU. "
                "On this machine choose LoRA (same adapters, 16/32-bit base) instead."
            )
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise BackendError("QLoRA needs bitsandbytes: pip install -r requirements-gpu.txt")
    if config.method == "galore":
        import importlib.util

        if importlib.util.find_spec("galore_torch") is None:
            raise BackendError("GaLore needs the galore-torch package: pip install galore-torch")
        if config.training.optim.endswith("8bit") and not device.startswith("cuda"):
            raise BackendError("8-bit GaLore needs a CUDA GPU; use optim adamw_torch on CPU")


def galore_optimizer(config) -> tuple[str, str, list[str]]:
    g = config.galore
    name = "galore_adamw_8bit" if config.training.optim.endswith("8bit") else "galore_adamw"
    if config.training.optim.startswith("adafactor"):
        name = "galore_adafactor"
    if g.layerwise:
        name += "_layerwise"
    args = f"rank={g.rank}, update_proj_gap={g.update_proj_gap}, scale={g.scale}"
    return name, args, list(g.target_modules)


def prepare(config, source: ModelSource, tokenizer) -> Prepared:
    """Load the base model for training and apply the method."""
    device = pick_device(config.device)
    check_method(config, device)
    precision = resolve_precision(config.training.precision, device)
    backend, why = choose_backend(config, device)
    if source.local_dir is not None:
        _check_weights_format(source.local_dir, config.allow_pickle)
    from studio.train import kernels

    attention, attention_why, flatten = kernels.attention_for(config, device, precision, backend)
    if backend == "unsloth":
        prepared = _prepare_unsloth(config, source, precision, device)
    else:
        prepared = _prepare_transformers(config, source, tokenizer, precision, device, attention)
    model_config = getattr(prepared.model, "config", None)
    model_type = getattr(model_config, "model_type", None)
    loaded = getattr(model_config, "_attn_implementation", None)
    if loaded and loaded != attention:  # the architecture has no SDPA: transformers chose
        attention, attention_why = loaded, f"{attention_why}; the architecture's default"
    fused, fused_why = kernels.fused_for(config, device, model_type, backend)
    prepared.kernels = kernels.Kernels(attention, attention_why, flatten, fused, fused_why)
    prepared.notes.insert(0, why)
    prepared.notes.extend(prepared.kernels.notes(config.encoding.packing))
    model = prepared.model
    if hasattr(model, "get_nb_trainable_parameters"):
        # peft counts a bitsandbytes 4-bit weight by its real size; numel() sees the packed
        # storage (a 7.6B QLoRA base counted as 4.4B on the GPU).
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    prepared.trainable_parameters, prepared.total_parameters = int(trainable), int(total)
    if prepared.trainable_parameters == 0:
        raise BackendError("no parameter is trainable; check lora.target_modules")
    return prepared


def _load_dtype(config, precision: str):
    import torch

    # A fully trained model in fp16 needs fp32 master weights (GradScaler cannot unscale
    # fp16 gradients); bf16 trains in pure bf16, as LLaMA-Factory and unsloth do.
    if config.method in ("full", "galore") and precision == "fp16":
        return torch.float32
    return getattr(torch, DTYPES[precision])


def _prepare_transformers(
    config, source, tokenizer, precision, device, attention: str = "sdpa"
) -> Prepared:
    from studio.models.load import _hub_error, transformers_names

    AutoModelForCausalLM = transformers_names("AutoModelForCausalLM")  # noqa: N806
    kwargs: dict = {
        "dtype": _load_dtype(config, precision),
        "trust_remote_code": config.trust_remote_code,
        "use_safetensors": not config.allow_pickle,
    }
    if attention == "flash_attention_2" or config.training.attention != "auto":
        # Otherwise transformers' own default: SDPA where the architecture has it, else eager.
        kwargs["attn_implementation"] = attention
    if config.method == "qlora":
        import torch

        BitsAndBytesConfig = transformers_names("BitsAndBytesConfig")  # noqa: N806
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=config.qlora.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=config.qlora.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=getattr(torch, DTYPES[precision]),
        )
        kwargs["device_map"] = {"": 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(source.ref, **kwargs)
    except (OSError, ValueError) as exc:
        if source.kind == "hub":
            raise _hub_error(source, exc) from exc
        raise ModelLoadError(f"Could not load the model {source.name}: {exc}") from exc
    model.config.use_cache = False  # the cache is useless in training and costs memory
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    optim, optim_args, optim_targets = config.training.optim, None, None
    notes: list[str] = []
    if config.method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if config.method == "qlora":
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=config.training.gradient_checkpointing
            )
        elif config.training.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed frozen embeddings need this
        lora = config.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.lora_alpha,
                lora_dropout=lora.lora_dropout,
                target_modules=lora.target_modules,
                use_rslora=lora.use_rslora,
                use_dora=lora.use_dora,
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    elif config.method == "galore":
        optim, optim_args, optim_targets = galore_optimizer(config)
        if optim.endswith("layerwise") and config.training.gradient_accumulation_steps > 1:
            raise BackendError("layer-wise GaLore cannot accumulate gradients; set it to 1")
    if config.method != "qlora":
        model.to(device)
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        backend="transformers",
        device=device,
        precision=precision,
        trainable_parameters=0,
        total_parameters=0,
        optim=optim,
        optim_args=optim_args,
        optim_target_modules=optim_targets,
        notes=notes,
    )


def _prepare_unsloth(config, source, precision, device) -> Prepared:  # pragma: no cover - GPU
    import torch
    from unsloth import FastLanguageModel

    lora = config.lora
    targets = LINEAR_MODULES if lora.target_modules == "all-linear" else lora.target_modules
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=source.ref,
        max_seq_length=config.encoding.max_length,
        dtype=getattr(torch, DTYPES[precision]),
        load_in_4bit=config.method == "qlora",
        trust_remote_code=config.trust_remote_code,
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=lora.r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=targets,
        use_rslora=lora.use_rslora,
        bias="none",
        use_gradient_checkpointing="unsloth" if config.training.gradient_checkpointing else False,
        random_state=config.training.seed,
    )
    return Prepared(
        model=model,
        tokenizer=tokenizer,
        backend="unsloth",
        device=device,
        precision=precision,
        trainable_parameters=0,
        total_parameters=0,
        optim=config.training.optim,
    )
