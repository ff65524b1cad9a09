"""Build the label inspector's teaching example: a broken copy of the bundled chat set.

It replays the field report in `shared/seeds/004_...txt`: a character chatbot whose training
data had `</s>` typed at the end of every answer and started with a doubled `<s>`, so the
model learned to print `</s>` and never stopped cleanly. Each planted problem is one that
the inspector must flag, and each has a fix that makes the data clean again.

    python assets/build_teaching_example.py [--check]

Deterministic: the same input always gives byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "data" / "chat_ojousama.jsonl"
OUT = HERE / "data" / "teaching"
ROWS = 120
UNANSWERED = (7, 41)  # rows whose assistant turn is missing
LONG = (13,)  # rows whose answer is far too long for max_length

SETTINGS = """\
# The settings the seed's training script effectively used. Inspect the broken data with
# them, then press the fixes (or run the CLI with --write-fixed and --repair).
note: "Seed 004: '</s>' typed into answers, a doubled BOS, pad = end-of-turn"
encoding:
  stage: sft
  loss: assistant
  max_length: 256
  # The template is rendered to text and tokenized again with the tokenizer's defaults:
  # the tokenizer's BOS comes on top of the template's.
  add_special_tokens: "yes"
  # "pad = eos" habit: the end-of-turn token doubles as padding ...
  pad_token: "<|im_end|>"
  # ... and a collator that masks every pad id masks every real end of turn too.
  mask_pad_token_id: true
"""


def broken_rows(rows: list[dict]) -> list[dict]:
    out = []
    for i, row in enumerate(rows[:ROWS]):
        row = json.loads(json.dumps(row))
        messages = row["messages"]
        if i in UNANSWERED:
            row["messages"] = [m for m in messages if m["role"] != "assistant"]
        else:
            for m in messages:
                if m["role"] != "assistant":
                    continue
                if i in LONG:
                    m["content"] = " ".join([m["content"]] * 12)
                if i % 3 == 0:
                    m["content"] += "</s>"  # the seed: EOS typed as text
                elif i % 5 == 1:
                    m["content"] += "<|endoftext|>"  # another family's EOS, unknown here
        row["id"] = row["id"].replace("chat-", "broken-")
        out.append(row)
    return out


def outputs() -> dict[str, str]:
    rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines() if line]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in broken_rows(rows))
    return {"chat_ojousama_broken.jsonl": data, "chat_ojousama_broken.settings.yaml": SETTINGS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify the files are up to date")
    args = ap.parse_args(argv)
    stale = []
    for name, text in outputs().items():
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
