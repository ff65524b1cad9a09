"""Export a run (or a model of the workspace) to GGUF for llama.cpp, Ollama and LM Studio, and
check that the file behaves as the model did in the studio.

1. The run's adapter is merged into its unquantized base (the merged export's own code), into
   a scratch folder.
2. llama.cpp's own converter writes one 16-bit GGUF from it (`gguf_convert`, which also stores
   the run's end-of-turn id and its chat template without the training-only markers), and
   llama.cpp's own quantizer makes each asked quantization from that file.
3. Beside the files: an Ollama `Modelfile` per quantization (TEMPLATE and a stop line for every
   end-of-turn string), the tokenizer (so that the Compare and Chat tabs render prompts as
   training did), a README card and `gguf_export.json`.
4. The self-check (`gguf_check`) compares each file with the merged model on the run's held-out
   prompts. A failed check keeps the files and marks the export failed, with the reason.

Everything is written into a hidden sibling folder and renamed into `workspace/models/<name>/`
at the end, so an interrupted export never leaves a half model that a picker would offer.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.export import llama_cpp
from studio.export.export import ExportError, copy_tokenizer, free_name, stop_ids, trained_of
from studio.export.gguf_check import CheckInputs, check_table, self_check
from studio.fsutil import atomic_write_text, dir_size
from studio.hardware import peak_rss_mb

QUANTS = tuple(llama_cpp.QUANT_TYPES)
DEFAULT_QUANTS = ("q8_0", "q4_k_m")
EXPORT_FILE = "gguf_export.json"
CHECK_PROMPTS = 20
GENERATION_MARKERS = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")
# Prompts for a model that has no held-out rows of its own (a workspace model, not a run).
DEFAULT_PROMPTS = (
    "こんにちは。自己紹介をしてください。",
    "日本の首都はどこですか？",
    "おすすめの本を一冊教えてください。",
    "お茶の淹れ方を教えてください。",
    "雨の日の過ごし方は？",
    "猫と犬、どちらが好きですか？",
    "富士山について一文で説明してください。",
    "朝ごはんに何を食べましたか？",
    "週末の予定を教えてください。",
    "好きな季節とその理由は？",
    "Hello! Who are you?",
    "What is the capital of France?",
    "Give me one tip for learning Japanese.",
    "Describe the sea in one sentence.",
    "What do you like to do on rainy days?",
    "Name three fruits.",
    "How do I make green tea?",
    "What is 12 plus 30?",
    "Tell me a short story about a cat.",
    "Say goodbye politely.",
)


class GGUFError(ExportError):
    """The GGUF export cannot be made; the message says why and what to do."""

    code = "gguf_error"


@dataclass
class GGUFExported:
    name: str
    path: Path
    files: dict  # quantization -> file name
    status: str  # "ok" | "failed" | "unchecked"
    reason: str | None
    check: dict | None
    seconds: float
    bytes: int
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


def training_template(template: str | None) -> str | None:
    """The template as llama.cpp, LM Studio and Ollama should get it: without the
    `{% generation %}` markers, which only tell training which tokens carry loss."""
    return GENERATION_MARKERS.sub("", template) if template else template


def declared_pre(folder: Path) -> str | None:
    """The llama.cpp pre-tokenizer a BPE tokenizer's own definition names, when the converter
    does not know its hash: a byte-level BPE with GPT-2's split and no normalizer is llama.cpp's
    `gpt-2`. None for anything else (the converter's refusal then stands)."""
    try:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if model.get("type") != "BPE" or spec.get("normalizer") not in (None, {}):
        return None
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers") or []) == 1:
        pre = pre["pretokenizers"][0]
    if (
        pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space")
    ):
        return "gpt-2"
    return None


# --- what the check runs on -------------------------------------------------------------------
def _prompt_and_text(row: dict, tokenizer, chat: bool) -> tuple[str, str] | None:
    """A held-out row as (rendered prompt, full text for perplexity)."""
    from studio.models.info import apply_chat_template

    def render(messages, generation):
        return apply_chat_template(
            tokenizer, messages, tokenize=False, add_generation_prompt=generation
        )

    if "messages" in row and chat:
        msgs = list(row["messages"])
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
        if not last:
            return None
        return render(msgs[:last], True), render(msgs[: last + 1], False)
    prompt, reply = row.get("prompt"), row.get("completion", row.get("chosen"))
    if prompt is not None and reply is not None:
        if chat:
            turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            answer = reply if isinstance(reply, list) else [{"role": "assistant", "content": reply}]
            return render(turns, True), render(turns + answer, False)
        if isinstance(prompt, str) and isinstance(reply, str):
            return prompt, prompt + reply
        return None
    text = row.get("text")
    if isinstance(text, str) and text.strip():
        return text[: max(16, min(120, len(text) // 3))], text[:2000]
    return None


def run_inputs(ws, run, tokenizer, stops: list[int], n: int = CHECK_PROMPTS) -> CheckInputs:
    """The run's own held-out rows (the validation split it trained with), or when it held
    none out, its first rows; as rendered prompts and texts."""
    from studio.runs.history import config_of
    from studio.train.data import _held_out, resolve_versions, stage_rows

    config = config_of(run)
    specs = config.get("dataset")
    specs = [specs] if isinstance(specs, str) else list(specs or [])
    stage = (config.get("encoding") or {}).get("stage", "sft")
    chat = bool(getattr(tokenizer, "chat_template", None)) and stage != "pretrain"
    share = float(config.get("validation_split") or 0)
    seed = int((config.get("training") or {}).get("seed", 42))
    prompts, texts = [], []
    try:
        total = sum(int(v.rows or 0) for v in resolve_versions(ws, specs))
        wanted = None
        if share > 0 and total:
            wanted = set(sorted(_held_out(total, share, seed).tolist())[: n * 3])
        source = "held-out rows" if wanted else "first rows (the run held none out)"
        for index, row in stage_rows(ws, specs, None):
            if wanted is not None and index not in wanted:
                if index > max(wanted):
                    break
                continue
            pair = _prompt_and_text(row, tokenizer, chat)
            if pair:
                prompts.append(pair[0])
                texts.append(pair[1])
            if len(prompts) >= n:
                break
    except (StudioError, LookupError, OSError) as exc:
        source = f"default prompts (the run's data could not be read: {exc})"
    if not prompts:
        return default_inputs(tokenizer, stops, source="default prompts")
    return CheckInputs(prompts, chat, texts, f"{run.id}: {source}", stops, paired=True)


def default_inputs(tokenizer, stops: list[int], *, source: str = "default prompts",
                   prompts: list[str] | None = None) -> CheckInputs:  # fmt: skip
    from studio.models.info import apply_chat_template

    chat = bool(getattr(tokenizer, "chat_template", None))
    raw = list(prompts or DEFAULT_PROMPTS)
    if chat:
        rendered = [
            apply_chat_template(
                tokenizer,
                [{"role": "user", "content": p}],
                tokenize=False,
                add_generation_prompt=True,
            )  # fmt: skip
            for p in raw
        ]
    else:
        rendered = raw
    return CheckInputs(rendered, chat, rendered, source, stops)


# --- export -----------------------------------------------------------------------------------
def _merged(ws, spec: str, work: Path) -> tuple[Path, dict]:
    """A folder holding the full HF model to convert, and what it is: a run's final model or
    best checkpoint merged into its base, or a full model of the workspace as it is."""
    from studio.export.export import _write
    from studio.runs.store import open_run

    if spec.startswith("run:") or "@" in spec or (ws.runs / spec.split("@")[0]).is_dir():
        run_id, _, at = spec.removeprefix("run:").partition("@")
        run = open_run(ws, run_id)
        info = trained_of(run)
        folder = run.final_dir
        if at == "best":
            found = run.best()
            if found is None:
                raise GGUFError(f"{run.id} has no best checkpoint", code="no_best_checkpoint",
                                run=run.id)  # fmt: skip
            folder = found["path"]
        elif at:  # an intermediate checkpoint, RUN@<step>
            steps = ws.checkpoint_dirs(run.id)
            if f"run:{run.id}@{at}" not in steps:
                raise GGUFError(f"{run.id} has no complete checkpoint at step {at}; "
                                f"it has: {', '.join(steps) or 'none'}")  # fmt: skip
            folder = steps[f"run:{run.id}@{at}"]
        hf = work / "hf"
        hf.mkdir()
        tokenizer, _ = _write(ws, run, info, hf, mode="merged", dtype="float32", folder=folder)
        return hf, {"run": run, "info": info, "tokenizer": tokenizer}
    dirs = ws.model_dirs(checkpoints=False)
    if spec not in dirs:
        raise GGUFError(f"{spec!r} is neither a finished run nor a model of this workspace")
    folder = Path(dirs[spec])
    if not (folder / "config.json").is_file():
        raise GGUFError(
            f"{spec} is an adapter: export the run it came from, or merge it first (Export tab)"
        )
    from studio.models.load import load_tokenizer, resolve_source

    tokenizer = load_tokenizer(resolve_source(str(folder)))
    return folder, {"run": None, "info": {}, "tokenizer": tokenizer}


def convert(hf: Path, outfile: Path, outtype: str, *, eot: int | None,
            template: Path | None) -> dict:  # fmt: skip
    """llama.cpp's converter, in its own process (its memory is given back when it ends)."""
    cmd = [sys.executable, "-m", "studio.export.gguf_convert", str(llama_cpp.tools_dir()),
           str(hf), "--outfile", str(outfile), "--outtype", outtype]  # fmt: skip
    pre = declared_pre(hf)
    if pre:
        cmd += ["--pre", pre]
    if eot is not None:
        cmd += ["--eot", str(eot)]
    if template is not None:
        cmd += ["--chat-template", str(template)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    if done.returncode == 3:
        found = re.search(r"chkhsh:\s+([0-9a-f]{64})", done.stderr)
        raise GGUFError(
            "llama.cpp's converter does not recognise this tokenizer's pre-tokenizer "
            f"(hash {found.group(1) if found else '?'}), and its definition is not one the studio "
            "can name safely. Converting anyway would give a GGUF that splits text differently "
            "from training. Fine-tune a base whose tokenizer llama.cpp knows (Qwen2.5, Llama-3, "
            "Gemma, Llama-2, Phi-3, ...), or add the tokenizer to llama.cpp's "
            "convert_hf_to_gguf_update.py.",
            code="gguf_tokenizer_unknown",
            hash=found.group(1) if found else "?",
        )
    if done.returncode or not outfile.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise GGUFError(f"llama.cpp's converter failed:\n{tail}", code="gguf_convert_failed",
                        tail=tail)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def gguf_adds_bos(path: Path) -> bool:
    """`tokenizer.ggml.add_bos_token` of a GGUF (read with llama.cpp's gguf-py)."""
    sys.path.insert(0, str(llama_cpp.tools_dir() / "gguf-py"))
    try:
        import gguf
    finally:
        sys.path.pop(0)
    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get("tokenizer.ggml.add_bos_token")
    return bool(field.contents()) if field is not None else False


def export_gguf(ws, spec: str, *, quants=DEFAULT_QUANTS, name: str | None = None,
                check: bool = True, prompts: list[str] | None = None,
                progress=None) -> GGUFExported:  # fmt: skip
    """Export `spec` (a run id, `RUN@best`, `RUN@<step>`, or a full model of the workspace) as GGUF files,
    one per quantization, and check them. `progress(text)` hears each step."""
    from studio.export import ollama

    quants = list(dict.fromkeys(q.lower() for q in (quants or DEFAULT_QUANTS)))
    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise GGUFError(f"unknown quantization {', '.join(unknown)}; choose from {', '.join(QUANTS)}",
                        code="gguf_quant_unknown", quants=", ".join(QUANTS))  # fmt: skip
    llama_cpp.require()
    say = progress or (lambda text: None)
    started = time.perf_counter()
    spec = (spec or "").strip()
    if not spec:
        raise GGUFError("choose a run or a model to export")
    base_name = name or f"{spec.removeprefix('run:').replace('@', '-')}-gguf"
    target_name = free_name(ws, base_name)
    ws.models.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target_name}.", dir=ws.models))
    out = work / "export"
    out.mkdir()
    try:
        say("merge")
        hf, what = _merged(ws, spec, work)
        tokenizer, info, run = what["tokenizer"], what["info"], what["run"]
        stops = stop_ids(tokenizer, info.get("encoding"))
        eot = next((i for i in stops if i != tokenizer.eos_token_id), None)
        # The export's tokenizer files, with the template as llama.cpp and Ollama get it; the
        # converter stores that same file.
        copy_tokenizer(hf, out)
        template = training_template(getattr(tokenizer, "chat_template", None))
        template_file = None
        if template:
            template_file = atomic_write_text(out / "chat_template.jinja", template)
        # One 16-bit file from the converter; every other quantization from it.
        base_type = "bf16" if "bf16" in quants and "f16" not in quants else "f16"
        if "f32" in quants and len(quants) == 1:
            base_type = "f32"
        say(f"convert {base_type}")
        base_file = out / f"{target_name}-{base_type}.gguf"
        converted = convert(hf, base_file, base_type, eot=eot, template=template_file)
        files = {}
        for quant in quants:
            path = out / f"{target_name}-{quant}.gguf"
            if quant != base_type:
                say(f"quantize {quant}")
                llama_cpp.quantize(base_file, path, quant)
            files[quant] = path
        if base_type not in quants:
            base_file.unlink()
        # Ollama
        adds_bos = gguf_adds_bos(files[quants[0]])
        stop_strings = [s for s in tokenizer.convert_ids_to_tokens(stops) if s]
        parts, template_note = None, None
        if template:
            try:
                parts = ollama.template_parts(tokenizer, strip_bos=adds_bos)
                bad = ollama.template_matches(tokenizer, parts, strip_bos=adds_bos)
                if bad:
                    parts, template_note = None, f"conversations {bad} rendered differently"
            except ollama.TemplateShapeError as exc:
                template_note = str(exc)
        for quant, path in files.items():
            atomic_write_text(out / f"Modelfile.{quant}",
                              ollama.modelfile(path.name, stop_strings, parts))  # fmt: skip
        preferred = next((q for q in ("q4_k_m", "q8_0") if q in files), quants[0])
        shutil.copy2(out / f"Modelfile.{preferred}", out / "Modelfile")
        record = {
            "source": spec,
            "run": run.id if run else None,
            "quants": {q: p.name for q, p in files.items()},
            "converted_from": base_type,
            "pre_tokenizer": converted.get("pre"),
            "pre_tokenizer_declared": converted.get("declared"),
            "stop_ids": stops,
            "stop_strings": stop_strings,
            "eot_id": eot,
            "adds_bos": adds_bos,
            "ollama_template": parts is not None,
            "ollama_template_note": template_note,
            "llama_cpp_python": llama_cpp.runtime_version(),
            "status": "unchecked",
            "reason": None,
        }
        report = None
        if check:
            say("check")
            if prompts:
                inputs = default_inputs(tokenizer, stops, source="your prompts", prompts=prompts)
            elif run is not None:
                inputs = run_inputs(ws, run, tokenizer, stops)
            else:
                inputs = default_inputs(tokenizer, stops)
            report = self_check(hf, files, inputs, progress=lambda q: say(f"check {q}"))
            failed = [r for r in report["results"] if r["verdict"] == "fail"]
            record["status"] = "failed" if failed else "ok"
            if failed:
                record["reason"] = "; ".join(f"{r['quant']}: {', '.join(r['defects'])}"
                                             for r in failed)  # fmt: skip
            atomic_write_text(out / "gguf_check.json",
                              json.dumps(report, ensure_ascii=False, indent=2))  # fmt: skip
        atomic_write_text(out / EXPORT_FILE, json.dumps(record, ensure_ascii=False, indent=2))
        atomic_write_text(out / "README.md", card(target_name, record, report, info))
        target = ws.models / target_name
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return GGUFExported(
        name=target_name,
        path=target,
        files=record["quants"],
        status=record["status"],
        reason=record["reason"],
        check=report,
        seconds=round(time.perf_counter() - started, 2),
        bytes=dir_size(target),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )


def card(name: str, record: dict, report: dict | None, info: dict) -> str:
    files = "\n".join(f"- `{f}` ({q})" for q, f in record["quants"].items())
    stops = ", ".join(f"`{s}`" for s in record["stop_strings"])
    lines = [
        f"# {name}",
        "",
        f"GGUF export of `{record['source']}` by Tsumugi Studio, converted and quantized with "
        f"llama.cpp (llama-cpp-python {record['llama_cpp_python']}).",
        "",
        files,
        "",
        "## Running it",
        "",
        f"- llama.cpp: `llama-cli -m {next(iter(record['quants'].values()))} -cnv`",
        f"- Ollama: `ollama create {name} -f Modelfile` (one `Modelfile.<quant>` per file)",
        "",
        f"Replies end on {stops}: the Modelfile stops on each, and the GGUF marks them as the "
        "end of generation.",
        "",
    ]
    if info.get("method"):
        lines += [f"Fine-tuned with **{info.get('method')}** from `{info.get('base_model')}`.", ""]
    lines += ["## Self-check", ""]
    if report is None:
        lines.append("Not checked.")
    else:
        lines += [check_table(report, "en"), "", f"Prompts: {report['source']}."]
    if record["status"] == "failed":
        lines += ["", f"**This export failed its check:** {record['reason']}."]
    return "\n".join(lines) + "\n"


def read_export(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def gguf_models(models_dir: Path) -> dict[str, Path]:
    """Every exported GGUF of the workspace as `<folder>:<quant>` -> file."""
    found = {}
    for folder in sorted(models_dir.glob("*")):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        record = read_export(folder)
        for quant, file in ((record or {}).get("quants") or {}).items():
            path = folder / str(file)
            if path.is_file() and path.parent == folder:
                found[f"{folder.name}:{quant}"] = path
    return found


def register_ollama(ws, name: str, *, quant: str | None = None, model_name: str | None = None):
    """`ollama create` with the export's Modelfile (the preferred one, or `quant`'s)."""
    from studio.export import ollama
    from studio.safety import safe_name

    folder = ws.models / safe_name(name)
    record = read_export(folder)
    if record is None:
        raise GGUFError(f"{name} is not a GGUF export of this workspace")
    modelfile = folder / (f"Modelfile.{quant}" if quant else "Modelfile")
    if not modelfile.is_file():
        raise GGUFError(f"{name} has no {modelfile.name}")
    if record.get("status") == "failed":
        raise GGUFError(
            f"{name} failed its self-check ({record.get('reason')}); it is not registered",
            code="gguf_check_failed",
            reason=record.get("reason"),
        )
    tag = ollama.ollama_tag(model_name or name)
    return tag, ollama.create(tag, modelfile)
