"""Real tokenizers and chat templates of five model families, as test fixtures.

No machine that runs the tests reaches a model hub, but the Python package registry carries
the llama-cpp-python source distribution, and that vendors llama.cpp's vocab-only GGUF files
(``vendor/llama.cpp/models/ggml-vocab-*.gguf``): the full vocabulary, merges, scores and token
types of each tokenizer, with test strings (``.gguf.inp``) and the ids the real Hugging Face
tokenizer gave them (``.gguf.out``), plus the models' chat templates (``models/templates``).

From those files this module builds, once per machine, one folder per family:

* ``tokenizer.json``: built with the ``tokenizers`` library the way the family's own
  tokenizer.json is built (normalizer, pre-tokenizer, model, decoder, post-processor, added
  tokens), NOT with transformers' ``gguf_file=`` conversion, which is slow and wrong (it gets
  most SentencePiece cases wrong and gives Llama-3 and DeepSeek the GPT-2 pre-tokenizer);
* ``tokenizer_config.json`` with the special tokens and the chat template;
* a random-weight causal LM of the family's architecture and exact vocabulary size
  (hidden size 16, one layer) with its ``generation_config.json``;
* ``vocab_cases.json``: the ``.inp``/``.out`` pairs, which the built tokenizer must reproduce.

Folders live under ``$STUDIO_TEST_CACHE`` (default ``~/.cache/studio-tests``) in
``real-families/<BUILD_VERSION>/<name>/``. The sdist is taken from ``$STUDIO_LLAMA_CPP_SDIST``
(a local ``.tar.gz``) or downloaded with pip; only the members needed are kept.

Run as a script to build (or check) the folders: ``python tests/real_families.py [NAMES...]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from functools import cache
from pathlib import Path

FAMILIES = ("qwen2.5", "llama-3.1", "llama-2", "phi-3.5", "deepseek-llm")

# Bump whenever what the builder writes changes: old folders are then simply not used.
BUILD_VERSION = "1"

SDIST_PACKAGE = "llama-cpp-python"
SDIST_VERSION = "0.3.36"
SDIST_ENV = "STUDIO_LLAMA_CPP_SDIST"
CACHE_ENV = "STUDIO_TEST_CACHE"

_MODELS = "vendor/llama.cpp/models/"
_CASE_SEPARATOR = "\n__ggml_vocab_test__\n"

# token_type values of llama.cpp's GGUF vocabularies
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# --- pre-tokenizer regexes, from vendor/llama.cpp/src/llama-vocab.cpp ------------------------
# Qwen2 and Llama-3: the "original regex from tokenizer.json" that llama-vocab.cpp keeps in a
# comment above its own case-folding rewrite (LLAMA_VOCAB_PRE_TYPE_QWEN2 / _LLAMA3).
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM, in that order, character for character. Written with
# escapes on purpose: several of these letters (U+1F7D, U+1FD3, U+212A, ...) have canonical
# equivalents that editors and copy-paste like to substitute, which breaks the ranges.
DEEPSEEK_LLM_REGEXES = (
    "[\r\n]",
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293"
    "\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c"
    "\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5"
    "\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
    "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59"
    "\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc"
    "\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107"
    "\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee"
    "\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e"
    "\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a"
    "\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2"
    "\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    "\\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    "\\p{N}+",
)

# --- chat templates that the sdist does not carry ---------------------------------------------
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)
DEEPSEEK_LLM_CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}"
    "{% endif %}{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# --- special tokens the GGUF files are too old to name ---------------------------------------
# ggml-vocab-qwen2.gguf is the Qwen1.5/Qwen2 vocabulary: ids 151646.. are "[PAD…]" fillers
# there. Qwen2.5 (same BPE vocabulary and merges) uses these 22 ids; True = special.
QWEN25_ADDED = {
    151646: ("<|object_ref_start|>", True),
    151647: ("<|object_ref_end|>", True),
    151648: ("<|box_start|>", True),
    151649: ("<|box_end|>", True),
    151650: ("<|quad_start|>", True),
    151651: ("<|quad_end|>", True),
    151652: ("<|vision_start|>", True),
    151653: ("<|vision_end|>", True),
    151654: ("<|vision_pad|>", True),
    151655: ("<|image_pad|>", True),
    151656: ("<|video_pad|>", True),
    151657: ("<tool_call>", False),
    151658: ("</tool_call>", False),
    151659: ("<|fim_prefix|>", False),
    151660: ("<|fim_middle|>", False),
    151661: ("<|fim_suffix|>", False),
    151662: ("<|fim_pad|>", False),
    151663: ("<|repo_name|>", False),
    151664: ("<|file_sep|>", False),
}
# ggml-vocab-llama-bpe.gguf is Llama-3(.0): Llama-3.1 renamed four reserved tokens and
# renumbered the rest (<|reserved_special_token_3|> moved from 128005 to 128011, and so on).
LLAMA31_RENAMED = {
    128004: "<|finetune_right_pad_id|>",
    128005: "<|reserved_special_token_2|>",
    128008: "<|eom_id|>",
    128010: "<|python_tag|>",
}


class Unavailable(RuntimeError):
    """The fixture cannot be built here (no sdist and no way to download it, a missing tool)."""


FAMILY_SPECS = {
    "qwen2.5": {
        "gguf": "qwen2",
        "pre": "qwen2",
        "template_file": "Qwen-Qwen2.5-7B-Instruct.jinja",
        "arch": "qwen2",
    },
    "llama-3.1": {
        "gguf": "llama-bpe",
        "pre": "llama-bpe",
        "template_file": "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "arch": "llama",
    },
    "llama-2": {
        "gguf": "llama-spm",
        "pre": "default",
        "template": LLAMA2_CHAT_TEMPLATE,
        "arch": "llama",
    },
    "phi-3.5": {
        "gguf": "phi-3",
        "pre": "default",
        "template_file": "microsoft-Phi-3.5-mini-instruct.jinja",
        "arch": "phi3",
    },
    "deepseek-llm": {
        "gguf": "deepseek-llm",
        "pre": "deepseek-llm",
        "template": DEEPSEEK_LLM_CHAT_TEMPLATE,
        "arch": "llama",
    },
}


# --- where things live ------------------------------------------------------------------------
def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "studio-tests"
    return Path(base) / "real-families" / BUILD_VERSION


def _sdist_members() -> list[str]:
    names = []
    for spec in FAMILY_SPECS.values():
        stem = f"ggml-vocab-{spec['gguf']}.gguf"
        names += [stem, stem + ".inp", stem + ".out"]
        if "template_file" in spec:
            names.append("templates/" + spec["template_file"])
    return names


def _readable(folder: Path) -> None:
    """mkdtemp makes private folders; a shared cache should be readable by all."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _install_dir(tmp: Path, final: Path) -> Path:
    """Move a complete folder into place; if another process got there first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _download_sdist(into: Path) -> Path:
    spec = f"{SDIST_PACKAGE}=={SDIST_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "--no-binary", ":all:"]
    cmd += ["--disable-pip-version-check", "--retries", "1", "--timeout", "30", "-q"]
    cmd += ["-d", str(into)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        done = None
        why = str(exc)
    if done is not None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"pip exited {done.returncode}"
    found = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if done is None or done.returncode != 0 or not found:
        raise Unavailable(
            f"could not download the {spec} sdist with pip ({why}); "
            f"set {SDIST_ENV}=/path/to/llama_cpp_python-{SDIST_VERSION}.tar.gz"
        )
    return found[0]


_sdist_failure: list[str] = []  # once fetching failed, this process does not try again


def sdist_dir() -> Path:
    """The members of the sdist the builder reads, extracted once (flat, under 'sdist/')."""
    if _sdist_failure:
        raise Unavailable(_sdist_failure[0])
    try:
        return _sdist_dir()
    except Unavailable as exc:
        _sdist_failure.append(str(exc))
        raise


def _sdist_dir() -> Path:
    final = cache_root() / "sdist"
    wanted = _sdist_members()
    if final.is_dir() and all((final / name).is_file() for name in wanted):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".sdist-", dir=final.parent))
    try:
        tarball = os.environ.get(SDIST_ENV)
        if tarball:
            if not Path(tarball).is_file():
                raise Unavailable(f"{SDIST_ENV}={tarball} is not a file")
            tarball = Path(tarball)
        else:
            tarball = _download_sdist(work / "download")
        out = work / "sdist"
        (out / "templates").mkdir(parents=True)
        remaining = set(wanted)
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                # members are "<top>/vendor/llama.cpp/models/<name>"
                _, _, rest = member.name.partition("/")
                if not member.isfile() or not rest.startswith(_MODELS):
                    continue
                name = rest[len(_MODELS) :]
                if name in remaining:
                    src = tar.extractfile(member)
                    assert src is not None
                    with src, open(out / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    remaining.discard(name)
                    if not remaining:
                        break
        if remaining:
            raise Unavailable(f"{tarball} lacks {', '.join(sorted(remaining))}")
        if final.is_dir():  # an incomplete copy (files were removed from it): replace it
            shutil.rmtree(final, ignore_errors=True)
        _readable(out)
        _install_dir(out, final)
    except tarfile.TarError as exc:
        raise Unavailable(f"cannot read the llama-cpp-python sdist: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the 76 MB tarball does not stay
    return final


# --- reading the GGUF vocabulary --------------------------------------------------------------
def read_gguf_vocab(path: Path) -> dict:
    try:
        import gguf
    except ImportError as exc:
        raise Unavailable(
            "the gguf package is not installed (pip install -r requirements-dev.txt)"
        ) from exc
    reader = gguf.GGUFReader(str(path))

    def field(key, default=None):
        f = reader.fields.get(key)
        return default if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens")
    return {
        "model": field("tokenizer.ggml.model"),
        "pre": field("tokenizer.ggml.pre"),
        "tokens": tokens,
        "types": [int(t) for t in field("tokenizer.ggml.token_type")],
        "scores": field("tokenizer.ggml.scores"),
        "merges": field("tokenizer.ggml.merges"),
        "bos": field("tokenizer.ggml.bos_token_id"),
        "eos": field("tokenizer.ggml.eos_token_id"),
        "pad": field("tokenizer.ggml.padding_token_id"),
        "unk": field("tokenizer.ggml.unknown_token_id"),
        "add_bos": field("tokenizer.ggml.add_bos_token"),
    }


def _is_filler(token: str, index: int) -> bool:
    """convert_hf_to_gguf pads the vocabulary up to the embedding size with "[PAD<id>]"."""
    return token == f"[PAD{index}]"


def read_cases(inp: Path, out: Path) -> list[tuple[str, list[int]]]:
    texts = inp.read_text(encoding="utf-8")
    if texts.endswith(_CASE_SEPARATOR):
        texts = texts[: -len(_CASE_SEPARATOR)]
    texts = texts.split(_CASE_SEPARATOR)
    lines = out.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(texts) != len(lines):
        raise ValueError(f"{inp.name}: {len(texts)} strings but {len(lines)} lines of ids")
    return [(text, [int(i) for i in line.split()]) for text, line in zip(texts, lines, strict=True)]


# --- the tokenizers -----------------------------------------------------------------------------
def _added(content, special, **kw):
    from tokenizers import AddedToken

    return AddedToken(content, special=special, normalized=False, **kw)


def _spm_merges(tokens, types, scores):
    """The merges SentencePiece's BPE implies: every split of a piece into two pieces of the
    vocabulary, ranked by the merged piece's score (highest first), as transformers'
    SentencePieceExtractor does it."""
    vocab = {t: i for i, (t, ty) in enumerate(zip(tokens, types, strict=True)) if ty == NORMAL}
    merges = []
    for piece, pid in vocab.items():
        local = []
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                local.append((left, right, scores[pid]))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges += local
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep vocabulary order
    return [(left, right) for left, right, _ in merges]


def build_tokenizer(name: str, v: dict):
    """A tokenizers.Tokenizer like the family's own tokenizer.json, and its added tokens
    (id -> AddedToken) for checking."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors as proc

    tokens, types = list(v["tokens"]), v["types"]
    added = {}  # id -> AddedToken, in id order
    if v["model"] == "gpt2":  # byte-level BPE
        vocab = {t: i for i, (t, ty) in enumerate(zip(tokens, types, strict=True)) if ty == NORMAL}
        merges = [tuple(m.split(" ", 1)) for m in v["merges"]]
        for i, (t, ty) in enumerate(zip(tokens, types, strict=True)):
            if ty == CONTROL:
                added[i] = _added(t, True)
            elif ty == USER_DEFINED and not _is_filler(t, i):
                added[i] = _added(t, False)
        if name == "qwen2.5":
            for i, (t, special) in QWEN25_ADDED.items():
                assert _is_filler(tokens[i], i), (i, tokens[i])
                added[i] = _added(t, special)
        if name == "llama-3.1":
            for i, t in LLAMA31_RENAMED.items():
                added[i] = _added(t, True)
            for i in range(128011, 128256):
                added[i] = _added(f"<|reserved_special_token_{i - 128008}|>", True)
        model = models.BPE(
            vocab=vocab,
            merges=merges,
            dropout=None,
            unk_token=None,
            fuse_unk=False,
            byte_fallback=False,
            ignore_merges=name == "llama-3.1",
        )
        tok = Tokenizer(model)
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        if name == "deepseek-llm":
            splits = [
                pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False)
                for r in DEEPSEEK_LLM_REGEXES
            ]
        else:
            regex = QWEN2_REGEX if name == "qwen2.5" else LLAMA3_REGEX
            splits = [pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)]
        tok.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])
        if name == "qwen2.5":
            tok.normalizer = normalizers.NFC()
        tok.decoder = decoders.ByteLevel()
        byte_post = proc.ByteLevel(trim_offsets=False)
        if name == "qwen2.5":
            tok.post_processor = byte_post
        else:
            bos = added[v["bos"]].content
            bos_post = proc.TemplateProcessing(
                single=f"{bos} $A",
                pair=f"{bos} $A {bos}:1 $B:1",
                special_tokens=[(bos, v["bos"])],
            )
            tok.post_processor = proc.Sequence([byte_post, bos_post])
    else:  # "llama": SentencePiece BPE, as meta-llama/Llama-2-7b-chat-hf's tokenizer.json
        base = [i for i, ty in enumerate(types) if ty in (NORMAL, BYTE) or i < 3]
        n_base = max(base) + 1  # 32000: the SentencePiece model; the rest are added tokens
        vocab = {tokens[i]: i for i in range(n_base)}
        model = models.BPE(
            vocab=vocab,
            merges=_spm_merges(tokens[:n_base], types[:n_base], v["scores"]),
            dropout=None,
            unk_token=tokens[v["unk"]],
            fuse_unk=True,
            byte_fallback=True,
        )
        tok = Tokenizer(model)
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
        )
        tok.decoder = decoders.Sequence(
            [
                decoders.Replace("▁", " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(" ", 1, 0),
            ]
        )
        for i, (t, ty) in enumerate(zip(tokens, types, strict=True)):
            if ty in (NORMAL, BYTE, UNUSED) or _is_filler(t, i):
                continue
            if name == "phi-3.5":
                # llama-vocab.cpp, phi-3: every special token strips the spaces after it,
                # </s> too, except <unk>, <s> and <|endoftext|>
                rstrip = t not in ("<unk>", "<s>", "<|endoftext|>")
                added[i] = _added(t, ty != USER_DEFINED, rstrip=rstrip)
            else:
                added[i] = _added(t, True)
        bos = tokens[v["bos"]]
        with_bos = name == "llama-2"  # Phi-3.5 does not add <s> (add_bos_token false)
        tok.post_processor = proc.TemplateProcessing(
            single=f"{bos} $A" if with_bos else "$A",
            pair=f"{bos} $A {bos}:1 $B:1" if with_bos else "$A $B:1",
            special_tokens=[(bos, v["bos"])] if with_bos else [],
        )
    for i in sorted(added):  # ids follow the base vocabulary without gaps
        token = added[i]
        if token.special:
            tok.add_special_tokens([token])
        else:
            tok.add_tokens([token])
        got = tok.token_to_id(token.content)
        if got != i:
            raise AssertionError(f"{name}: added token {token.content!r} got id {got}, not {i}")
    return tok, added


TOKENIZER_CONFIGS = {
    "qwen2.5": {
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 32768,
    },
    "llama-3.1": {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "model_max_length": 131072,
    },
    "llama-2": {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": True,
        "model_max_length": 4096,
    },
    "phi-3.5": {
        "bos_token": "<s>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<unk>",
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 131072,
    },
    "deepseek-llm": {
        "bos_token": "<｜begin▁of▁sentence｜>",
        "eos_token": "<｜end▁of▁sentence｜>",
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 4096,
    },
}

# bos, eos and pad ids of config.json and generation_config.json
MODEL_IDS = {
    "qwen2.5": {
        "config": {"bos_token_id": 151643, "eos_token_id": 151645, "pad_token_id": None},
        "generation": {
            "bos_token_id": 151643,
            "eos_token_id": [151645, 151643],
            "pad_token_id": 151643,
        },
    },
    "llama-3.1": {
        "config": {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]},
        "generation": {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]},
    },
    "llama-2": {
        "config": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None},
        "generation": {"bos_token_id": 1, "eos_token_id": 2},
    },
    "phi-3.5": {
        "config": {"bos_token_id": 1, "eos_token_id": 32000, "pad_token_id": 32000},
        "generation": {"bos_token_id": 1, "eos_token_id": [32007, 32001, 32000]},
    },
    "deepseek-llm": {
        "config": {"bos_token_id": 100000, "eos_token_id": 100001, "pad_token_id": None},
        "generation": {"bos_token_id": 100000, "eos_token_id": 100001},
    },
}


def tokenizer_config(name: str, template: str) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **TOKENIZER_CONFIGS[name],
        "clean_up_tokenization_spaces": False,
        "chat_template": template,
    }


# --- the tiny models ----------------------------------------------------------------------------
def save_tiny_model(name: str, folder: Path, vocab_size: int) -> None:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        GenerationConfig,
        LlamaConfig,
        Phi3Config,
        Qwen2Config,
    )

    ids = MODEL_IDS[name]
    rope_theta = {"qwen2.5": 1e6, "llama-3.1": 5e5}.get(name, 1e4)
    config_class = {"qwen2": Qwen2Config, "llama": LlamaConfig, "phi3": Phi3Config}
    config = config_class[FAMILY_SPECS[name]["arch"]](
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=TOKENIZER_CONFIGS[name]["model_max_length"],
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        **ids["config"],
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(**ids["generation"])
    model.save_pretrained(folder, safe_serialization=True)


# --- building and caching -----------------------------------------------------------------------
def build_family(name: str, dest: Path) -> None:
    """Write the family's folder into dest (which exists and is empty)."""
    if name not in FAMILY_SPECS:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    spec = FAMILY_SPECS[name]
    src = sdist_dir()
    stem = f"ggml-vocab-{spec['gguf']}.gguf"
    v = read_gguf_vocab(src / stem)
    if v["pre"] != spec["pre"]:  # the pre-tokenizer chosen here must be the file's
        raise AssertionError(f"{stem}: tokenizer.ggml.pre is {v['pre']!r}, not {spec['pre']!r}")
    tok, added = build_tokenizer(name, v)
    ids = MODEL_IDS[name]
    named = [*ids["config"].values(), *ids["generation"].values()]
    for token_id in [i for x in named for i in (x if isinstance(x, list) else [x])]:
        if token_id is not None and not (token_id in added and added[token_id].special):
            raise AssertionError(f"{name}: id {token_id} of the model configs is no special token")
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        token = TOKENIZER_CONFIGS[name].get(key)
        if token is not None and tok.token_to_id(token) is None:
            raise AssertionError(f"{name}: {key} {token!r} is not in the vocabulary")
    tok.save(str(dest / "tokenizer.json"), pretty=False)
    if "template_file" in spec:
        template = (src / "templates" / spec["template_file"]).read_text(encoding="utf-8")
    else:
        template = spec["template"]
    config = tokenizer_config(name, template)
    (dest / "tokenizer_config.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    cases = read_cases(src / (stem + ".inp"), src / (stem + ".out"))
    (dest / "vocab_cases.json").write_text(
        json.dumps(cases, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    save_tiny_model(name, dest, vocab_size=len(v["tokens"]))
    (dest / "SOURCE.txt").write_text(
        f"Built by tests/real_families.py (BUILD_VERSION {BUILD_VERSION}) from {stem} of the "
        f"{SDIST_PACKAGE} {SDIST_VERSION} sdist (vendor/llama.cpp/models).\n",
        encoding="utf-8",
    )


def family_dir(name: str) -> Path:
    """The family's folder, built on first use (atomically, so racing processes are safe)."""
    if name not in FAMILY_SPECS:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    final = cache_root() / name
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        build_family(name, tmp)
        _readable(tmp)
        return _install_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@cache
def tokenizer(name: str):
    """The family's tokenizer, loaded once per process and shared: do not change it in a test
    (copy.deepcopy it, or load your own from family_dir(name))."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(family_dir(name))


def require(name: str) -> Path:
    """family_dir for tests: skips the test when the fixture cannot be built here."""
    import pytest

    try:
        return family_dir(name)
    except Unavailable as exc:
        pytest.skip(str(exc))


def vocab_cases(name: str) -> list[tuple[str, list[int]]]:
    """The test strings of the family's GGUF and the ids the real tokenizer gave them."""
    raw = json.loads((family_dir(name) / "vocab_cases.json").read_text(encoding="utf-8"))
    return [(text, ids) for text, ids in raw]


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never ask a hub
    names = argv or list(FAMILIES)
    for name in names:
        if name not in FAMILY_SPECS:
            print(f"unknown family {name!r}; known: {', '.join(FAMILIES)}", file=sys.stderr)
            return 2
    for name in names:
        start = time.perf_counter()
        try:
            folder = family_dir(name)
        except Unavailable as exc:
            print(f"{name}: unavailable: {exc}", file=sys.stderr)
            return 1
        built = time.perf_counter() - start
        start = time.perf_counter()
        tok = tokenizer(name)
        loaded = time.perf_counter() - start
        cases = vocab_cases(name)
        bad = [
            text for text, ids in cases if tok(text, add_special_tokens=False)["input_ids"] != ids
        ]
        print(
            f"{name:13s} {folder}  {_folder_size(folder) / 1e6:.1f} MB  "
            f"folder {built:.1f} s, tokenizer load {loaded:.1f} s, "
            f"{len(cases) - len(bad)}/{len(cases)} vocab cases match"
        )
        for text in bad:
            print(f"    mismatch: {text!r}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
