"""The run config: one typed, documented description of a training run, saved as YAML.

Presets, the Train tab and `python -m studio train` all produce a `RunConfig`; each run
directory keeps its resolved copy as `config.yaml`. Wherever transformers, peft or trl
already name a setting, the field carries that name (`learning_rate`, `max_steps`,
`per_device_train_batch_size`, `r`, `lora_alpha`, ...), so knowledge and existing configs
carry over.

    model: tsumugi-tiny
    dataset: sample-chat-ojousama        # NAME, NAME/v0002, or a list of them
    encoding: {stage: sft, max_length: 256, packing: isolated}   # or a profile name
    method: lora                         # full | lora | qlora | galore
    lora: {r: 16, lora_alpha: 32}
    training: {learning_rate: 2.0e-4, num_train_epochs: 3}
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from studio.errors import StudioError
from studio.labels.encode import EncodingSettings
from studio.safety import YamlRefused, load_yaml
from studio.settings import as_bool, as_int, field_help

METHODS = ("full", "lora", "qlora", "galore")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("auto", "transformers", "unsloth")
SCHEDULES = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)
INTERVALS = ("no", "steps", "epoch")
# Experiment trackers a run can mirror its metrics to: transformers' `report_to` names, and
# the package each needs (requirements-trackers.txt has the first two).
TRACKERS = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
MAX_INT = 2**31 - 1  # the largest count (steps, batch size, rank, seed) a setting may hold


class ConfigError(StudioError, ValueError):
    """A config the user must correct; the message names the field."""


@dataclass
class LoraSettings:
    """peft `LoraConfig` fields (used by `lora` and `qlora`)."""

    r: int = 16
    """Rank of the update matrices: the capacity of the adapter (8-64 is usual)."""
    lora_alpha: int = 32
    """Scaling numerator: the update is scaled by lora_alpha / r (or / sqrt(r) with rsLoRA)."""
    lora_dropout: float = 0.05
    """Dropout on the adapter's input during training (0-0.1 is usual)."""
    target_modules: str | list[str] = "all-linear"
    """Module names to adapt (q_proj, v_proj, ...), or `all-linear` (every linear but the head)."""
    use_rslora: bool = False
    """Rank-stabilised scaling lora_alpha / sqrt(r): keeps high ranks learning."""
    use_dora: bool = False
    """Weight-decomposed LoRA: separate magnitude and direction (slower, sometimes better)."""


@dataclass
class QloraSettings:
    """bitsandbytes 4-bit loading of the frozen base (CUDA only)."""

    bnb_4bit_quant_type: str = "nf4"
    """4-bit number format of the frozen base: `nf4` (usual) or `fp4`."""
    bnb_4bit_use_double_quant: bool = True
    """Also quantize the quantization constants: about 0.4 bits per weight less memory."""


@dataclass
class GaloreSettings:
    """GaLore: full-parameter training with low-rank projected optimizer states."""

    rank: int = 128
    """Rank of the projected optimizer states: lower saves memory, higher follows the
    gradient more closely."""
    update_proj_gap: int = 200
    """Steps between recomputing the projection (SVD of the gradient)."""
    scale: float = 0.25
    """Scale of the projected update (GaLore's alpha)."""
    target_modules: list[str] = field(default_factory=lambda: [r".*attn.*", r".*mlp.*"])
    """Regular expressions (or names) of the modules whose weights GaLore projects."""
    layerwise: bool = False
    """Update each layer right after its backward pass: less memory, no grad accumulation."""


@dataclass
class TrainingSettings:
    """transformers `TrainingArguments` fields, under their own names."""

    learning_rate: float = 2e-4
    """Peak learning rate (LoRA: 1e-4 to 3e-4 is usual; full fine-tuning: 1e-5 or less)."""
    lr_scheduler_type: str = "cosine"
    """How the learning rate changes over the run after warm-up (`cosine`, `linear`,
    `constant`, ...)."""
    warmup_steps: float = 0.03
    """Warm-up: whole steps, or a fraction of all steps when below 1."""
    weight_decay: float = 0.0
    """Weight decay of AdamW (0 is usual for LoRA)."""
    num_train_epochs: float = 1.0
    """Passes over the training data (used when max_steps is -1)."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run `num_train_epochs`)."""
    per_device_train_batch_size: int = 4
    """Sequences per forward pass. Memory grows with it; see the estimate."""
    per_device_eval_batch_size: int = 4
    """Sequences per evaluation forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward passes per optimizer step: the effective batch is this times the batch size,
    without the memory."""
    max_grad_norm: float = 1.0
    """Clip the gradient's norm to this (0: no clipping)."""
    optim: str = "adamw_torch"
    """Optimizer name as transformers knows it (adamw_torch, adamw_8bit, adafactor, ...);
    GaLore picks its own."""
    precision: str = "auto"
    """`auto` (fp32 on CPU, bf16 on GPUs that have it, else fp16), `fp32`, `bf16`, `fp16`."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: much less memory, about 30 % slower."""
    logging_steps: int = 1
    """Log loss, learning rate and speed every this many steps."""
    eval_strategy: str = "no"
    """When to compute the evaluation loss: `no`, every eval_steps (`steps`) or each
    `epoch`."""
    eval_steps: int | None = None
    """Steps between evaluations: the validation loss and the evaluation suites (empty: at
    each checkpoint, every save_steps)."""
    save_strategy: str = "steps"
    """When to save a checkpoint: `no`, every save_steps (`steps`) or each `epoch`."""
    save_steps: int = 50
    """Steps between checkpoints (a run can be resumed from the last one)."""
    save_total_limit: int | None = 3
    """Keep at most this many checkpoints, deleting the oldest (empty: keep all)."""
    seed: int = 42
    """Random seed for shuffling, dropout and initialisation: the same seed gives the same
    run."""
    report_to: list[str] = field(default_factory=list)
    """Also mirror the metrics to these trackers: `tensorboard` (event files in the run's
    folder, `tensorboard/`), `trackio` (local and offline, in its usual folder, project
    tsumugi-studio), `wandb` (when installed and logged in). The run folder stays the record."""
    attention: str = "auto"
    """Attention kernel: `auto` (FlashAttention 2 when flash-attn is installed and the run
    trains on a CUDA GPU in bf16 or fp16, else PyTorch's SDPA), `sdpa`, `flash_attention_2`
    or `eager`. With isolated packing, FlashAttention 2 trains each batch as one row without
    padding (its variable-length kernel); SDPA keeps the rows and masks each document from
    the others. The run's log says which one runs."""
    fused_loss: str = "auto"
    """Fused kernels: `auto` (Liger Kernel's fused linear cross-entropy, with its RMSNorm,
    RoPE and SwiGLU, when liger-kernel is installed, the run trains on a CUDA GPU and Liger
    supports the architecture: the logits are then never materialised, which matters most
    for large vocabularies such as Qwen's 152k and Gemma's 256k), `liger`, or `off`."""


ATTENTIONS = ("auto", "sdpa", "flash_attention_2", "eager")
FUSED_LOSSES = ("auto", "liger", "off")

# Metrics where lower is better; every other score (exact match, MRR, accuracy) is higher.
LOWER_IS_BETTER = ("loss", "perplexity", "nll_per_token", "bits_per_char")


PREFERENCE_LOSSES = ("dpo", "ipo", "orpo", "simpo", "kto")


@dataclass
class PreferenceSettings:
    """Preference training (`encoding.stage: preference`), through trl's trainers."""

    loss: str = "dpo"
    """`dpo` (sigmoid DPO), `ipo`, `kto` (trl's DPOTrainer / KTOTrainer, against a reference:
    the base with the adapters turned off for LoRA), `orpo` or `simpo` (no reference model;
    trl's ORPOTrainer and CPOTrainer)."""
    beta: float = 0.1
    """How far the model may move from the reference (DPO/IPO/KTO/SimPO's beta; ORPO's
    lambda, the weight of its odds-ratio term). Smaller lets it move further."""
    simpo_gamma: float = 0.5
    """SimPO's target reward margin (only for `simpo`)."""
    desirable_weight: float = 1.0
    """KTO: the weight of the desirable completions' loss (raise it when they are rarer)."""
    undesirable_weight: float = 1.0
    """KTO: the weight of the undesirable completions' loss."""


@dataclass
class EvaluationSettings:
    """Scores computed while training, on the model in training: the Evaluate tab's suites,
    beside the validation loss."""

    suites: list[str] = field(default_factory=list)
    """Evaluation suites of the workspace scored at every evaluation (training.eval_steps),
    with the Evaluate tab's code: `sample-eval-qa`, `sample-eval-rank/v0001`, ..."""
    metric_for_best_model: str | None = None
    """What the best checkpoint is best at: `eval_loss`, or a suite's metric as
    `SUITE.METRIC` (`sample-eval-rank.mrr_full`). Empty: the first suite's main metric, else
    eval_loss when the run evaluates."""
    early_stopping_patience: int = 0
    """Stop when that metric has not improved for this many evaluations (0: never stop
    early)."""
    early_stopping_threshold: float = 0.0
    """The smallest change of the metric that counts as an improvement."""
    max_new_tokens: int = 32
    """Longest answer generated for short-answer QA suites (as in the Evaluate tab)."""

    def best_metric(self, evaluates_loss: bool) -> str | None:
        """The metric the best checkpoint and early stopping follow, with the suites'
        main metrics (`evaluate.tasks.PRIMARY`) known only once the suites are open: here
        `SUITE.*` stands for the first suite's main one."""
        if self.metric_for_best_model:
            return self.metric_for_best_model
        if self.suites:
            return f"{self.suites[0]}.*"
        return "eval_loss" if evaluates_loss else None


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of `metric` (`eval_loss`, `SUITE.METRIC`) is better."""
    name = metric.rsplit(".", 1)[-1].removeprefix("eval_")
    return name not in LOWER_IS_BETTER


@dataclass
class RunConfig:
    """Everything a run needs. `python -m studio train` reads exactly this."""

    model: str = "tsumugi-tiny"
    """Base model: embedded name, workspace model, local folder or hub id."""
    dataset: str | list[str] = "sample-chat-ojousama"
    """Dataset version(s) in the workspace: NAME, NAME/v0002, or a list (concatenated)."""
    eval_dataset: str | None = None
    """Dataset version used for evaluation (None: hold out `validation_split` of the data)."""
    validation_split: float = 0.0
    """Share of the training rows held out for evaluation when `eval_dataset` is not set."""
    encoding: EncodingSettings | str = field(default_factory=EncodingSettings)
    """Encoding settings, the inspector's: inline, or the name of a saved settings profile."""
    method: str = "lora"
    """How the model learns: `lora` (small adapters on a frozen base), `qlora` (LoRA on a
    4-bit base, CUDA only), `galore` (all weights, low-rank optimizer states) or `full`
    (all weights)."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """LoRA settings (used by `lora` and `qlora`)."""
    qlora: QloraSettings = field(default_factory=QloraSettings)
    """4-bit loading of the base (used by `qlora`)."""
    galore: GaloreSettings = field(default_factory=GaloreSettings)
    """GaLore settings (used by `galore`)."""
    training: TrainingSettings = field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    """Evaluation suites scored while training, the best checkpoint and early stopping."""
    preference: PreferenceSettings = field(default_factory=PreferenceSettings)
    """The preference loss and its settings (used by `encoding.stage: preference`)."""
    """Optimizer, schedule, batch and checkpoint settings, as transformers names them."""
    name: str | None = None
    """Run name prefix (a timestamp is added); defaults to the preset or method."""
    note: str = ""
    """A free note kept with the run (shown and searchable in the Runs tab)."""
    backend: str = "auto"
    """`auto`: unsloth when CUDA is present, it imports and supports the method; else
    transformers + peft. `transformers` forces the plain path."""
    device: str = "auto"
    """Where to train: `auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:1`, `mps`."""
    trust_remote_code: bool = False
    """Run Python code shipped with a hub model. Off unless you trust its author."""
    allow_pickle: bool = False
    """Load `*.bin` pickle weights when no safetensors exist (pickles can run code)."""
    allow_blocked: bool = False
    """Start even when the label inspector finds an error-level problem."""
    allow_over_memory: bool = False
    """Start even when the memory estimate says the run will not fit `gpu_memory_gib`."""
    gpu_memory_gib: float = 24.0
    """GPU size the memory estimate is checked against."""
    architecture: dict | None = None
    """Architecture facts (config.json fields) for the memory estimate when the model is not
    on disk yet; presets for hub models carry them so the estimate works offline."""

    def validate(self) -> RunConfig:
        _choice("method", self.method, METHODS)
        _choice("backend", self.backend, BACKENDS)
        t = self.training
        _choice("training.precision", t.precision, PRECISIONS)
        _choice("training.lr_scheduler_type", t.lr_scheduler_type, SCHEDULES)
        _choice("training.eval_strategy", t.eval_strategy, INTERVALS)
        _choice("training.save_strategy", t.save_strategy, INTERVALS)
        for tracker in t.report_to:
            _choice("training.report_to", tracker, tuple(TRACKERS))
        _choice("training.attention", t.attention, ATTENTIONS)
        _choice("training.fused_loss", t.fused_loss, FUSED_LOSSES)
        positive = {
            "training.learning_rate": t.learning_rate,
            "training.per_device_train_batch_size": t.per_device_train_batch_size,
            "training.per_device_eval_batch_size": t.per_device_eval_batch_size,
            "training.gradient_accumulation_steps": t.gradient_accumulation_steps,
            "training.logging_steps": t.logging_steps,
            "lora.r": self.lora.r,
            "galore.rank": self.galore.rank,
            "galore.update_proj_gap": self.galore.update_proj_gap,
            "gpu_memory_gib": self.gpu_memory_gib,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(
                    f"{name} must be greater than 0 (got {value})",
                    code="must_be_positive",
                    field=name,
                    value=value,
                )
        if t.max_steps <= 0 and t.num_train_epochs <= 0:
            raise ConfigError(
                "set training.max_steps or training.num_train_epochs above 0", code="no_length"
            )
        if not 0 <= self.validation_split < 1:
            raise ConfigError(
                "validation_split must be at least 0 and below 1",
                code="bad_share",
                field="validation_split",
            )
        if not 0 <= self.lora.lora_dropout < 1:
            raise ConfigError(
                "lora.lora_dropout must be at least 0 and below 1",
                code="bad_share",
                field="lora.lora_dropout",
            )
        for name in ("warmup_steps", "weight_decay", "max_grad_norm", "num_train_epochs"):
            if getattr(t, name) < 0:
                raise ConfigError(
                    f"training.{name} must not be negative",
                    code="must_not_be_negative",
                    field=f"training.{name}",
                )
        if not self.model:
            raise ConfigError("model must name a base model", code="no_model")
        if not self.datasets:
            raise ConfigError(
                "dataset must name at least one dataset version", code="no_dataset_named"
            )
        if isinstance(self.encoding, EncodingSettings):
            try:
                self.encoding.validate()
            except StudioError as exc:  # its own code: said in the user's language too
                raise ConfigError(f"encoding: {exc}", code=exc.code, **exc.params) from exc
        self._validate_evaluation()
        self._validate_preference()
        return self

    def _validate_preference(self) -> None:
        p = self.preference
        _choice("preference.loss", p.loss, PREFERENCE_LOSSES)
        for name in ("beta", "desirable_weight", "undesirable_weight"):
            if getattr(p, name) <= 0:
                raise ConfigError(
                    f"preference.{name} must be greater than 0 (got {getattr(p, name)})",
                    code="must_be_positive",
                    field=f"preference.{name}",
                    value=getattr(p, name),
                )
        if (
            isinstance(self.encoding, EncodingSettings)
            and self.encoding.stage == "preference"
            and self.encoding.packing != "off"
        ):
            raise ConfigError(
                "preference training compares whole replies and does not pack rows; set "
                "encoding.packing: off",
                code="preference_packing",
            )

    @property
    def preference_stage(self) -> bool:
        return isinstance(self.encoding, EncodingSettings) and self.encoding.stage == "preference"

    def _validate_evaluation(self) -> None:
        e = self.evaluation
        for name in ("early_stopping_patience", "early_stopping_threshold"):
            if getattr(e, name) < 0:
                raise ConfigError(
                    f"evaluation.{name} must not be negative",
                    code="must_not_be_negative",
                    field=f"evaluation.{name}",
                )
        if e.max_new_tokens <= 0:
            raise ConfigError(
                f"evaluation.max_new_tokens must be greater than 0 (got {e.max_new_tokens})",
                code="must_be_positive",
                field="evaluation.max_new_tokens",
                value=e.max_new_tokens,
            )
        metric = e.metric_for_best_model
        if metric and metric != "eval_loss":
            suite, _, name = metric.rpartition(".")
            if suite not in e.suites or not name:
                raise ConfigError(
                    f"evaluation.metric_for_best_model {metric!r} must be eval_loss or "
                    "SUITE.METRIC of a suite in evaluation.suites (sample-eval-rank.mrr_full)",
                    code="bad_best_metric",
                    metric=metric,
                    suites=", ".join(e.suites) or "-",
                )
        if metric == "eval_loss" and not self.evaluates:
            raise ConfigError(
                "evaluation.metric_for_best_model is eval_loss, but the run has no validation "
                "data: set validation_split or eval_dataset",
                code="no_validation_data",
            )
        if e.early_stopping_patience and not e.best_metric(self.evaluates):
            raise ConfigError(
                "early stopping needs something to evaluate: list evaluation.suites, or set "
                "validation_split or eval_dataset",
                code="nothing_to_evaluate",
            )

    @property
    def datasets(self) -> list[str]:
        return [self.dataset] if isinstance(self.dataset, str) else list(self.dataset)

    @property
    def evaluates(self) -> bool:
        return bool(self.eval_dataset or self.validation_split > 0)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if isinstance(self.encoding, EncodingSettings):
            data["encoding"] = self.encoding.to_dict()
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict | None) -> RunConfig:
        return _build(cls, dict(data or {}), "").validate()

    def replace(self, **changes) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def with_overrides(self, overrides: dict) -> RunConfig:
        """This config with `overrides` applied and checked: field paths (`lora.r`) or their
        short names (`max_length`), as `--set` takes them, to values already typed. The
        Train tab's fields and `--set` (`apply_sets`) both end here; a number given for a
        whole-number field (a form's 4.0) is read as that whole number (`settings.as_int`)."""
        data = self.to_dict()
        fields = settable_fields()
        for key, value in overrides.items():
            _set_path(data, _field_path(key, fields), value)
        return RunConfig.from_dict(data)


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{name} must be one of {', '.join(allowed)} (got {value!r})",
            code="not_a_choice",
            field=name,
            value=value,
            choices=", ".join(allowed),
        )


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping of fields")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise ConfigError(
            f"unknown field(s){where}: {', '.join(unknown)}; known: {', '.join(sorted(names))}",
            code="unknown_fields",
            fields=", ".join(unknown),
            known=", ".join(sorted(names)),
        )
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**values)


def _coerce(hint, value, name: str):
    """Check one value against its annotation, with YAML's habits forgiven (`2e-4` is read as
    a string by YAML 1.1; an int where a float is expected is fine)."""
    if hint is EncodingSettings or (
        _union_args(hint) and EncodingSettings in _union_args(hint) and isinstance(value, dict)
    ):
        if value.get("packing") is False:
            value = {**value, "packing": "off"}  # `packing: off` in YAML 1.1 is a boolean
        try:
            return EncodingSettings.from_dict(value)
        except (TypeError, ValueError) as exc:
            known = {"code": exc.code, **exc.params} if isinstance(exc, StudioError) else {}
            raise ConfigError(f"{name}: {exc}", **known) from exc
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, f"{name}.")
    options = _union_args(hint) or (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{name} must not be empty")
    for option in options:
        if option is type(None):
            continue
        try:
            result = _as(option, value)
        except (TypeError, ValueError, OverflowError):
            continue
        return _in_range(result, name)
    raise ConfigError(
        f"{name}: expected {_describe(options)}, got {value!r}",
        code="wrong_type",
        field=name,
        expected=_describe(options),
        value=value,
    )


def _in_range(value, name: str):
    """Refuse numbers no setting can use: NaN and infinities, and integers beyond what the
    libraries store (a typo of a few extra digits, or a pasted value)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r})")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ConfigError(f"{name} is too large (got {value}); it must be at most {MAX_INT:,}")
    return value


def _union_args(hint) -> tuple:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return ()


def _as(kind, value):
    if kind is bool:
        return as_bool(value)  # studio/settings.py: one reading for every setting
    if kind is int:
        return as_int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError("boolean")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise TypeError("not a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError("not a string")
    if typing.get_origin(kind) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise TypeError("not a list of strings")
    if kind is dict:
        if isinstance(value, dict):
            return value
        raise TypeError("not a mapping")
    raise TypeError(f"unsupported type {kind}")


def _describe(options) -> str:
    words = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "text",
        dict: "a mapping",
    }
    parts = [
        "a list of text" if typing.get_origin(o) is list else words.get(o, str(o))
        for o in options
        if o is not type(None)
    ]
    if type(None) in options:
        parts.append("empty")
    return " or ".join(parts)


def _owner(path: str) -> tuple[type, str, object]:
    """(dataclass, field name, annotation) of a dotted config field."""
    cls = RunConfig
    *parents, leaf = path.split(".")
    for part in parents:
        hint = typing.get_type_hints(cls)[part]
        cls = next(a for a in _union_args(hint) or (hint,) if dataclasses.is_dataclass(a))
    return cls, leaf, typing.get_type_hints(cls)[leaf]


def is_integer_field(path: str) -> bool:
    """Whether a dotted config field (`training.max_steps`, `encoding.max_length`) holds a
    whole number, as its annotation says."""
    hint = _owner(path)[2]
    return int in (_union_args(hint) or (hint,))


def setting_help(path: str, lang: str = "en") -> str:
    """The help of a dotted config field in `lang` (`settings.field_help`): what the CLI's
    `train --settings` prints and the Train tab shows under the field."""
    cls, name, _ = _owner(path)
    return field_help(cls, name, path, lang)


def describe_settings(lang: str = "en") -> list[dict]:
    """Every field a config, `--set` or the form can set: its dotted path, what it takes,
    its default and its help."""
    defaults = RunConfig().to_dict()
    rows = []
    for path in _field_paths():
        if path == "encoding":  # its fields are listed one by one
            continue
        hint = _owner(path)[2]
        default = defaults
        for part in path.split("."):
            default = default.get(part) if isinstance(default, dict) else None
        rows.append({
            "setting": path,
            "takes": _describe(_union_args(hint) or (hint,)),
            "default": default,
            "help": setting_help(path, lang),
        })  # fmt: skip
    return rows


def _field_paths(cls=RunConfig, prefix: str = "") -> dict[str, str]:
    """Every settable field as `section.name` -> the same; bare names that are unique map to
    their dotted path too (`learning_rate` -> `training.learning_rate`)."""
    hints = typing.get_type_hints(cls)
    paths: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and hint is not EncodingSettings:
            paths.update(_field_paths(hint, f"{prefix}{f.name}."))
        elif f.name == "encoding":
            for ef in dataclasses.fields(EncodingSettings):
                paths[f"encoding.{ef.name}"] = f"encoding.{ef.name}"
            paths["encoding"] = "encoding"
        else:
            paths[f"{prefix}{f.name}"] = f"{prefix}{f.name}"
    return paths


def settable_fields() -> dict[str, str]:
    dotted = _field_paths()
    by_leaf: dict[str, list[str]] = {}
    for path in dotted:
        by_leaf.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    aliases = {leaf: paths[0] for leaf, paths in by_leaf.items() if len(paths) == 1}
    return {**aliases, **dotted}


def _field_path(key: str, fields: dict[str, str]) -> str:
    """The dotted path of a settable field (`settable_fields()`) named by its path or its
    short name."""
    path = fields.get(key.strip())
    if path is None:
        close = [f for f in fields if key.split(".")[-1] in f][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown field {key!r}{hint}")
    return path


def _set_path(data: dict, path: str, value) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        if part == "encoding" and isinstance(node.get(part), str):
            raise ConfigError(
                f"encoding is the profile {node[part]!r}; set its fields in the profile, "
                "or replace it with encoding=... first"
            )
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict | None) else {}
    node[parts[-1]] = value


def apply_sets(data: dict, assignments: list[str]) -> dict:
    """Apply `key=value` overrides (values parsed as YAML) to a config mapping."""
    fields = settable_fields()
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy, plain types
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        path = _field_path(key, fields)
        try:
            value = load_yaml(raw) if raw.strip() else None
        except YamlRefused as exc:
            raise ConfigError(f"--set {key}: {exc}") from None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw.strip()  # YAML 1.1 reads off/on/yes/no as booleans: packing=off
        _set_path(data, path, value)
    return data


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no config file at {path}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError, YamlRefused) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping of config fields")
    data.pop("preset", None)  # presets describe themselves; the run config does not need it
    data.pop("description", None)
    return data
