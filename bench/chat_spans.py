"""What finding assistant turns by rendering costs, against a template with markers.

The same ChatML template with and without `{% generation %}` markers, on the embedded
tokenizer, encoding the bundled chat set's rows with 1 and with 4 assistant turns (the
rendering method renders the conversation twice more per assistant turn, so its cost grows
with the turns). Prints rows/s of each and their ratio.

    .venv/bin/python bench/chat_spans.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def conversations(turns: int, n: int) -> list[dict]:
    base = []
    with open(REPO / "assets" / "data" / "chat_ojousama.jsonl", encoding="utf-8") as fh:
        for line in fh:
            base.append(json.loads(line)["messages"])
    rows = []
    for i in range(n):
        first = base[i % len(base)]
        messages = [first[0]]  # the system prompt
        for k in range(turns):
            messages += [m for m in base[(i + k) % len(base)] if m["role"] != "system"][:2]
        rows.append({"messages": messages})
    return rows


def rate(tokenizer, rows, repeat: int = 3) -> float:
    from studio.labels.encode import EncodingSettings, encode_examples, resolve_tokens

    settings = EncodingSettings(max_length=4096)
    tok = resolve_tokens(tokenizer, settings)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        encode_examples(list(enumerate(rows)), tok, settings)
        best = min(best, time.perf_counter() - started)
    return len(rows) / best


def main() -> None:
    import copy

    import torch

    from studio.models.load import load_tokenizer, resolve_source

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    marked = load_tokenizer(resolve_source(""))
    unmarked = copy.deepcopy(marked)
    unmarked.chat_template = marked.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    for turns in (1, 4):
        rows = conversations(turns, args.rows)
        a, b = rate(marked, rows), rate(unmarked, rows)
        print(
            json.dumps(
                {
                    "assistant_turns": turns,
                    "rows": len(rows),
                    "markers_rows_per_s": round(a),
                    "rendered_rows_per_s": round(b),
                    "rendered_over_markers": round(b / a, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
