"""The GGUF self-check: does the exported file behave in llama.cpp as the model did in the
studio? Each GGUF is loaded with llama.cpp and compared with the merged HF model on the run's
own held-out prompts (or prompts the user gives):

- the token ids of every rendered prompt, and of a few probe strings (Japanese, emoji, runs of
  spaces and newlines): the two tokenizers must agree exactly;
- greedy continuations: the share of prompts whose first `agree_tokens` tokens are the same;
- perplexity on held-out text, HF and GGUF, and their ratio;
- whether each reply stops on an end-of-turn id, in both, and whether llama.cpp counts the
  end-of-turn token the run trained as an end of generation at all.

A different tokenization or a missing stop is a defect in any quantization. Greedy tokens
that change and a higher perplexity are expected of 8 and 4 bits and only reported there; a
16-bit GGUF must reproduce the model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.errors import StudioError
from studio.export import llama_cpp

PROBES = (
    "吾輩は猫である。名前はまだ無い。",
    "東京都渋谷区神南1-2-3　ｶﾀｶﾅ ＡＢＣ",
    "Hello,  world!\n\n  indented\tline 1234567",
    "🚀 emoji 😶‍🌫️ ✅ café naïve",
    "改行\n\n\nと　全角スペース　と句読点、。！？",
)
SIXTEEN_BIT = ("f32", "f16", "bf16")
# Share of prompts whose greedy tokens must agree, and the highest perplexity ratio accepted,
# by quantization: beyond them a 16-bit file fails; 8 and 4 bits are warned about.
AGREEMENT_FLOOR = {"f32": 0.9, "f16": 0.9, "bf16": 0.8, "q8_0": 0.7, "q6_k": 0.65, "q5_k_m": 0.6,
                   "q4_k_m": 0.5}  # fmt: skip
PPL_CEILING = {"f32": 1.01, "f16": 1.02, "bf16": 1.05, "q8_0": 1.05, "q6_k": 1.08, "q5_k_m": 1.12}
PPL_CEILING_DEFAULT = 1.3


@dataclass
class CheckInputs:
    """What the check runs on: prompts (already rendered to text, with whether they are chat
    prompts, whose special tokens are parsed) and held-out texts for perplexity."""

    prompts: list[str]
    chat: bool
    texts: list[str]
    source: str  # where they came from, for the report
    stop_ids: list[int] = field(default_factory=list)  # what the run trained to end a turn with
    # texts[i] is prompts[i] followed by its held-out reply: perplexity is then measured on
    # the reply's tokens only, like the run's eval_loss
    paired: bool = False


def hf_tokens(tokenizer, text: str, *, chat: bool) -> list[int]:
    """The ids the studio gives a model: a rendered chat prompt carries its own special tokens;
    plain text gets what the tokenizer adds (BOS)."""
    if chat:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text)["input_ids"])


def gguf_tokens(llm, text: str, *, chat: bool) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=not chat, special=chat))


def greedy_hf(model, ids: list[int], n: int, stops: set[int]) -> list[int]:
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        past, step = None, torch.tensor([ids], device=device)
        for _ in range(n):
            res = model(input_ids=step, past_key_values=past, use_cache=True)
            past = res.past_key_values
            token = int(res.logits[0, -1].argmax())
            out.append(token)
            if token in stops:
                break
            step = torch.tensor([[token]], device=device)
    return out


def greedy_gguf(llm, ids: list[int], n: int, stops: set[int]) -> list[int]:
    import numpy as np

    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(token)
        if token in stops:
            break
        llm.eval([token])
    return out


def nll_hf(model, ids: list[int], start: int = 1) -> tuple[float, int]:
    """Summed negative log-likelihood of ids[start:] and how many tokens that is."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, start - 1 : -1]
        logp = torch.log_softmax(logits.float(), -1).cpu()
        target = torch.tensor(ids[start:])
        return float(-logp[torch.arange(len(target)), target].sum()), len(target)


def nll_gguf(llm, ids: list[int], start: int = 1) -> tuple[float, int]:
    import numpy as np

    llm.reset()
    llm.eval(ids)
    logits = np.asarray(llm.scores[start - 1 : len(ids) - 1], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = np.asarray(ids[start:])
    return float(-logp[np.arange(len(target)), target].sum()), len(target)


def _differences(tok, llm, texts: list[str], chat: bool) -> list[dict]:
    found = []
    for text in texts:
        want, got = hf_tokens(tok, text, chat=chat), gguf_tokens(llm, text, chat=chat)
        if want != got:
            at = next(
                (i for i, (x, y) in enumerate(zip(want, got, strict=False)) if x != y),
                min(len(want), len(got)),
            )
            found.append(
                {"text": text[:80], "at": at, "hf": want[at : at + 4], "gguf": got[at : at + 4]}
            )
    return found


def agree_prefix(a: list[int], b: list[int], n: int) -> bool:
    """The first `n` tokens are the same (or both ended at the same point before `n`)."""
    return a[:n] == b[:n]


def check_one(quant: str, path: Path, hf, inputs: CheckInputs, *, agree_tokens: int,
              max_tokens: int) -> dict:  # fmt: skip
    """Compare one GGUF with the HF model (`hf` holds the model, tokenizer and the results
    computed once for all quantizations)."""
    started = time.perf_counter()
    llm = llama_cpp.open_gguf(path, n_ctx=hf["n_ctx"], logits_all=True, quiet=False)
    try:
        eog = llama_cpp.eog_ids(llm)
        tok = hf["tokenizer"]
        defects, warnings = [], []
        # 1. tokenization: the prompts must agree exactly; the probe strings (runs of spaces,
        # emoji, half-width kana) are reported, since llama.cpp's SentencePiece splits some
        # such runs differently from transformers without touching ordinary text.
        differ = _differences(tok, llm, inputs.prompts, inputs.chat)
        probes = _differences(tok, llm, list(PROBES), False)
        if differ:
            defects.append("tokens_differ")
        if probes:
            warnings.append("probe_tokens_differ")
        # 2. stops llama.cpp knows
        trained = [i for i in inputs.stop_ids if i is not None]
        not_eog = [i for i in trained if i not in eog]
        if not_eog:
            defects.append("stop_not_eog")
        # 3. greedy continuations and stops
        agreed, hf_stopped, gguf_stopped, lost_stop, samples = 0, 0, 0, 0, []
        for index, text in enumerate(inputs.prompts):
            ids = hf_tokens(tok, text, chat=inputs.chat)
            want = hf["greedy"][index]
            got = greedy_gguf(llm, ids, max_tokens, eog)
            same = agree_prefix(want, got, agree_tokens)
            agreed += same
            hs, gs = bool(want) and want[-1] in hf["stops"], bool(got) and got[-1] in eog
            hf_stopped += hs
            gguf_stopped += gs
            lost_stop += hs and not gs
            if len(samples) < 3 or not same:
                samples.append({"prompt": text[-80:], "hf": tok.decode(want),
                                "gguf": tok.decode(got), "same": same})  # fmt: skip
        n = max(1, len(inputs.prompts))
        agreement = agreed / n
        # 4. perplexity
        total, count = 0.0, 0
        for ids, start in hf["ppl_ids"]:
            nll, k = nll_gguf(llm, ids, start)
            total, count = total + nll, count + k
        ppl = math.exp(total / count) if count else None
        ratio = ppl / hf["ppl"] if ppl and hf["ppl"] else None
    finally:
        llm.close()
    sixteen = quant in SIXTEEN_BIT
    exact = hf.get("reference", "cpu float32").endswith("float32")
    if lost_stop:
        (defects if sixteen else warnings).append("stop_lost")
    floor = AGREEMENT_FLOOR.get(quant)
    if floor is not None and agreement < floor:
        (defects if sixteen and exact else warnings).append("greedy_differs")
    ceiling = PPL_CEILING.get(quant, PPL_CEILING_DEFAULT)
    if ratio is not None and ratio > ceiling:
        (defects if sixteen else warnings).append("perplexity_higher")
    return {
        "quant": quant,
        "file": path.name,
        "bytes": path.stat().st_size,
        "verdict": "fail" if defects else ("warn" if warnings else "pass"),
        "defects": defects,
        "warnings": warnings,
        "prompts": len(inputs.prompts),
        "tokens_identical": not differ,
        "token_differences": differ[:5],
        "probe_differences": probes,
        "greedy_agreement": round(agreement, 4),
        "agree_tokens": agree_tokens,
        "hf_stopped": hf_stopped,
        "gguf_stopped": gguf_stopped,
        "stop_ids": trained,
        "stop_ids_not_eog": not_eog,
        "perplexity_hf": round(hf["ppl"], 4) if hf["ppl"] else None,
        "perplexity_gguf": round(ppl, 4) if ppl else None,
        "perplexity_ratio": round(ratio, 4) if ratio else None,
        "perplexity_tokens": count,
        "ppl_ceiling": ceiling,
        "agreement_floor": floor,
        "samples": samples[:6],
        "reference": hf.get("reference"),
        "seconds": round(time.perf_counter() - started, 2),
    }


def reference(hf_dir: Path, inputs: CheckInputs, *, max_tokens: int, max_ppl_tokens: int) -> dict:
    """What the HF model does on the inputs (computed once for every quantization): its greedy
    continuations, the held-out texts' ids and its perplexity on them."""
    import torch

    from studio.models.load import transformers_names

    tokenizer = _tokenizer(hf_dir)
    # float32 on the CPU; on a CUDA GPU bfloat16, so that an 8B model fits where the user
    # trained it (a 16-bit GGUF is then compared with a 16-bit reference, which the report says).
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    model = transformers_names("AutoModelForCausalLM").from_pretrained(
        str(hf_dir), dtype=dtype, use_safetensors=True
    )
    model.to("cuda" if cuda else "cpu").eval()
    stops = sorted(set(inputs.stop_ids) | {tokenizer.eos_token_id} - {None})
    prompt_ids = [hf_tokens(tokenizer, p, chat=inputs.chat) for p in inputs.prompts]
    ppl_ids = []
    for index, text in enumerate(inputs.texts):
        ids = hf_tokens(tokenizer, text, chat=inputs.chat)[:max_ppl_tokens]
        start = 1
        if inputs.paired and index < len(prompt_ids):
            head = prompt_ids[index]
            if ids[: len(head)] == head and len(ids) - len(head) >= 2:
                start = len(head)  # the held-out reply alone
        if len(ids) - start >= 1:
            ppl_ids.append([ids, start])
    total, count = 0.0, 0
    for ids, start in ppl_ids:
        nll, k = nll_hf(model, ids, start)
        total, count = total + nll, count + k
    longest = max([len(i) for i in prompt_ids] + [len(i) for i, _ in ppl_ids] + [8])
    return {
        "stops": stops,
        "greedy": [greedy_hf(model, ids, max_tokens, set(stops)) for ids in prompt_ids],
        "ppl_ids": ppl_ids,
        "ppl": math.exp(total / count) if count else None,
        "n_ctx": longest + max_tokens + 8,
        "reference": f"{'cuda' if cuda else 'cpu'} {str(dtype).removeprefix('torch.')}",
    }


def _tokenizer(hf_dir: Path):
    from studio.models.load import ModelSource, load_tokenizer

    return load_tokenizer(ModelSource("local", str(hf_dir), hf_dir.name))


def self_check(hf_dir: Path, files: dict[str, Path], inputs: CheckInputs, *,
               agree_tokens: int = 16, max_tokens: int = 48, max_ppl_tokens: int = 256,
               progress=None) -> dict:  # fmt: skip
    """Check every GGUF in `files` (quantization -> path) against the HF model in `hf_dir`.

    The model's reference and each file's check run in processes of their own: llama.cpp
    stops a process that loads a broken file (GGML_ASSERT), and that must fail the check with
    llama.cpp's own message, not take the studio down with it."""
    started = time.perf_counter()
    settings = {"agree_tokens": agree_tokens, "max_tokens": max_tokens,
                "max_ppl_tokens": max_ppl_tokens}  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="gguf-check-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(
            json.dumps({"hf": str(hf_dir), "inputs": asdict(inputs), **settings},
                       ensure_ascii=False),
            encoding="utf-8",
        )  # fmt: skip
        ref = Path(tmp) / "reference.json"
        done = _child(["reference", str(spec), str(ref)])
        if done.returncode or not ref.is_file():
            raise StudioError(
                "the model could not be run for the check: " + llama_cpp.failure_tail(done.stderr),
                code="gguf_reference_failed",
            )
        for quant, path in files.items():
            if progress:
                progress(quant)
            out = Path(tmp) / f"{quant}.json"
            done = _child(["check", str(spec), str(ref), quant, str(path), str(out)])
            if done.returncode == 0 and out.is_file():
                results.append(json.loads(out.read_text(encoding="utf-8")))
            else:
                results.append(_crashed(quant, path, done))
    failed = [r for r in results if r["verdict"] == "fail"]
    warned = any(r["warnings"] for r in results)
    return {
        "verdict": "fail" if failed else ("warn" if warned else "pass"),
        "source": inputs.source,
        "chat": inputs.chat,
        "results": results,
        "llama_cpp_python": llama_cpp.runtime_version(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _child(args: list[str]):
    return subprocess.run(
        [sys.executable, "-m", "studio.export.gguf_check", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _crashed(quant: str, path: Path, done) -> dict:
    """The result of a file llama.cpp could not load or run: a defect with its message."""
    return {
        "quant": quant,
        "file": path.name,
        "bytes": path.stat().st_size if path.is_file() else 0,
        "verdict": "fail",
        "defects": ["llama_cpp_crashed"],
        "warnings": [],
        "crash": llama_cpp.failure_tail(done.stderr),
        "exit_code": done.returncode,
        "prompts": 0,
        "tokens_identical": False,
        "token_differences": [],
        "probe_differences": [],
        "greedy_agreement": 0.0,
        "agree_tokens": 0,
        "hf_stopped": 0,
        "gguf_stopped": 0,
        "stop_ids": [],
        "stop_ids_not_eog": [],
        "perplexity_hf": None,
        "perplexity_gguf": None,
        "perplexity_ratio": None,
        "perplexity_tokens": 0,
        "ppl_ceiling": None,
        "agreement_floor": None,
        "samples": [],
        "seconds": 0.0,
    }


def check_table(report: dict, lang: str = "en") -> str:
    """The check as a Markdown table with the verdict and what it means."""
    from studio.i18n import t

    head = [t(f"gguf.col_{c}", lang) for c in ("quant", "verdict", "tokens", "greedy", "ppl",
                                              "stops", "size")]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["results"]:
        ppl = (f"{r['perplexity_hf']} → {r['perplexity_gguf']} (×{r['perplexity_ratio']})"
               if r["perplexity_ratio"] else "—")  # fmt: skip
        if "llama_cpp_crashed" in r["defects"]:
            lines.append(f"| {r['quant']} | {t('gguf.verdict_fail', lang)} | — | — | — | — | "
                         f"{r['bytes'] / 2**20:.1f} MiB |")  # fmt: skip
            continue
        lines.append(
            f"| {r['quant']} | {t('gguf.verdict_' + r['verdict'], lang)} | "
            f"{t('gguf.same' if r['tokens_identical'] else 'gguf.different', lang)} | "
            f"{r['greedy_agreement']:.0%} ({r['prompts']}) | {ppl} | "
            f"{r['hf_stopped']} / {r['gguf_stopped']} | {r['bytes'] / 2**20:.1f} MiB |"
        )
    notes = []
    for r in report["results"]:
        for code in r["defects"] + r["warnings"]:
            notes.append(f"- **{r['quant']}**: {t('gguf.why_' + code, lang, **_params(r))}")
    verdict = t("gguf.overall_" + report["verdict"], lang)
    return "\n".join([f"**{verdict}**", "", *lines, "", *notes, "", t("gguf.meaning", lang)])


def _params(r: dict) -> dict:
    return {
        "agreement": f"{r['greedy_agreement']:.0%}",
        "floor": f"{(r['agreement_floor'] or 0):.0%}",
        "ratio": r["perplexity_ratio"],
        "ceiling": r["ppl_ceiling"],
        "ids": ", ".join(map(str, r["stop_ids_not_eog"])),
        "first": (r["token_differences"] or [{}])[0].get("text", ""),
        "probe": (r.get("probe_differences") or [{}])[0].get("text", ""),
        "crash": r.get("crash", ""),
    }


def main(argv: list[str]) -> int:
    """The child processes: `reference SPEC OUT` and `check SPEC REFERENCE QUANT FILE OUT`."""
    command, spec_path, *rest = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    inputs = CheckInputs(**spec["inputs"])
    hf_dir = Path(spec["hf"])
    if command == "reference":
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        ref = reference(hf_dir, inputs, max_tokens=spec["max_tokens"],
                        max_ppl_tokens=spec["max_ppl_tokens"])  # fmt: skip
        Path(rest[0]).write_text(json.dumps(ref), encoding="utf-8")
        return 0
    ref_path, quant, file, out = rest
    hf = json.loads(Path(ref_path).read_text(encoding="utf-8"))
    hf["tokenizer"], hf["stops"] = _tokenizer(hf_dir), set(hf["stops"])
    result = check_one(quant, Path(file), hf, inputs, agree_tokens=spec["agree_tokens"],
                       max_tokens=spec["max_tokens"])  # fmt: skip
    Path(out).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
