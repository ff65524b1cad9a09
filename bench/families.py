"""The studio's labels on real tokenizers and their stock chat templates, against trl's.

For each model family of `tests/real_families.py` (real tokenizer files built from
llama.cpp's vocab-only GGUFs, each with a tiny random-weight model of its vocabulary) and
each case (clean chat data, the field report's typed `</s>`, truncation, pad == EOS, plain
and conversational prompt/completion), this encodes the rows as the studio trains them and
as trl 1.15 puts them in its post-collator batch, and compares the trained tokens row by
row. With `--train` it also trains each family's tiny model for a few steps through the
studio's own trainer, from its stock template.

    .venv/bin/python bench/families.py [--families qwen2.5 llama-2] [--train] [--markdown]

Rows agree when they train the same token ids. trl refuses some families ("patching is not
supported"); the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from studio.labels.encode import IGNORE, EncodingSettings, encode_example, resolve_tokens  # noqa: E402
from studio.labels.inspect import Target, scan  # noqa: E402

CHAT = REPO / "assets" / "data" / "chat_ojousama.jsonl"
N_ROWS = 20


def chat_rows(n: int = N_ROWS) -> list[dict]:
    rows = []
    with open(CHAT, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            rows.append({"messages": row["messages"]})
            if len(rows) >= n:
                break
    return rows


def seed_rows() -> list[dict]:
    """The field report: replies that end with a typed `</s>`."""
    out = []
    for row in chat_rows(5):
        messages = [dict(m) for m in row["messages"]]
        messages[-1]["content"] += "</s>"
        out.append({"messages": messages})
    return out


def pair_rows() -> list[dict]:
    return [
        {"prompt": "質問: 富士山の高さは？\n答え:", "completion": "3776メートルです。"},
        {"prompt": "Question: What is the capital of Japan?\nAnswer:", "completion": " Tokyo."},
        {
            "prompt": "次の文を丁寧に言い換えてください。\n「ちょっと待って」\n",
            "completion": "少々お待ちくださいませ。",
        },
        {"prompt": "Translate to English: こんにちは\n", "completion": "Hello."},
    ]


def conversational_rows() -> list[dict]:
    rows = []
    for row in chat_rows(8):
        messages = row["messages"]
        k = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        rows.append({"prompt": messages[:k], "completion": messages[k:]})
    return rows


def seed_settings(tokenizer) -> EncodingSettings:
    """The field report's script: pad with the end-of-turn token and mask every pad id,
    and tokenize the rendered template again with the tokenizer's own BOS."""
    tok = resolve_tokens(tokenizer, EncodingSettings())
    end = tokenizer.convert_ids_to_tokens(max(tok.eot_ids or [tok.eos_id]))
    return EncodingSettings(pad_token=end, mask_pad_token_id=True, add_special_tokens="yes")


def cases(tokenizer) -> dict[str, tuple[list[dict], EncodingSettings]]:
    eos = tokenizer.eos_token
    return {
        "clean chat": (chat_rows(), EncodingSettings()),
        "typed </s> (field report)": (seed_rows(), EncodingSettings()),
        "the field report's settings": (seed_rows(), seed_settings(tokenizer)),
        "truncation (max_length 48)": (chat_rows(), EncodingSettings(max_length=48)),
        "pad == EOS": (chat_rows(), EncodingSettings(pad_token=eos)),
        "prompt/completion": (pair_rows(), EncodingSettings()),
        "conversational prompt/completion": (conversational_rows(), EncodingSettings()),
    }


def studio_trained(rows, tokenizer, settings, *, with_ids: bool = False) -> list:
    """The trained ids of each row (with `with_ids`: (input ids, trained ids))."""
    from studio.data.records import canonical

    tok = resolve_tokens(tokenizer, settings)
    out = []
    for i, row in enumerate(rows):
        enc = encode_example(canonical(row), tok, settings, row=i)
        # the collator never trains a sequence's first token
        trained = [t for k, t in enumerate(enc.labels) if t != IGNORE and k > 0]
        out.append((enc.input_ids, trained) if with_ids else trained)
    return out


def trl_trained(rows, folder: Path, tokenizer, settings, *, with_ids: bool = False):
    """The trained ids of each row in trl's post-collator batch (with `with_ids`: (input
    ids, trained ids)), or why trl refused. trl drops rows with nothing to train."""
    import copy

    import datasets
    import transformers
    from trl import SFTConfig, SFTTrainer

    transformers.logging.set_verbosity_error()
    tokenizer = copy.deepcopy(tokenizer)  # trl sets its pad token on the tokenizer it gets
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = SFTConfig(
            output_dir=tmp,
            report_to=[],
            max_length=settings.max_length,
            assistant_only_loss="messages" in rows[0],
            pad_token=settings.pad_token,
            use_cpu=True,
            dataset_num_proc=None,
        )
        try:
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=datasets.Dataset.from_list(rows),
                processing_class=tokenizer,
            )
        except (ValueError, RuntimeError) as exc:
            if "patching is not supported" in str(exc):
                return 'refused ("patching is not supported for this template")'
            return f"refused: {str(exc).split('.')[0]}"
        out = []
        for example in trainer.train_dataset:
            batch = trainer.data_collator([example])
            labels = batch["labels"][0].tolist()
            trained = [t for k, t in enumerate(labels) if t != IGNORE and k > 0]
            out.append((batch["input_ids"][0].tolist(), trained) if with_ids else trained)
    return out


def agreement(ours, theirs, tokenizer) -> str:
    """Rows that train the same ids, matching trl's rows to ours by their input ids (trl
    drops rows with nothing to train); and how the others differ."""
    unmatched = list(theirs)
    same = newline_only = dropped = 0
    for ids, trained in ours:
        match = next((t for t in unmatched if t[0][: len(ids)] == ids[: len(t[0])]), None)
        if match is None:
            dropped += 1
            continue
        unmatched.remove(match)
        if match[1] == trained:
            same += 1
        elif [i for i in match[1] if tokenizer.decode([i]).strip()] == [
            i for i in trained if tokenizer.decode([i]).strip()
        ]:
            newline_only += 1
    text = f"{same}/{len(ours)} rows identical"
    if newline_only:
        text += f", {newline_only} differ only in newlines trl also trains"
    if dropped:
        text += f"; {dropped} rows dropped by trl (nothing to train)"
    return text


def compare(family: str) -> list[dict]:
    from tests.real_families import family_dir
    from tests.real_families import tokenizer as family_tokenizer

    folder = family_dir(family)
    tokenizer = family_tokenizer(family)
    eos_ids = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    eos_ids = eos_ids if isinstance(eos_ids, list) else [eos_ids]
    target = Target.from_tokenizer(tokenizer, generation_eos_ids=eos_ids)
    results = []
    for case, (rows, settings) in cases(tokenizer).items():
        from studio.data.records import canonical

        report = scan([(i, canonical(r)) for i, r in enumerate(rows)], target, settings)
        codes = sorted(f"{d.code}:{d.severity[0]}" for d in report.diagnostics)
        ours = studio_trained(rows, tokenizer, settings, with_ids=True)
        theirs = trl_trained(rows, folder, tokenizer, settings, with_ids=True)
        agree = theirs if isinstance(theirs, str) else agreement(ours, theirs, tokenizer)
        results.append(
            {
                "family": family,
                "case": case,
                "codes": codes,
                "spans": report.spans,
                "trained": report.trained_tokens,
                "tokens": report.tokens,
                "trl": agree,
            }
        )
    return results


def tiny_run(ws, folder: Path, *sets: str):
    """Check, then train through the studio's own trainer, `cpu-demo-sft` on a family's
    tiny model (`sets`: more overrides). Returns (preflight, run, exit code, losses)."""
    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import preflight, prepare_run

    base = [f"model={folder}", "save_steps=1000", "logging_steps=1", "validation_split=0"]
    config, preset = presets.load("cpu-demo-sft", [*base, *sets])
    checked = preflight(ws, config)
    if checked.blocked:
        return checked, None, None, []
    run = prepare_run(ws, checked.config, preset=preset)
    code = execute(run, ws)
    losses = [m["loss"] for m in run.metrics() if m.get("kind") == "train" and "loss" in m]
    return checked, run, code, losses


def train_tiny(family: str, steps: int = 6) -> dict:
    """A few steps on the family's tiny model, from its stock template, on the bundled chat
    set."""
    from studio.workspace import open_workspace
    from tests.real_families import family_dir

    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        started = time.perf_counter()
        checked, _, code, losses = tiny_run(
            ws, family_dir(family), f"max_steps={steps}", "max_length=256"
        )
        return {
            "family": family,
            "blocked": checked.blocked,
            "trained_tokens": checked.scan.trained_tokens if checked.scan else None,
            "spans": checked.scan.spans if checked.scan else None,
            "exit": code,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "seconds": round(time.perf_counter() - started, 1),
        }


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from tests.real_families import FAMILIES

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [r for f in args.families for r in compare(f)]
    if args.markdown:
        print("| family | case | studio's codes | spans | trained / tokens | trl 1.15 |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            codes = ", ".join(r["codes"]) or "none"
            print(
                f"| {r['family']} | {r['case']} | {codes} | {r['spans'] or '—'} | "
                f"{r['trained']:,} / {r['tokens']:,} | {r['trl']} |"
            )
    else:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    if args.train:
        for family in args.families:
            print(json.dumps(train_tiny(family), ensure_ascii=False))


if __name__ == "__main__":
    main()
