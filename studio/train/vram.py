"""Peak GPU memory of a fine-tuning run, estimated before launch from config.json alone.

`estimate()` returns the size of each part (weights, adapters, gradients, optimizer states,
activations, logits, overhead), the expected peak, whether it fits the GPU, and, when it does
not, concrete changes ordered by how much each one saves (each change is re-estimated, so the
numbers in the advice are this model's own, not rules of thumb).

The model follows the studio's own training path (studio/train/backends.py, loop.py):
transformers `Trainer` with `bf16`/`fp16` autocast, peft LoRA, bitsandbytes 4-bit for QLoRA,
galore-torch for GaLore, sdpa attention, non-reentrant gradient checkpointing of each decoder
layer. Each modelling assumption sits next to the number it produces, with the reason. Figures
are bytes; the target is within ~15 % of `torch.cuda.max_memory_allocated()` (plus the CUDA
context, which that counter does not see). `bench/vram_estimate.py` measures the error.

Pure Python: no torch import, no network; safe to call from the UI on every change.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

from studio.errors import InputError

GIB = 1 << 30

METHODS = ("full", "lora", "qlora", "galore")
PRECISIONS = ("bf16", "fp16", "fp32")
OPTIMIZERS = ("adamw", "adamw_fused", "adamw_8bit", "sgd", "adafactor")
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
REFERENCES = ("none", "adapter", "copy")
PARTS = (
    "weights",
    "adapters",
    "gradients",
    "optimizer",
    "activations",
    "logits",
    "reference",
    "overhead",
)
ADVICE_CODES = (
    "enable_gradient_checkpointing",
    "reduce_batch",
    "shorter_seq",
    "lora_to_qlora",
    "full_to_lora",
    "use_8bit_adam",
    "lower_lora_rank",
    "lower_galore_rank",
    "use_bf16",
    "lower_eval_batch",
)
# The evaluation code's batches (studio/evaluate/scoring.py): padded tokens and kept logits
# per scoring forward, prompts per generation batch.
SCORING_BATCH_TOKENS = 8192
SCORING_LOGIT_BUDGET = 2**26
GENERATION_BATCH = 16

# bitsandbytes NF4 with double quantization: 4 bits a weight, one 8-bit absmax per block of
# 64 weights, and one fp32 scale per 256 of those absmax values (the second quantization).
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
# Without double quantization each 64-weight block keeps an fp32 absmax.
NF4_PLAIN_BYTES_PER_PARAM = 0.5 + 4 / 64
# The CUDA context (driver, cuBLAS/cuDNN handles, kernels) takes 0.3-0.6 GiB outside torch's
# allocator; the caching allocator keeps a few percent more reserved than allocated because
# activation shapes vary from batch to batch (fragmentation).
CUDA_CONTEXT_BYTES = GIB // 2
FRAGMENTATION = 0.05
# Mixture-of-experts configs: a dense estimate would be wrong, so they are refused.
_MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


@dataclass(frozen=True)
class Architecture:
    """The facts of a decoder-only (llama-style) model that memory depends on."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    head_dim: int | None = None
    tie_word_embeddings: bool = False
    model_type: str = "llama"
    qkv_bias: bool = False  # qwen2: bias on q/k/v only; llama attention_bias: on all four
    o_bias: bool = False
    mlp_bias: bool = False
    norms_per_layer: int = 2  # gemma2/3 add a norm after attention and after the MLP
    qk_norm: bool = False  # qwen3/gemma3: RMSNorm over head_dim on q and k

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_config(cls, cfg: dict) -> Architecture:
        """From a Hugging Face config.json dict (llama, mistral, qwen2/3, gemma 1-3, ...).
        Multimodal configs are read through their `text_config`."""
        if not isinstance(cfg, dict):
            raise InputError("the model config must be a dict read from config.json")
        text = cfg.get("text_config")
        if isinstance(text, dict) and "hidden_size" not in cfg:
            merged = {**text}
            merged.setdefault("tie_word_embeddings", cfg.get("tie_word_embeddings"))
            merged.setdefault("model_type", text.get("model_type") or cfg.get("model_type"))
            cfg = merged
        for key in _MOE_KEYS:
            if (cfg.get(key) or 0) > 0:
                raise InputError(
                    f"config.json has {key}={cfg[key]}: mixture-of-experts models are not "
                    "covered by the memory estimate"
                )

        def need(*names: str) -> int:
            for name in names:
                if cfg.get(name) is not None:
                    value = cfg[name]
                    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                        raise InputError(f"config.json field {name!r} must be a positive integer")
                    return value
            raise InputError(
                f"config.json has no {names[0]!r}, needed for the memory estimate"
                + (f" (also looked for {', '.join(map(repr, names[1:]))})" if names[1:] else "")
            )

        model_type = str(cfg.get("model_type") or "llama")
        hidden = need("hidden_size", "n_embd", "d_model")
        heads = need("num_attention_heads", "n_head")
        kv = cfg.get("num_key_value_heads") or heads
        head_dim = cfg.get("head_dim") or None
        if head_dim is None and hidden % heads:
            raise InputError(f"hidden_size {hidden} is not a multiple of {heads} heads")
        gemma = model_type.startswith("gemma")
        tied = cfg.get("tie_word_embeddings")
        if tied is None:  # transformers' class default when the file leaves it out
            tied = gemma
        attention_bias = bool(cfg.get("attention_bias", False))
        return cls(
            hidden_size=hidden,
            intermediate_size=need("intermediate_size", "n_inner", "ffn_dim"),
            num_hidden_layers=need("num_hidden_layers", "n_layer", "num_layers"),
            num_attention_heads=heads,
            num_key_value_heads=int(kv),
            vocab_size=need("vocab_size"),
            head_dim=int(head_dim) if head_dim else None,
            tie_word_embeddings=bool(tied),
            model_type=model_type,
            qkv_bias=attention_bias or model_type == "qwen2",
            o_bias=attention_bias,
            mlp_bias=bool(cfg.get("mlp_bias", False)),
            norms_per_layer=4 if model_type.startswith(("gemma2", "gemma3")) else 2,
            qk_norm=model_type.startswith(("qwen3", "gemma3", "olmo2")),
        )

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """Each decoder layer's linear modules: name -> (in_features, out_features)."""
        h, i, d = self.hidden_size, self.intermediate_size, self.dim
        q, kv = self.num_attention_heads * d, self.num_key_value_heads * d
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def _qk_norm_width(self) -> int:
        """Weights of the q/k norms of one layer: over head_dim (qwen3, gemma3) or over all
        heads (olmo2)."""
        if self.model_type.startswith("olmo2"):
            return (self.num_attention_heads + self.num_key_value_heads) * self.dim
        return 2 * self.dim

    def _biases(self) -> dict[str, int]:
        shapes = self.linear_shapes()
        out: dict[str, int] = {}
        for name, (_, n_out) in shapes.items():
            if (
                (name in ("q_proj", "k_proj", "v_proj") and self.qkv_bias)
                or (name == "o_proj" and self.o_bias)
                or (name not in _ATTN and self.mlp_bias)
            ):
                out[name] = n_out
        return out

    def layer_linear_weights(self) -> int:
        """Weight elements of the linear modules of all layers (what QLoRA quantizes)."""
        per_layer = sum(a * b for a, b in self.linear_shapes().values())
        return per_layer * self.num_hidden_layers

    def embedding_parameters(self) -> int:
        return self.vocab_size * self.hidden_size

    def parameter_count(self) -> int:
        """All parameters, as `sum(p.numel() for p in model.parameters())` counts them."""
        h = self.hidden_size
        per_layer = sum(a * b for a, b in self.linear_shapes().values())
        per_layer += sum(self._biases().values())
        per_layer += self.norms_per_layer * h
        if self.qk_norm:
            per_layer += self._qk_norm_width()
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return self.embedding_parameters() + head + self.num_hidden_layers * per_layer + h


@dataclass
class Estimate:
    """Sizes of the parts (bytes) and the expected peak.

    `total` is the peak the run is expected to reach, overhead included. It equals
    `sum(parts) - overlap`, because the parts do not all peak at the same moment: with one
    micro-batch per optimizer step, gradients are freed after each step and grow during the
    backward pass while activations are released; and the loss' backward (the logits'
    gradients) is over before the layers' backward allocates its working memory. With
    gradient accumulation the gradients stay across micro-batches and overlap less.
    """

    parts: dict[str, int]
    total: int
    gpu_bytes: int
    fits: bool
    advice: list[tuple[str, dict]] = field(default_factory=list)
    notes: list[tuple[str, dict]] = field(default_factory=list)
    overlap: int = 0
    settings: dict = field(default_factory=dict)
    # The two phases of a run that evaluates: the training step (`parts`) and the evaluation
    # pass (`evaluation`: its own parts), each with its total; `total` is the larger one,
    # and `peak` says which ("training" when the run does not evaluate).
    phases: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    peak: str = "training"

    @property
    def allocated(self) -> int:
        """What `torch.cuda.max_memory_allocated()` should report: the total without the CUDA
        context and fragmentation allowance."""
        if self.peak == "evaluation":
            return self.total - self.evaluation["overhead"]
        return self.total - self.parts["overhead"]

    def to_dict(self) -> dict:
        return {
            "parts": dict(self.parts),
            "parts_gib": {k: gib(v) for k, v in self.parts.items()},
            "overlap": self.overlap,
            "total": self.total,
            "total_gib": gib(self.total),
            "allocated": self.allocated,
            "gpu_bytes": self.gpu_bytes,
            "gpu_gib": gib(self.gpu_bytes),
            "fits": self.fits,
            "advice": [{"code": c, "params": dict(p)} for c, p in self.advice],
            "notes": [{"code": c, "params": dict(p)} for c, p in self.notes],
            "settings": dict(self.settings),
            "phases": dict(self.phases),
            "phases_gib": {k: gib(v) for k, v in self.phases.items()},
            "evaluation": dict(self.evaluation),
            "peak": self.peak,
        }


def gib(n: float, digits: int = 2) -> float:
    return round(n / GIB, digits)


@dataclass(frozen=True)
class _Setup:
    method: str
    precision: str
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    lora_r: int
    lora_targets: tuple[str, ...]
    optimizer: str
    galore_rank: int
    galore_targets: tuple[str, ...]
    gpu_gib: float
    grad_accum: int
    lora_dropout: float
    master_weights: bool
    fused_loss: bool
    qlora_upcast: bool
    double_quant: bool
    eval_batch_size: int = 0
    eval_suites: bool = False
    eval_new_tokens: int = 0
    reference: str = "none"


def estimate(
    arch: Architecture,
    *,
    method: str,
    precision: str,
    batch_size: int,
    seq_len: int,
    gradient_checkpointing: bool,
    lora_r: int = 16,
    lora_targets: list[str] | str = "all-linear",
    optimizer: str = "adamw",
    galore_rank: int = 128,
    galore_targets: list[str] | str = "all-linear",
    gpu_gib: float = 24.0,
    grad_accum: int = 1,
    lora_dropout: float = 0.05,
    master_weights: bool | None = None,
    fused_loss: bool = False,
    qlora_upcast: bool = True,
    double_quant: bool = True,
    eval_batch_size: int = 0,
    eval_suites: bool = False,
    eval_new_tokens: int = 0,
    reference: str = "none",
) -> Estimate:
    """Estimate the peak GPU memory of one training run.

    method: full | lora | qlora | galore. precision: bf16 | fp16 | fp32 (autocast dtype).
    optimizer: adamw (torch AdamW, foreach: the studio's `adamw_torch`), adamw_fused,
    adamw_8bit (bitsandbytes), sgd (no momentum, as transformers builds it), adafactor.
    lora_targets / galore_targets: "all-linear", module names (q_proj, ...), or a regular
    expression as peft and transformers accept them.

    Studio-path switches (defaults follow studio/train/backends.py and loop.py):
    grad_accum: gradient accumulation steps (>1 keeps gradients alive during the forward).
    lora_dropout: peft's dropout on each adapter's input (the studio's default 0.05).
    master_weights: full/galore keep fp32 weights under autocast. None: only for fp16, as the
      studio loads full/galore models in bf16 and trains them in pure bf16, but needs fp32
      master weights for fp16 (GradScaler cannot unscale fp16 gradients).
    fused_loss: the loss never builds the (tokens x vocab) logits (Liger Kernel's fused
      linear cross-entropy, which the studio uses on CUDA when it is installed; trl's
      SFTTrainer fused LM head; unsloth): chunks of the logits instead.
    qlora_upcast: peft's `prepare_model_for_kbit_training` casts every non-4-bit weight
      (embeddings, lm_head, norms) to fp32, as the studio's transformers backend does.

    The evaluation pass (a run that evaluates while training): eval_batch_size sequences of
    seq_len for the validation loss (0: no validation loss), eval_suites for the suites'
    scoring forwards (the evaluation code's batches), eval_new_tokens for the generation of
    short-answer QA suites (prompts assumed as long as seq_len: an upper bound). The peak
    of the run is the larger of the training step and the evaluation pass.

    Preference training (studio/train/preference.py): `batch_size` counts the sequences of
    one forward (a pair's chosen and rejected sides, or KTO's completions and their KL
    completions: twice the rows); `reference` is how the reference model's log-probs are
    made: `adapter` (LoRA with the adapters disabled: no second copy), `copy` (a frozen
    copy of the weights) or `none` (ORPO, SimPO). Its no-grad forward builds the full logits
    of the batch, before the policy's forward (trl 1.14.2), so it peaks on its own.
    """
    if reference not in REFERENCES:
        raise InputError(f"reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
    setup = _setup(
        method=method,
        precision=precision,
        batch_size=batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        lora_r=lora_r,
        lora_targets=lora_targets,
        optimizer=optimizer,
        galore_rank=galore_rank,
        galore_targets=galore_targets,
        gpu_gib=gpu_gib,
        grad_accum=grad_accum,
        lora_dropout=lora_dropout,
        master_weights=master_weights,
        fused_loss=fused_loss,
        qlora_upcast=qlora_upcast,
        double_quant=double_quant,
        eval_batch_size=eval_batch_size,
        eval_suites=eval_suites,
        eval_new_tokens=eval_new_tokens,
        reference=reference,
    )
    est = _estimate(arch, setup)
    if not est.fits:
        est.advice = _advise(arch, setup, est)
    return est


def _targets(value: list[str] | tuple[str, ...] | str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    items = tuple(str(v) for v in value)
    if not items:
        raise InputError(f"{what} is empty")
    return items


def _setup(**kw) -> _Setup:
    method, precision, optimizer = kw["method"], kw["precision"], kw["optimizer"]
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if optimizer == "adamw_torch":
        optimizer = "adamw"
    if optimizer == "adamw_torch_fused":
        optimizer = "adamw_fused"
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    for name in ("batch_size", "seq_len", "lora_r", "galore_rank", "grad_accum"):
        value = kw[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, not {value!r}")
    for name in ("eval_batch_size", "eval_new_tokens"):
        value = kw[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{name} must be a whole number of at least 0, not {value!r}")
    if not kw["gpu_gib"] or kw["gpu_gib"] <= 0:
        raise InputError("gpu_gib must be positive")
    if not 0 <= kw["lora_dropout"] < 1:
        raise InputError("lora_dropout must be at least 0 and below 1")
    master = kw["master_weights"]
    if master is None:
        master = precision == "fp16"
    kw.update(
        optimizer=optimizer,
        lora_targets=_targets(kw["lora_targets"], "lora_targets"),
        galore_targets=_targets(kw["galore_targets"], "galore_targets"),
        # fp32 master weights only mean something for full/galore with 16-bit autocast.
        master_weights=bool(master) and method in ("full", "galore") and precision != "fp32",
        gpu_gib=float(kw["gpu_gib"]),
    )
    return _Setup(**kw)


def _matches(targets: tuple[str, ...], name: str, full_name: str, *, peft_style: bool) -> bool:
    """peft / transformers target matching on a module's full name."""
    if targets == ("all-linear",):
        return name in LINEAR_MODULES
    for t in targets:
        if t == "all-linear" and name in LINEAR_MODULES:
            return True
        # peft: names match the end of the module path, a single string is a regular
        # expression over it; transformers' GaLore also matches substrings and expressions.
        if t == name or full_name.endswith("." + t) or full_name == t:
            return True
        if not peft_style and t in full_name:
            return True
        try:
            if re.fullmatch(t, full_name):
                return True
        except re.error:
            continue
    return False


def _full_name(name: str) -> str:
    return f"model.layers.0.{'self_attn' if name in _ATTN else 'mlp'}.{name}"


def _selected(arch: Architecture, targets: tuple[str, ...], what: str, *, peft_style: bool):
    chosen = [
        n
        for n in arch.linear_shapes()
        if _matches(targets, n, _full_name(n), peft_style=peft_style)
    ]
    if not chosen:
        raise InputError(
            f"{what} {list(targets)} matches none of the linear modules "
            f"({', '.join(LINEAR_MODULES)}); use their names or all-linear"
        )
    return chosen


@dataclass(frozen=True)
class _Regime:
    """Byte widths of the tensors of one setup."""

    cb: int  # matmul outputs: the autocast dtype (bf16/fp16), or fp32 without autocast
    rb: int  # the residual stream between layers
    pob: int  # q/k/v/gate/up outputs
    pb: int  # trainable parameters, their gradients and optimizer states
    kbit: bool  # QLoRA with prepare_model_for_kbit_training's fp32 upcast
    trains_all: bool


def _regime(s: _Setup) -> _Regime:
    half = s.precision in ("bf16", "fp16")
    kbit = s.method == "qlora" and s.qlora_upcast
    peft = s.method in ("lora", "qlora")
    return _Regime(
        cb=2 if half else 4,
        # The stream is fp32 when the weights that produce it are: master weights (fp32
        # embedding output; adds promote bf16 to fp32), or QLoRA after
        # prepare_model_for_kbit_training (fp32 embeddings and norms). Else the weights' dtype.
        rb=4 if (not half or s.master_weights or kbit) else 2,
        # autocast gives 16-bit outputs; bitsandbytes' Linear4bit casts its output back to its
        # input's dtype, so behind fp32 norms (kbit) they come out fp32.
        pob=4 if (not half or kbit) else 2,
        # fp32 master weights or fp32 training -> 4; pure bf16 full training (the studio's
        # bf16 default for full/galore) -> 2; peft keeps adapters in fp32
        # (LoraConfig's autocast_adapter_dtype=True) -> 4.
        pb=4 if (peft or not half or s.master_weights) else 2,
        kbit=kbit,
        trains_all=s.method in ("full", "galore"),
    )


def _lora_modules(arch: Architecture, s: _Setup) -> list[str]:
    if s.method not in ("lora", "qlora"):
        return []
    return _selected(arch, s.lora_targets, "lora_targets", peft_style=True)


def _layer_bytes_per_token(arch: Architecture, s: _Setup) -> int:
    """Bytes one decoder layer saves for the backward pass, per token (batch x seq)."""
    r = _regime(s)
    cb, rb, pob = r.cb, r.rb, r.pob
    h, inter, d = arch.hidden_size, arch.intermediate_size, arch.dim
    heads, kv_heads = arch.num_attention_heads, arch.num_key_value_heads
    ad = heads * d
    lora_modules = _lora_modules(arch, s)

    def norm_bytes(width: int) -> int:
        # RMSNorm upcasts to fp32; pow(2) saves that fp32 input. When the norm weight trains,
        # the multiply also saves the normalized tensor.
        return 4 * width + (rb * width if r.trains_all else 0)

    def input_bytes(width: int, xb: int, consumers: list[str]) -> int:
        """Saved copies of one tensor that feeds linear modules. Frozen weights save nothing
        (autograd keeps a matmul's input only for the weight's gradient)."""
        if r.trains_all:
            if xb == cb:
                return xb * width  # one tensor, shared by every consumer
            return cb * width * len(consumers)  # autocast casts it once per consumer
        targeted = [c for c in consumers if c in lora_modules]
        if not targeted:
            return 0
        per = 0
        if cb == 2:
            # peft casts the input to the fp32 adapter dtype, autocast casts it back to 16 bit
            # inside lora_A: each adapter saves its own 16-bit copy.
            per = 2 * width
        elif s.lora_dropout > 0:
            per = 4 * width  # the dropout output, saved by lora_A
        if s.lora_dropout > 0:
            per += width  # dropout's bool mask
        shared = 4 * width if (cb == 4 and s.lora_dropout == 0) else 0
        # lora_B saves lora_A's (rank-wide) output.
        return per * len(targeted) + shared + s.lora_r * cb * len(targeted)

    total = arch.norms_per_layer * norm_bytes(h)
    if arch.qk_norm:
        qk = (heads + kv_heads) * d
        total += 4 * qk + (pob * qk if r.trains_all else 0)
    # sdpa (memory-efficient kernel; flash attention takes no mask) saves q, k, v and its
    # output. With a padding mask transformers does not use sdpa's GQA path: repeat_kv
    # materializes k and v at the full head count. Plus an fp32 logsumexp per head.
    total += 4 * cb * ad + 4 * heads
    # The boolean mask becomes a (batch, 1, seq, seq rounded up to 16) float bias in every
    # layer, and the efficient kernel saves it for backward.
    total += cb * _round_up(s.seq_len, 16)
    total += input_bytes(h, rb, ["q_proj", "k_proj", "v_proj"])
    total += input_bytes(ad, cb, ["o_proj"])
    total += input_bytes(h, rb, ["gate_proj", "up_proj"])
    # SwiGLU: act(gate) saves gate's output, the product saves act's output and up's output.
    total += 3 * pob * inter
    total += input_bytes(inter, pob, ["down_proj"])
    return total


def _estimate(arch: Architecture, s: _Setup) -> Estimate:
    h, inter, layers = arch.hidden_size, arch.intermediate_size, arch.num_hidden_layers
    vocab = arch.vocab_size
    shapes = arch.linear_shapes()
    n_params = arch.parameter_count()
    tokens = s.batch_size * s.seq_len
    r = _regime(s)
    cb, rb, pob, pb, kbit, trains_all = r.cb, r.rb, r.pob, r.pb, r.kbit, r.trains_all
    half = s.precision in ("bf16", "fp16")

    # --- weights ----------------------------------------------------------------------------
    lin_layers = arch.layer_linear_weights()
    if trains_all:
        if s.master_weights:
            # fp32 weights, plus autocast's bf16 copy of every linear weight: cached for the
            # whole forward (the cache holds leaf tensors that require grad) and kept by the
            # graph until that layer's backward. The lm_head copy only without a fused loss.
            casts = lin_layers + (0 if s.fused_loss else vocab * h)
            weights = 4 * n_params + 2 * casts
        else:
            weights = (2 if half else 4) * n_params
    elif s.method == "lora":
        weights = (2 if half else 4) * n_params
    else:
        per = NF4_BYTES_PER_PARAM if s.double_quant else NF4_PLAIN_BYTES_PER_PARAM
        rest = n_params - lin_layers  # embeddings, lm_head, norms, biases stay unquantized
        weights = int(lin_layers * per) + rest * (4 if kbit else cb)

    # --- adapters ---------------------------------------------------------------------------
    lora_modules = _lora_modules(arch, s)
    adapter_params = layers * sum(s.lora_r * sum(shapes[m]) for m in lora_modules)
    adapters = adapter_params * 4  # fp32, see _Regime.pb

    # --- gradients --------------------------------------------------------------------------
    gradients = (n_params if trains_all else adapter_params) * pb

    # --- optimizer states (+ step-time temporaries) -----------------------------------------
    opt_states, step_temp = _optimizer_bytes(arch, s, pb, lora_modules)

    # --- activations ------------------------------------------------------------------------
    per_layer = _layer_bytes_per_token(arch, s)
    norm_final = 4 * h + (rb * h if trains_all else 0)
    # `saved` lives from the forward to the backward; `working` is what the backward builds
    # one layer at a time, after the loss' backward has freed the logits' gradients.
    if s.gradient_checkpointing:
        # Only each layer's input survives the forward; backward recomputes one layer at a
        # time, so one layer's full activations are alive at once.
        saved = tokens * layers * rb * h
        working = tokens * per_layer
    else:
        saved = tokens * layers * per_layer
        working = 0
    # Backward through one layer peaks in the MLP: two gradients of intermediate width are
    # alive while the down projection's saved input is already freed, plus two gradients of
    # the residual stream. Those gradients are fp32 when fp32 adapters (peft) or fp32
    # activations feed them; 16-bit only for full training in 16 bit.
    gab = 2 if (trains_all and half) else 4
    working += tokens * ((2 * gab - pob) * inter + 2 * max(rb, gab) * h)
    largest_matrix = max(a * b for a, b in shapes.values())
    if trains_all and s.master_weights:
        # The bf16 gradient of the largest weight before it is accumulated into fp32.
        working += 2 * largest_matrix
    if s.method == "qlora":
        # bitsandbytes dequantizes each 4-bit weight to 16 bit for the matmul, one at a time.
        working += cb * largest_matrix
    # Final norm, the lm_head input when the head trains, the batch tensors (ids, labels,
    # positions: int64) and the (batch, 1, seq, seq) boolean mask.
    saved += tokens * (norm_final + (rb * h if trains_all else 0) + 24)
    saved += s.batch_size * s.seq_len * s.seq_len
    activations = saved + working

    # --- logits -----------------------------------------------------------------------------
    head_trains = trains_all
    if s.fused_loss:
        # Tiles of 4096 tokens x 32768 vocabulary entries (trl's chunked log-prob kernel),
        # the masked hidden states it saves, and fp32 gradient accumulators.
        logits = min(tokens, 4096) * min(vocab, 32768) * cb
        logits += tokens * h * (rb + 4 + rb)
        if head_trains and pb != 4:
            logits += vocab * h * 4  # fp32 accumulator of the lm_head gradient
    else:
        # Plain transformers loss: logits (tokens x vocab) in the autocast dtype, upcast to
        # fp32, log_softmax output saved (fp32). At the start of backward the saved output,
        # its incoming gradient and the outgoing gradient are all fp32 and alive together:
        # 3 x 4 bytes a logit, more than the forward's 2 + 4 + 4.
        logits = 12 * tokens * vocab
    if kbit and not s.fused_loss:
        # The fp32 lm_head runs under autocast: its bf16 copy is kept for the backward.
        logits += 2 * vocab * h

    # --- reference model (preference training) -------------------------------------------
    reference = 0
    ref_forward = 0
    if s.reference != "none":
        # trl's reference forward: no grad, full logits in the compute dtype and their fp32
        # log-softmax; it runs before the policy's forward, with nothing saved yet.
        ref_forward = tokens * vocab * (cb + 4)
        if s.reference == "copy":
            reference = n_params * (2 if half else 4)

    # --- peak -------------------------------------------------------------------------------
    static = weights + adapters + opt_states + reference
    # The loss' backward (logits and their gradients) and the layers' backward (`working`)
    # come one after the other; both on top of the saved activations.
    forward_backward = max(saved + max(logits, working), ref_forward)
    # Gradients already alive at the forward/backward peak: with a fused loss the lm_head
    # gradient is made inside the loss' backward; a plain loss peaks before it exists.
    early = vocab * h * pb if (head_trains and s.fused_loss) else 0
    if s.grad_accum > 1:
        dynamic = gradients + max(forward_backward, step_temp)
    else:
        # Gradients are freed after each optimizer step; they are all there during the step
        # (with its temporaries), and all but the input embedding's (made last; a tied one
        # already holds the lm_head's) while the first layer's backward works.
        late = vocab * h * pb if (trains_all and not arch.tie_word_embeddings) else 0
        dynamic = max(
            forward_backward + early,
            gradients + step_temp,
            gradients - late + working,
        )
    allocated = static + dynamic
    overhead = CUDA_CONTEXT_BYTES + int(FRAGMENTATION * allocated)
    parts = {
        "weights": int(weights),
        "adapters": int(adapters),
        "gradients": int(gradients),
        "optimizer": int(opt_states + step_temp),
        "activations": int(activations),
        "logits": int(logits),
        **({"reference": int(reference + ref_forward)} if s.reference != "none" else {}),
        "overhead": int(overhead),
    }
    total = int(allocated + overhead)
    overlap = sum(parts.values()) - total
    gpu_bytes = int(s.gpu_gib * GIB)
    notes: list[tuple[str, dict]] = []
    if overlap > 0.05 * GIB:
        notes.append(("note_overlap", {"gib": gib(overlap, 1)}))
    if s.method == "qlora":
        notes.append(("note_qlora_cuda", {}))
    if s.optimizer == "adamw_8bit":
        notes.append(("note_8bit_cuda", {}))
    settings = asdict(s)
    settings["lora_targets"] = list(s.lora_targets)
    settings["galore_targets"] = list(s.galore_targets)
    phases = {"training": total}
    evaluation: dict = {}
    peak = "training"
    passes = _eval_passes(arch, s)
    if passes:
        # Between optimizer steps: the gradients are freed (zero_grad sets them to None), the
        # weights, adapters and optimizer states stay.
        kept = weights + adapters + opt_states
        evaluation = {name: int(size) for name, size in passes.items()}
        eval_allocated = kept + max(passes.values())
        evaluation["overhead"] = CUDA_CONTEXT_BYTES + int(FRAGMENTATION * eval_allocated)
        phases["evaluation"] = int(eval_allocated + evaluation["overhead"])
        if phases["evaluation"] > total:
            peak, total = "evaluation", phases["evaluation"]
            if phases["training"] <= gpu_bytes < total:
                notes.append(("note_eval_peak", {"gib": gib(total - phases["training"], 1)}))
    return Estimate(
        parts=parts,
        total=total,
        gpu_bytes=gpu_bytes,
        fits=total <= gpu_bytes,
        notes=notes,
        overlap=overlap,
        settings=settings,
        phases=phases,
        evaluation=evaluation,
        peak=peak,
    )


def _eval_passes(arch: Architecture, s: _Setup) -> dict[str, int]:
    """Bytes each kind of evaluation forward needs beyond the weights and optimizer states,
    under no_grad: the validation loss (`eval_loss`), the suites' log-probability scoring
    (`scoring`) and the QA suites' generation (`generation`)."""
    r = _regime(s)
    cb = r.cb
    h, inter, layers, vocab = (
        arch.hidden_size,
        arch.intermediate_size,
        arch.num_hidden_layers,
        arch.vocab_size,
    )
    kv_width = 2 * layers * arch.num_key_value_heads * arch.dim * cb  # a token's KV cache

    def forward(batch: int, width: int, logit_positions: int, cache: bool) -> int:
        tokens = batch * width
        # One layer at a time, nothing saved for a backward: the residual stream and its
        # fp32 normed copy, q/k/v/o and the MLP's three intermediate-width tensors, and the
        # (batch, 1, seq, seq) float mask.
        layer = tokens * (r.rb * h + 4 * h + cb * (arch.num_attention_heads * arch.dim * 2))
        layer += tokens * 3 * r.pob * inter + batch * width * _round_up(width, 16) * cb
        # Logits in the compute dtype, their fp32 copy and the fp32 log-softmax.
        logits = logit_positions * vocab * (cb + 8)
        return (tokens * kv_width if cache else 0) + max(layer, logits)

    passes: dict[str, int] = {}
    if s.eval_batch_size:
        # transformers' evaluation loop: the loss of whole sequences (use_cache is off with
        # gradient checkpointing, else the model builds a KV cache it then drops).
        b, w = s.eval_batch_size, s.seq_len
        passes["eval_loss"] = forward(b, w, b * w, cache=not s.gradient_checkpointing)
    if s.eval_suites:
        width = min(s.seq_len, SCORING_BATCH_TOKENS)
        batch = max(1, SCORING_BATCH_TOKENS // width)
        keep = min(batch * width, SCORING_LOGIT_BUDGET // vocab or 1)
        passes["scoring"] = forward(batch, width, keep, cache=False)
    if s.eval_new_tokens:
        width = s.seq_len + s.eval_new_tokens
        passes["generation"] = forward(GENERATION_BATCH, width, GENERATION_BATCH, cache=True)
    return passes


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _tensors(arch: Architecture) -> list[tuple[str, tuple[int, ...]]]:
    """Every parameter tensor of one layer-stack model, as (module name, shape); a layer's
    tensors appear once and are multiplied by the layer count by the caller."""
    h = arch.hidden_size
    out: list[tuple[str, tuple[int, ...]]] = []
    for name, (n_in, n_out) in arch.linear_shapes().items():
        out.append((name, (n_out, n_in)))
    for name, n in arch._biases().items():
        out.append((name + ".bias", (n,)))
    out += [("norm", (h,))] * arch.norms_per_layer
    if arch.qk_norm:
        out.append(("qk_norm", (arch._qk_norm_width(),)))
    return out


def _optimizer_bytes(
    arch: Architecture, s: _Setup, pb: int, lora_modules: list[str]
) -> tuple[int, int]:
    """(states, step-time temporaries) in bytes."""
    layers, h, vocab = arch.num_hidden_layers, arch.hidden_size, arch.vocab_size
    shapes = arch.linear_shapes()
    # Trainable tensors: (shape, count, galore-projected?)
    trainable: list[tuple[tuple[int, ...], int, bool]] = []
    if s.method in ("lora", "qlora"):
        for m in lora_modules:
            n_in, n_out = shapes[m]
            trainable += [((s.lora_r, n_in), layers, False), ((n_out, s.lora_r), layers, False)]
    else:
        galore = set()
        if s.method == "galore":
            galore = set(_selected(arch, s.galore_targets, "galore_targets", peft_style=False))
        for name, shape in _tensors(arch):
            trainable.append((shape, layers, name in galore))
        trainable.append(((vocab, h), 1, False))  # embeddings
        if not arch.tie_word_embeddings:
            trainable.append(((vocab, h), 1, False))  # lm_head
        trainable.append(((h,), 1, False))  # final norm

    states = 0
    largest_plain = 0
    largest_projected = 0
    largest_shape = (0, 0)
    for shape, count, projected in trainable:
        size = math.prod(shape)
        if projected:
            m, n = shape
            rank = min(s.galore_rank, m, n)
            # GaLore projects the gradient to (max dim x rank) and keeps Adam's moments of that
            # shape, plus the projection matrix (min dim x rank) in the gradient's dtype.
            states += count * (
                _state_bytes((max(m, n), rank), s.optimizer, pb) + min(m, n) * rank * pb
            )
            if size > largest_projected:
                largest_projected, largest_shape = size, (m, n)
        else:
            states += count * _state_bytes(shape, s.optimizer, pb)
            largest_plain = max(largest_plain, size)

    total_trainable = sum(math.prod(shape) * count for shape, count, _ in trainable)
    temp = 0
    if s.method == "galore":
        # galore-torch steps one tensor at a time in Python: sqrt(v)+eps and m/denom for a
        # full-size tensor, project_back to the full shape, and every update_proj_gap steps
        # (the first step too) an SVD of the fp32 gradient: copy + U + Vh.
        m, n = largest_shape
        k = min(m, n)
        svd = 4 * (m * n + m * k + k * n)  # fp32 copy of the gradient, U and Vh
        temp = max(2 * largest_plain * pb, largest_projected * pb, svd)
        if s.optimizer == "adafactor":
            temp = max(temp, 4 * 4 * largest_plain)
    elif s.optimizer == "adamw":
        # torch AdamW's foreach path (transformers' adamw_torch) allocates sqrt(v) for all
        # trainable tensors of a dtype at once.
        temp = total_trainable * pb
    elif s.optimizer == "adafactor":
        # transformers' Adafactor upcasts grad and weight to fp32 and builds grad**2 and the
        # update at full size, one tensor at a time.
        temp = 4 * 4 * max(largest_plain, largest_projected)
    return int(states), int(temp)


def _state_bytes(shape: tuple[int, ...], optimizer: str, pb: int) -> int:
    size = math.prod(shape)
    if optimizer in ("adamw", "adamw_fused"):
        return 2 * pb * size  # exp_avg and exp_avg_sq in the parameter's dtype
    if optimizer == "adamw_8bit":
        if size < 4096:  # bitsandbytes keeps small tensors' states in 32 bit
            return 8 * size
        return 2 * size + 2 * 4 * math.ceil(size / 256)  # uint8 states + fp32 block absmax
    if optimizer == "adafactor":
        if len(shape) >= 2:  # factored second moment: one row and one column vector, fp32
            return 4 * (math.prod(shape[:-1]) + shape[-1])
        return 4 * size
    return 0  # sgd without momentum (transformers' "sgd")


# --- advice -----------------------------------------------------------------------------------


def _advise(arch: Architecture, s: _Setup, est: Estimate) -> list[tuple[str, dict]]:
    """Single changes that lower the peak, each re-estimated, biggest saving first."""
    found: list[tuple[int, str, dict]] = []

    def add(code: str, change: dict, extra: dict | None = None) -> None:
        new = _estimate(arch, replace(s, **change))
        saves = est.total - new.total
        if saves < 0.05 * GIB:  # not worth a line
            return
        params = {"saves": gib(saves, 1), "total": gib(new.total, 1), **(extra or {})}
        found.append((saves, code, params))

    def first_fit(values: list[int], make) -> int:
        for v in values:
            if _estimate(arch, replace(s, **make(v))).fits:
                return v
        return values[-1]

    if not s.gradient_checkpointing:
        add("enable_gradient_checkpointing", {"gradient_checkpointing": True})
    if s.batch_size > 1:
        effective = s.batch_size * s.grad_accum
        options = _halvings(s.batch_size, 1)

        def batch_change(b: int) -> dict:
            return {"batch_size": b, "grad_accum": math.ceil(effective / b)}

        b = first_fit(options, batch_change)
        ga = math.ceil(effective / b)
        add(
            "reduce_batch",
            batch_change(b),
            {"batch_size": b, "grad_accum": ga, "effective": b * ga},
        )
    if s.seq_len > 256:
        seq = first_fit(_halvings(s.seq_len, 256), lambda v: {"seq_len": v})
        add("shorter_seq", {"seq_len": seq}, {"seq_len": seq})
    if s.method == "lora":
        add("lora_to_qlora", {"method": "qlora"})
    if s.method in ("full", "galore"):
        r = s.lora_r
        add(
            "full_to_lora",
            {"method": "lora", "lora_targets": ("all-linear",), "master_weights": False},
            {"rank": r},
        )
    if s.optimizer in ("adamw", "adamw_fused"):
        add("use_8bit_adam", {"optimizer": "adamw_8bit"})
    if s.method in ("lora", "qlora") and s.lora_r > 4:
        r = first_fit(_halvings(s.lora_r, 4), lambda v: {"lora_r": v})
        add("lower_lora_rank", {"lora_r": r}, {"rank": r})
    if s.method == "galore" and s.galore_rank > 16:
        r = first_fit(_halvings(s.galore_rank, 16), lambda v: {"galore_rank": v})
        add("lower_galore_rank", {"galore_rank": r}, {"rank": r})
    if s.precision == "fp32":
        add("use_bf16", {"precision": "bf16"})
    if est.peak == "evaluation" and s.eval_batch_size > 1:
        options = _halvings(s.eval_batch_size, 1)
        b = first_fit(options, lambda v: {"eval_batch_size": v})
        add("lower_eval_batch", {"eval_batch_size": b}, {"batch_size": b})
    found.sort(key=lambda item: -item[0])
    return [(code, params) for _, code, params in found]


def _halvings(value: int, floor: int) -> list[int]:
    out = []
    v = value // 2
    while v >= floor:
        out.append(v)
        v //= 2
    return out or [floor]


# --- text -------------------------------------------------------------------------------------


def advice_text(code: str, params: dict, lang: str) -> str:
    from studio.i18n import t

    return t(f"vram.{code}", lang, **params)


def summary_lines(est: Estimate, lang: str, *, with_advice: bool = True) -> list[str]:
    """Readable lines: each part in GiB, the total against the GPU, the verdict, notes and,
    when it does not fit, the advice."""
    from studio.i18n import t

    lines = []
    for part in PARTS:
        value = est.parts.get(part, 0)
        if part in ("adapters", "reference") and part not in est.parts:
            continue
        if part == "adapters" and not value:
            continue
        lines.append(t("vram.part_line", lang, label=t(f"vram.part_{part}", lang), gib=_f(value)))
    if "evaluation" in est.phases:
        lines.append(
            t(
                "vram.phases_line",
                lang,
                training=_f(est.phases["training"]),
                evaluation=_f(est.phases["evaluation"]),
                peak=t(f"vram.peak_{est.peak}", lang),
            )
        )
    lines.append(t("vram.total_line", lang, total=_f(est.total), gpu=_f(est.gpu_bytes)))
    if est.fits:
        lines.append(t("vram.fits", lang, free=_f(est.gpu_bytes - est.total)))
    else:
        lines.append(t("vram.does_not_fit", lang, over=_f(est.total - est.gpu_bytes)))
    lines += [t(f"vram.{code}", lang, **params) for code, params in est.notes]
    if with_advice:
        lines += ["- " + advice_text(code, params, lang) for code, params in est.advice]
    return lines


def _f(n: int) -> str:
    return f"{n / GIB:.1f}"
