#!/usr/bin/env python
"""Build the embedded default model `tsumugi-tiny` from the bundled data, on a CPU.

What it does (nanoGPT-style, one file, no network):

1. trains a byte-level BPE tokenizer (~6k vocab) on the corpus + chat + QA texts,
   with Llama-style BOS handling and a ChatML chat template that marks assistant
   turns with ``{% generation %}`` (for trl's ``assistant_only_loss``);
2. pre-trains a tiny Llama (random init, float32) on ``assets/data/corpus.jsonl``
   with a plain torch loop (AdamW, warmup + cosine, fixed step count or time budget);
3. saves model + tokenizer + generation config + ``training_summary.json`` + a model
   card into a temporary folder, reloads it with the Auto* classes as a self-check,
   then renames it into place (never leaves a half-written model folder).

Usage::

    python assets/build_tiny_model.py                              # full rebuild (~13 min, 2 CPU threads)
    python assets/build_tiny_model.py --out /tmp/x --max-steps 3   # smoke test (< 1 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shlex
import shutil
import sys
import time
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT / "data"
DEFAULT_OUT = ROOT / "models" / "tsumugi-tiny"
MODEL_NAME = "tsumugi-tiny"

# ---------------------------------------------------------------------------- settings
VOCAB_SIZE = 6000  # including the special tokens and the 256 byte symbols
CONTEXT = 512  # max_position_embeddings == tokenizer.model_max_length
SEQ_LEN = 256  # pre-training chunk length
BATCH_SIZE = 16
LR = 2e-3
MIN_LR_RATIO = 0.1  # cosine decays to LR * MIN_LR_RATIO
WARMUP_FRAC = 0.05
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
VAL_FRAC = 0.02  # share of documents held out for the validation loss
LOG_EVERY = 20
EVAL_EVERY = 200  # validation loss every N steps (cheap: ~2% of the documents)
DEFAULT_MAX_STEPS = 1500  # ~13 min on 2 CPU threads (~0.52 s/step, ~7,900 tok/s); ~15 epochs
DEFAULT_BUDGET_MIN = 15.0
CALIBRATE_STEPS = 5  # warm-up steps ignored when measuring s/step for the time budget
RESERVE_S = 30  # seconds of the time budget kept for evaluation, saving and self-checks

MODEL_KW = dict(
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=CONTEXT,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    initializer_range=0.02,
)

# ids follow the Llama convention: unk 0, bos 1, eos 2; then pad and the ChatML markers
UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [UNK, BOS, EOS, PAD, IM_START, IM_END]

# ChatML; assistant content *and* its <|im_end|> are inside the generation block, so
# return_assistant_tokens_mask / trl assistant_only_loss train the end-of-turn marker too.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------- data
def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # raw web data may be messy; a broken line is just skipped
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _message_texts(value) -> list[str]:
    """Texts from a string or a list of {role, content} messages."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [
            m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)
        ]
    return []


def load_texts(data_dir: Path) -> tuple[list[str], list[str]]:
    """Returns (corpus documents, extra texts for the tokenizer: chat + QA)."""
    corpus_path = data_dir / "corpus.jsonl"
    if not corpus_path.exists():
        sys.exit(f"error: {corpus_path} not found (run assets/build_sample_data.py first)")
    docs = [
        r["text"]
        for r in read_jsonl(corpus_path)
        if isinstance(r.get("text"), str) and r["text"].strip()
    ]
    extra: list[str] = []
    chat_path = data_dir / "chat_ojousama.jsonl"
    if chat_path.exists():
        for r in read_jsonl(chat_path):
            extra += _message_texts(r.get("messages"))
    qa_path = data_dir / "qa_pc.jsonl"
    if qa_path.exists():
        for r in read_jsonl(qa_path):
            extra += _message_texts(r.get("prompt")) + _message_texts(r.get("completion"))
    return docs, [t for t in extra if t.strip()]


# ---------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=UNK, byte_fallback=False))
    # no normalizer: bytes in == bytes out (exact round-trip for Japanese)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos_id = tok.token_to_id(BOS)
    # Llama-style: BOS in front of every sequence, no EOS added automatically
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, bos_id)]
    )
    # transformers 5: PreTrainedTokenizerFast is an alias of TokenizersBackend
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        extra_special_tokens=[IM_START, IM_END],
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=CONTEXT,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def encode_docs(tokenizer, docs: list[str]) -> list[list[int]]:
    """Each document as BOS + text + EOS."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    encoded = tokenizer.backend_tokenizer.encode_batch(docs, add_special_tokens=False)
    return [[bos, *enc.ids, eos] for enc in encoded]


def pack(seqs: list[list[int]], order: list[int] | torch.Tensor) -> torch.Tensor:
    """Concatenate the documents in `order` and cut into SEQ_LEN rows (the tail is dropped)."""
    stream = [t for i in order for t in seqs[int(i)]]
    n = len(stream) // SEQ_LEN
    return torch.tensor(stream[: n * SEQ_LEN], dtype=torch.long).view(n, SEQ_LEN)


# ---------------------------------------------------------------------------- model / training
def build_model(tokenizer, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_KW,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model.float()


def lr_at(step: int, total: int) -> float:
    warmup = max(1, int(WARMUP_FRAC * total))
    if step < warmup:
        return LR * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": WEIGHT_DECAY},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8)


@torch.no_grad()
def evaluate(model, chunks: torch.Tensor) -> float:
    model.eval()
    losses = []
    for i in range(0, len(chunks), BATCH_SIZE):
        batch = chunks[i : i + BATCH_SIZE]
        losses.append(model(input_ids=batch, labels=batch).loss.item() * len(batch))
    model.train()
    return sum(losses) / max(1, len(chunks))


def train(
    model, train_docs: list[list[int]], val_chunks: torch.Tensor, args, t_start: float
) -> dict:
    opt = make_optimizer(model)
    gen = torch.Generator().manual_seed(args.seed)
    # training stops RESERVE_S before the budget, leaving time for eval, save and checks
    deadline = t_start + args.time_budget_min * 60 - RESERVE_S
    t_calib = time.time()
    planned = args.max_steps
    epoch, pos, chunks = -1, 0, torch.empty(0, SEQ_LEN, dtype=torch.long)
    train_tokens = sum(map(len, train_docs))
    history: list[float] = []
    val_history: list[tuple[int, float]] = []
    tokens_seen = 0
    t_train = time.time()
    stopped_by = "max_steps"
    model.train()
    step = 0
    while step < planned:
        if time.time() > deadline:
            stopped_by = "time_budget"
            log(f"time budget of {args.time_budget_min} min reached at step {step}; stopping")
            break
        if pos + BATCH_SIZE > len(chunks):
            # new epoch: documents in a new order, so chunk boundaries move (less memorization)
            chunks = pack(train_docs, torch.randperm(len(train_docs), generator=gen))
            chunks = chunks[torch.randperm(len(chunks), generator=gen)]
            pos, epoch = 0, epoch + 1
        batch = chunks[pos : pos + BATCH_SIZE]
        pos += BATCH_SIZE

        lr = lr_at(step, planned)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += batch.numel()
        history.append(loss.item())

        if step == CALIBRATE_STEPS:
            t_calib = time.time()  # the first steps are slower (allocator warm-up)
        elif step > CALIBRATE_STEPS and (step == 2 * CALIBRATE_STEPS or step % LOG_EVERY == 0):
            # shrink the plan (never grow it) if the remaining steps would miss the deadline,
            # so the cosine schedule still ends near its floor
            per_step = (time.time() - t_calib) / (step - CALIBRATE_STEPS)
            fit = step + int((deadline - time.time()) / per_step)
            if fit < planned:
                planned, stopped_by = max(step, fit), "time_budget"
                log(f"{per_step:.2f} s/step: re-planned to {planned} steps to fit the time budget")
        if step % LOG_EVERY == 0 or step == planned:
            el = time.time() - t_train
            recent = sum(history[-LOG_EVERY:]) / len(history[-LOG_EVERY:])
            log(
                f"step {step:5d}/{planned} | epoch {epoch} | loss {recent:.4f} | lr {lr:.2e} | "
                f"{tokens_seen / el:,.0f} tok/s | {el / 60:.1f} min"
            )
        if step % EVAL_EVERY == 0 and step < planned:
            val_history.append((step, round(evaluate(model, val_chunks), 4)))
            log(f"step {step:5d} | validation loss {val_history[-1][1]:.4f}")
    train_s = time.time() - t_train
    tail = history[-LOG_EVERY:]
    return {
        "steps": step,
        "planned_steps": planned,
        "stopped_by": stopped_by,
        "epochs_completed": round(tokens_seen / train_tokens, 2),
        "tokens_seen": tokens_seen,
        "train_seconds": round(train_s, 1),
        "tokens_per_second": round(tokens_seen / max(train_s, 1e-9), 1),
        "final_train_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "first_train_loss": round(history[0], 4) if history else None,
        "validation_history": val_history,
    }


# ---------------------------------------------------------------------------- save / check
def check_saved(folder: Path) -> list[str]:
    """Reload with Auto* classes (as users will) and run quick self-checks; returns samples."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == list(range(len(SPECIAL_TOKENS))), (
        "special token ids"
    )
    assert tok.pad_token_id != tok.eos_token_id

    text = (
        "富士山は日本一高い山です。🗻 Hello, world! 「お嬢様」ですわ〜\n\tタブ  と 全角　スペース"
    )
    ids = tok(text)["input_ids"]
    assert (
        ids[0] == tok.bos_token_id
        and ids.count(tok.bos_token_id) == 1
        and ids[-1] != tok.eos_token_id
    )
    assert tok.decode(ids, skip_special_tokens=True) == text, "byte-level round-trip failed"

    msgs = [
        {"role": "system", "content": "あなたはお嬢様です。"},
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう。何かご用かしら?"},
    ]
    out = tok.apply_chat_template(
        msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    masked = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tok.decode(masked) == msgs[-1]["content"] + IM_END, tok.decode(masked)

    samples = []
    with torch.no_grad():
        for seed, prompt in enumerate(["富士山は", "今日は", "パソコンの"]):
            enc = tok(prompt, return_tensors="pt")
            torch.manual_seed(seed)
            gen = model.generate(**enc, max_new_tokens=60, do_sample=True)
            samples.append(tok.decode(gen[0], skip_special_tokens=True))
    return samples


def write_card(folder: Path, s: dict, samples: list[str]) -> None:
    m = s["model"]
    lines = [
        f"# {MODEL_NAME}",
        "",
        "Tiny demo model embedded in the studio so that fine-tuning can be tried offline on any machine.",
        "**Tiny demo model: generates Japanese-looking text, not knowledge.** It has never seen chat data;",
        "the ChatML template and `<|im_start|>` / `<|im_end|>` tokens are there for you to fine-tune.",
        "",
        "## What it is",
        "",
        f"- Llama architecture, {m['num_hidden_layers']} layers, hidden {m['hidden_size']}, "
        f"MLP {m['intermediate_size']}, {m['num_attention_heads']} heads / {m['num_key_value_heads']} KV heads, "
        f"context {m['max_position_embeddings']}, tied embeddings, float32",
        f"- {s['params']:,} parameters; byte-level BPE tokenizer with {s['vocab_size']:,} tokens "
        "trained on the bundled data (Japanese round-trips exactly)",
        f"- special tokens: {', '.join(f'`{k}`={v}' for k, v in s['special_token_ids'].items())}",
        "- BOS is added automatically, EOS is not; `<pad>` is distinct from `</s>`",
        "- chat template: ChatML with `{% generation %}` around assistant content + `<|im_end|>` "
        "(works with trl `assistant_only_loss`); generation stops on `</s>` or `<|im_end|>`",
        "",
        "## How it was built",
        "",
        f"Random init (seed {s['seed']}), pre-trained from scratch on the bundled `corpus.jsonl` "
        f"({s['data']['documents']:,} raw web documents, noise included) as BOS + text + EOS, "
        f"packed into {s['train']['seq_len']}-token chunks (documents re-shuffled every epoch); "
        f"AdamW lr {s['train']['lr']}, warmup + cosine, batch {s['train']['batch_size']}, on {s['threads']} CPU threads.",
        "",
        "```bash",
        s["rebuild_command"],
        "```",
        "",
        "| figure | value |",
        "|---|---|",
        f"| steps | {s['steps']} |",
        f"| tokens seen | {s['tokens_seen']:,} ({s['epochs_completed']} epochs) |",
        f"| tokens/s | {s['tokens_per_second']:,.0f} |",
        f"| wall time | {s['wall_seconds'] / 60:.1f} min |",
        f"| final train loss (mean of last {LOG_EVERY} steps) | {s['final_train_loss']} |",
        f"| validation loss ({s['data']['val_documents']} held-out documents, "
        f"{s['data']['val_chunks']} chunks) | {s['validation_loss']} |",
        f"| built | {s['date']} with torch {s['versions']['torch']}, transformers {s['versions']['transformers']} |",
        "",
        "## Samples (`do_sample=True`, temperature 0.8, top_p 0.95)",
        "",
        *[f"- {x!r}" for x in samples],
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")


def remove_stale(out: Path) -> None:
    """Remove temp folders left next to `out` by killed runs (their process is gone)."""
    for d in out.parent.glob(f".{out.name}.*-*"):
        pid = d.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass  # a live process of another user


def install(tmp: Path, out: Path) -> None:
    """Atomically replace `out` by `tmp` (same parent directory, so rename is atomic)."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output model folder")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with corpus.jsonl etc.")
    p.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="optimizer steps")
    p.add_argument(
        "--time-budget-min",
        type=float,
        default=DEFAULT_BUDGET_MIN,
        help="stop cleanly after M minutes",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch / tokenizers CPU threads")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.time()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # tokenizers' thread pool
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    docs, extra = load_texts(args.data)
    log(f"data: {len(docs)} documents, {sum(map(len, docs)):,} chars; {len(extra)} chat/QA texts")

    tokenizer = train_tokenizer(docs + extra)
    log(f"tokenizer: {len(tokenizer)} tokens ({time.time() - t_start:.1f} s)")

    seqs = encode_docs(tokenizer, docs)
    # hold out ~2% of the documents (not chunks) so the validation text is never trained on
    perm = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(args.seed)).tolist()
    n_val_docs = max(1, round(VAL_FRAC * len(seqs)))
    val_chunks = pack(seqs, perm[:n_val_docs])
    train_docs = [seqs[i] for i in perm[n_val_docs:]]
    n_tokens = sum(map(len, seqs))
    if len(val_chunks) < 1 or n_tokens < 4 * BATCH_SIZE * SEQ_LEN:
        sys.exit(f"error: corpus too small ({n_tokens} tokens)")
    log(
        f"tokens: {n_tokens:,} in {len(seqs)} documents ({n_val_docs} held out -> "
        f"{len(val_chunks)} validation chunks of {SEQ_LEN})"
    )

    model = build_model(tokenizer, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} params ({n_params * 4 / 2**20:.1f} MiB fp32)")

    stats = train(model, train_docs, val_chunks, args, t_start)
    val_loss = evaluate(model, val_chunks)
    log(f"validation loss {val_loss:.4f} (ppl {math.exp(val_loss):.1f})")

    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(IM_END)],
            pad_token_id=tokenizer.pad_token_id,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            max_new_tokens=128,
        )
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for f in tmp.iterdir():
            f.chmod(0o644)  # safetensors writes 0600; these are repository assets
        samples = check_saved(tmp)
        for s in samples:
            log(f"sample: {s!r}")

        cmd = "python assets/build_tiny_model.py"
        if argv is None and sys.argv[1:]:
            cmd += " " + shlex.join(sys.argv[1:])
        summary = {
            "name": MODEL_NAME,
            "params": n_params,
            "vocab_size": len(tokenizer),
            "special_token_ids": {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS},
            "model": {k: v for k, v in MODEL_KW.items()},
            **stats,
            "validation_loss": round(val_loss, 4),
            "data": {
                "documents": len(docs),
                "chat_qa_texts": len(extra),
                "corpus_tokens": n_tokens,
                "train_documents": len(train_docs),
                "val_documents": n_val_docs,
                "val_chunks": len(val_chunks),
            },
            "train": {
                "seq_len": SEQ_LEN,
                "batch_size": BATCH_SIZE,
                "lr": LR,
                "min_lr_ratio": MIN_LR_RATIO,
                "warmup_frac": WARMUP_FRAC,
                "weight_decay": WEIGHT_DECAY,
                "max_steps": args.max_steps,
                "time_budget_min": args.time_budget_min,
            },
            "seed": args.seed,
            "threads": args.threads,
            "wall_seconds": round(time.time() - t_start, 1),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
            },
            "rebuild_command": cmd,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        (tmp / "training_summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        write_card(tmp, summary, samples)
        install(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    log(f"saved {out} ({size:.1f} MiB) in {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
