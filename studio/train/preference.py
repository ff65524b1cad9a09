"""Preference training: DPO, IPO, KTO, ORPO and SimPO through trl's trainers, fed with the
studio's own encoded pairs (`studio.labels.pairs`), so what the Inspect tab shows is what
trains.

trl is pinned at 1.14.2 (requirements.txt): from 1.15 on, its DPO and KTO trainers compute
log-probs with a Triton kernel only (`fused_lm_head`), which CPU installs of torch cannot
run; 1.14.2 falls back to plain torch where Triton is missing. docs/training.md says more.

How each loss is wired (trl 1.14.2):

| loss | trainer | reference |
|---|---|---|
| dpo, ipo | `DPOTrainer` (`loss_type` sigmoid / ipo) | the base with the adapters off (LoRA), else a frozen copy |
| kto | `KTOTrainer` | the same |
| orpo | `trl.experimental.orpo.ORPOTrainer` | none |
| simpo | `trl.experimental.cpo.CPOTrainer` (`loss_type="simpo"`, `cpo_alpha=0`) | none |

The trainers' own tokenization is replaced by the encoded pairs: `_prepare_dataset`
(DPO, KTO) returns them as they are (KTO's mismatched KL completions are made as trl makes
them), and `tokenize_row` (ORPO, CPO) lays them out in those trainers' columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.data.records import RecordError, dataset_file, iter_records
from studio.errors import StudioError
from studio.labels.encode import EncodingSettings, Tokens
from studio.labels.pairs import PairChecker, checked_pairs
from studio.train.data import TrainingData

LOSSES = ("dpo", "ipo", "orpo", "simpo", "kto")
REFERENCE_FREE = ("orpo", "simpo")
BATCH_ROWS = 512  # rows encoded per call of the encoder
# Sequences in one forward per training row: a pair's two sides, or KTO's completion and its
# mismatched KL completion (the memory estimate's batch).
SEQUENCES_PER_ROW = 2
# The curves a preference run adds to its metrics (trl's log key -> the studio's).
METRICS = {
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
}


class PreferenceError(StudioError, ValueError):
    """Preference data that cannot train as configured; the message says why."""


def forms_for(loss: str) -> set[str]:
    """Row forms a loss trains on: pairs, and for KTO also judged single replies (a pair
    gives KTO two: its chosen reply as desirable, its rejected one as undesirable)."""
    return {"preference", "kto"} if loss == "kto" else {"preference"}


def reference_of(config) -> str:
    """How the reference log-probs are made (`vram.estimate`'s `reference`)."""
    if config.preference.loss in REFERENCE_FREE:
        return "none"
    return "adapter" if config.method in ("lora", "qlora") else "copy"


def preference_rows(ws, specs: list[str], loss: str):
    """(row number, canonical row) of the given versions, checked against the loss; a pair
    becomes two KTO rows for `kto`."""
    from studio.train.data import resolve_versions

    allowed = forms_for(loss)
    n = 0
    for version in resolve_versions(ws, specs):
        label = f"{version.name}/{version.version}"
        try:
            for record in iter_records(dataset_file(version)):
                if record.format not in allowed:
                    need = " or ".join(sorted(allowed))
                    raise PreferenceError(
                        f"{label} line {record.line}: a {record.format} row cannot train "
                        f"preference loss {loss}; it needs {need} rows (import a preference "
                        "set, or make pairs in the Compare tab)",
                        code="preference_form",
                        version=label,
                        line=record.line,
                        form=record.format,
                        loss=loss,
                        need=need,
                    )
                data = record.data
                if loss == "kto" and record.format == "preference":
                    prompt = data["prompt"]
                    yield n, {"prompt": prompt, "completion": data["chosen"], "label": True}
                    yield n + 1, {"prompt": prompt, "completion": data["rejected"], "label": False}
                    n += 2
                else:
                    yield n, data
                    n += 1
        except RecordError as exc:
            raise PreferenceError(f"{label}: {exc}") from exc
    if not n:
        raise PreferenceError(f"{', '.join(specs)} has no rows to train on")


@dataclass
class PairData(TrainingData):
    """What `process` trains on: `train`/`eval` are datasets of trl's columns (no token
    store), and `dropped` counts the pairs left out by reason."""

    dropped: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return super().to_dict() | {"dropped": self.dropped}


def _features(kto: bool):
    import datasets

    ids = datasets.List(datasets.Value("int32"))
    columns = {"row": datasets.Value("int64"), "prompt_ids": ids}
    if kto:
        columns |= {"completion_ids": ids, "label": datasets.Value("bool")}
    else:
        columns |= {"chosen_ids": ids, "rejected_ids": ids}
    return datasets.Features(columns)


def encode_versions(
    ws, specs: list[str], tok: Tokens, settings: EncodingSettings, loss: str, folder: Path
):
    """(an Arrow dataset of the encoded pairs that can train, the checker that saw every
    pair: its findings and what it kept and left out). The dataset is written under
    `folder` and memory-mapped, so memory holds a batch of rows, not the set."""
    # Written with datasets' own Arrow writer and memory-mapped back (no fingerprinting of
    # the tokenizer, as `Dataset.from_generator` would do).
    from datasets.arrow_writer import ArrowWriter

    from studio.data.store import hf_datasets

    checker = PairChecker(tok)
    pairs = checked_pairs(preference_rows(ws, specs, loss), tok, settings, checker,
                          batch=BATCH_ROWS)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.arrow"
    with ArrowWriter(features=_features(loss == "kto"), path=str(path)) as writer:
        for pair in pairs:
            if pair.reason is None:
                writer.write({"row": pair.row, **pair.features()})
        writer.finalize()
    return hf_datasets().Dataset.from_file(str(path)), checker


def build(ws, config, tok: Tokens, folder: Path) -> PairData:
    """The run's training and validation pairs, encoded into `folder`."""
    from studio.train.data import _held_out, resolve_versions

    started = time.perf_counter()
    settings, loss = config.encoding, config.preference.loss
    data, checker = encode_versions(ws, config.datasets, tok, settings, loss, folder / "train")
    versions = [v.spec for v in resolve_versions(ws, config.datasets)]
    eval_version, evaluation = None, []
    if not len(data):
        reasons = ", ".join(f"{k} ({v})" for k, v in sorted(checker.dropped.items())) or "none"
        raise PreferenceError(
            f"no pair of {', '.join(config.datasets)} can train (left out: {reasons}); open "
            "the Inspect tab to see why",
            code="no_pairs",
            reasons=reasons,
        )
    if config.eval_dataset:
        evaluation, _ = encode_versions(
            ws, [config.eval_dataset], tok, settings, loss, folder / "eval"
        )
        (eval_version,) = [v.spec for v in resolve_versions(ws, [config.eval_dataset])]
        train = data
    elif config.validation_split > 0 and len(data) > 1:
        held = _held_out(len(data), config.validation_split, config.training.seed)
        keep = np.setdiff1d(np.arange(len(data)), held)
        train, evaluation = data.select(keep), data.select(np.sort(held))
    else:
        train = data
    return PairData(
        train=train,
        eval=evaluation,
        versions=versions,
        eval_version=eval_version,
        rows=len(train),
        eval_rows=len(evaluation),
        tokens=checker.tokens,
        trained_tokens=checker.trained,
        seconds=time.perf_counter() - started,
        dropped=checker.dropped,
    )


# --- the trainers -----------------------------------------------------------------------
def _old_style_row(self, feature, model=None) -> dict:
    """ORPO/CPO's columns from an encoded pair (their `tokenize_row`)."""
    prompt = list(feature["prompt_ids"])
    out = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        ids = prompt + list(feature[f"{side}_ids"])
        out[f"{side}_input_ids"] = ids
        out[f"{side}_attention_mask"] = [1] * len(ids)
        out[f"{side}_labels"] = [-100] * len(prompt) + list(feature[f"{side}_ids"])
    return out


def trainer_parts(config):
    """(trl's trainer class with the studio's data in, its arguments class, the arguments
    only this loss takes)."""
    p = config.preference
    if p.loss in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        class Trainer(DPOTrainer):
            def _prepare_dataset(self, dataset, *args, **kwargs):
                return dataset  # encoded by studio.labels.pairs

        extra = {"loss_type": ["sigmoid" if p.loss == "dpo" else "ipo"], "beta": p.beta}
        return Trainer, DPOConfig, extra | {"max_length": None}
    if p.loss == "kto":
        from trl import KTOConfig, KTOTrainer

        class Trainer(KTOTrainer):
            def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
                if not self.calculate_KL:
                    return dataset

                # trl's KL estimate: each batch's completions rotated by one, so that every
                # prompt meets a completion written for another (as trl 1.14.2 makes them).
                def rotate(batch):
                    ids = batch["completion_ids"]
                    batch["KL_completion_ids"] = [ids[-1], *ids[:-1]]
                    return batch

                return dataset.map(
                    rotate, batched=True, batch_size=args.per_device_train_batch_size
                )

        extra = {
            "beta": p.beta,
            "desirable_weight": p.desirable_weight,
            "undesirable_weight": p.undesirable_weight,
            "max_length": None,
        }
        return Trainer, KTOConfig, extra
    if p.loss == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        class Trainer(ORPOTrainer):
            tokenize_row = _old_style_row

        return Trainer, ORPOConfig, {"beta": p.beta, "max_length": None}
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    class Trainer(CPOTrainer):
        tokenize_row = _old_style_row

    extra = {
        "loss_type": "simpo",
        "cpo_alpha": 0.0,
        "beta": p.beta,
        "simpo_gamma": p.simpo_gamma,
        "max_length": None,
    }
    return Trainer, CPOConfig, extra


def count_tokens(batch: dict) -> int:
    """Real tokens of a preference batch (every sequence's attention mask; the KL batch of
    KTO included, which also runs through the model)."""
    total = 0
    for key, value in batch.items():
        if key.endswith("attention_mask") and hasattr(value, "sum"):
            total += int(value.sum())
    return total


def metrics_of(logs: dict, prefix: str = "") -> dict:
    """The preference curves in a log record, under the studio's names."""
    out = {}
    for key, name in METRICS.items():
        value = logs.get(prefix + key)
        if value is not None:
            out[name] = float(value)
    return out


# --- does the model prefer the chosen replies? -------------------------------------------
SHARE_PAIRS = 512  # held-out pairs scored at most (before and after a run)


def side_logprobs(model, pairs, pad_id: int, device, batch_size: int = 8) -> list[tuple]:
    """Per pair: (mean log-prob per token of the chosen side, the same of the rejected side)
    under `model`, from the encoded pairs (`prompt_ids`, `chosen_ids`, `rejected_ids`).
    The mean, not the sum: a longer reply is not less preferred for being longer."""
    import torch

    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                chunk = [pairs[i] for i in range(start, min(start + batch_size, len(pairs)))]
                seqs, spans = [], []
                for pair in chunk:
                    for side in ("chosen_ids", "rejected_ids"):
                        prompt, reply = list(pair["prompt_ids"]), list(pair[side])
                        seqs.append(prompt + reply)
                        spans.append((len(prompt), len(prompt) + len(reply)))
                width = max(map(len, seqs))
                ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, seq in enumerate(seqs):
                    ids[i, : len(seq)] = torch.tensor(seq)
                    mask[i, : len(seq)] = 1
                logits = model(
                    input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False
                ).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1)
                target = ids[:, 1:].to(device)
                token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).cpu()
                means = [
                    float(token_logp[i, a - 1 : b - 1].mean()) if b > a else float("nan")
                    for i, (a, b) in enumerate(spans)
                ]
                out += list(zip(means[0::2], means[1::2], strict=True))
    finally:
        model.train(was_training)
    return out


def preferred_share(model, pairs, pad_id: int, device, *, limit: int = SHARE_PAIRS) -> dict:
    """The share of pairs (a dataset of encoded pairs) whose chosen reply the model finds
    likelier (per token) than the rejected one, and the mean gap, over the first `limit`."""
    n = min(len(pairs), limit)
    scored = side_logprobs(model, pairs.select(range(n)), pad_id, device)
    gaps = [c - r for c, r in scored]
    return {
        "pairs": n,
        "share": round(sum(g > 0 for g in gaps) / max(n, 1), 4),
        "mean_gap": round(sum(gaps) / max(n, 1), 4),
    }
