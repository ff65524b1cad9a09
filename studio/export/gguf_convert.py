"""Run llama.cpp's own converter (`convert_hf_to_gguf.py`) on a model folder, in a process of
its own, with three settings its command line does not have:

- `--pre NAME`: the llama.cpp pre-tokenizer for a BPE tokenizer whose hash the converter does
  not know. The studio passes it only when it has read the tokenizer's own definition and
  found the pre-tokenizer llama.cpp implements under that name (a byte-level BPE with GPT-2's
  split, like the embedded model's); the export's self-check then compares the token ids of
  both tokenizers, so a wrong choice fails loudly instead of giving a silent wrong vocabulary.
  Without it an unknown tokenizer stops the conversion with exit code 3 and its hash.
- `--eot ID`: the end-of-turn id the run was trained to write, as `tokenizer.ggml.eot_token_id`.
- `--chat-template FILE`: the template to store (the training template without the
  `{% generation %}` markers, which are for training only and which llama.cpp's template
  engine does not know).

    python -m studio.export.gguf_convert TOOLS MODEL --outfile F --outtype f16 [...]
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

UNKNOWN_TOKENIZER = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tools", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--outfile", type=Path, required=True)
    parser.add_argument("--outtype", default="f16")
    parser.add_argument("--pre")
    parser.add_argument("--eot", type=int)
    parser.add_argument("--chat-template", type=Path)
    args = parser.parse_args(argv)

    sys.path[:0] = [str(args.tools / "gguf-py"), str(args.tools)]
    import gguf  # noqa: PLC0415 - the converter's own copy, from the tools folder
    from conversion import base  # noqa: PLC0415

    known = base.TextModel.get_vocab_base_pre
    chosen: dict = {}

    def vocab_pre(self, tokenizer):
        try:
            chosen["pre"] = known(self, tokenizer)
        except NotImplementedError:
            if not args.pre:
                print(json.dumps({"unknown_tokenizer": True}), file=sys.stderr)
                raise SystemExit(UNKNOWN_TOKENIZER) from None
            chosen["pre"], chosen["declared"] = args.pre, True
        return chosen["pre"]

    base.TextModel.get_vocab_base_pre = vocab_pre
    template = args.chat_template.read_text(encoding="utf-8") if args.chat_template else None
    add_to_gguf = gguf.SpecialVocab.add_to_gguf

    def add_special(self, gw, quiet=False):
        if args.eot is not None:
            self.special_token_ids.setdefault("eot", args.eot)
        if template is not None:
            self.chat_template = template
        return add_to_gguf(self, gw, quiet=quiet)

    gguf.SpecialVocab.add_to_gguf = add_special
    converter = args.tools / "convert_hf_to_gguf.py"
    sys.argv = [str(converter), str(args.model), "--outfile", str(args.outfile),
                "--outtype", args.outtype]  # fmt: skip
    runpy.run_path(str(converter), run_name="__main__")
    print(json.dumps({"pre": chosen.get("pre"), "declared": bool(chosen.get("declared"))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
