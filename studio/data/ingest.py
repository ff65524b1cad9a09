"""Bring a file into the workspace as a dataset version in one of the canonical row forms.

Reads `.jsonl`, `.json`, `.csv`, `.tsv`, `.parquet` and `.txt` (one document per line, or
documents separated by blank lines), streaming: rows go one at a time into an Arrow dataset
on disk (`datasets.Dataset.from_generator`), so a file of several GB is never held in memory.
Text files may be UTF-8 (with or without BOM), CP932/Shift_JIS or EUC-JP; the encoding is
detected from the first megabyte. Malformed rows are reported with their line numbers; the
import either stops at the first one or skips them and says which were skipped.

The row layout is detected (raw text, prompt/completion, Alpaca instruction/input/output,
OpenAI-style messages, ShareGPT from/value) and can be overridden by a column mapping; rows
are converted to the forms the trainer reads: text, prompt/completion or messages. The file
the user brought is only read, never changed.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.data.records import LineTooLong, bounded_lines
from studio.data.store import DataError, cache_dir, hf_datasets, write_version
from studio.safety import UnsafeInputError, safe_name

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt")
ENCODINGS = ("utf-8", "utf-8-sig", "cp932", "euc-jp")
SAMPLE_BYTES = 1 << 20
MAX_JSON_LIST_BYTES = 512 << 20  # a .json list is parsed whole; bigger files must be JSONL
NESTED = "JSON nested too deeply (thousands of levels of [ or {): not a row of data"
SURROGATE = (
    "holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not text; "
    "fix the escape or drop the row"
)
MAX_REPORTED = 50  # malformed rows listed in a report

# Layouts and the columns each needs (canonical name -> default source column).
LAYOUTS = {
    "text": {"text": "text"},
    "prompt_completion": {"prompt": "prompt", "completion": "completion"},
    "prompt_completion_chat": {"prompt": "prompt", "completion": "completion"},
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output"},
    "messages": {"messages": "messages"},
    "sharegpt": {"conversations": "conversations"},
    # studio.data.preference: a prompt (text or messages; a preference set's prompt may be
    # implicit in its two conversations) and two replies, or one reply and its label.
    "preference": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    "preference_chat": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    "kto": {"prompt": "prompt", "completion": "completion", "label": "label"},
    "kto_chat": {"prompt": "prompt", "completion": "completion", "label": "label"},
}
CHAT_VARIANT = {
    "prompt_completion": "prompt_completion_chat",
    "preference": "preference_chat",
    "kto": "kto_chat",
}
FORM_OF_LAYOUT = {
    "text": "text",
    "prompt_completion": "prompt_completion",
    "prompt_completion_chat": "messages",
    "alpaca": "prompt_completion",
    "messages": "messages",
    "sharegpt": "messages",
    "preference": "preference",
    "preference_chat": "preference",
    "kto": "kto",
    "kto_chat": "kto",
}
TEXT_ALIASES = ("text", "content", "body", "document", "article", "sentence",
                "テキスト", "本文", "文章", "内容")  # fmt: skip
# Column pairs read as prompt/completion, in order of preference (Japanese headers are the
# normal case for the studio's users).
PAIR_ALIASES = (
    ("prompt", "completion"),
    ("question", "answer"),
    ("input", "output"),
    ("query", "response"),
    ("質問", "回答"),
    ("質問", "答え"),
    ("問題", "答え"),
    ("問題", "解答"),
    ("指示", "応答"),
    ("入力", "出力"),
    ("プロンプト", "応答"),
    ("発話", "応答"),
)
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


class IngestError(DataError):
    """A file that cannot be imported; the message names the file (and line)."""


@dataclass
class Issue:
    """A malformed row: its line, the message, and (for the UI's language) a code and the
    message's parameters."""

    line: int
    message: str
    code: str | None = None
    params: dict = field(default_factory=dict)


@dataclass
class Inspection:
    """What a first look at a file found: enough to show the user before importing."""

    file: str
    suffix: str
    encoding: str | None
    layout: str | None  # None: the columns did not say; the user chooses and maps
    mapping: dict
    columns: list[str]
    sample: list[dict]
    issues: list[Issue] = field(default_factory=list)
    txt_mode: str | None = None
    scanned: int = 0  # rows looked at for malformed ones
    layout_error: str | None = None  # why no layout was recognised

    def to_dict(self) -> dict:
        return asdict(self)


# --- reading --------------------------------------------------------------------------
def detect_encoding(path: Path) -> str:
    """The encoding of a text file from its first megabyte: BOM, then strict UTF-8, then
    the Japanese legacy encodings (charset-normalizer decides between CP932 and EUC-JP)."""
    with open(path, "rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    if not raw:
        raise _empty(path)
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(raw):
        raise IngestError(
            f"{path.name} looks like UTF-16 text, which the studio does not read. Save it as "
            "UTF-8 (in most editors: Save as, encoding UTF-8) and try again."
        )
    if b"\x00" in raw[:8192]:
        raise IngestError(
            f"{path.name} looks like a binary file (it contains NUL bytes), not text. "
            "Bring JSONL, JSON, CSV, TSV, Parquet or plain text."
        )
    cut = raw if len(raw) < SAMPLE_BYTES else raw[: raw.rfind(b"\n") + 1] or raw
    try:
        cut.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    decodable = []
    for enc in ("cp932", "euc-jp"):
        try:
            cut.decode(enc)
            decodable.append(enc)
        except UnicodeDecodeError:
            continue
    if len(decodable) == 1:
        return decodable[0]
    if decodable:
        from charset_normalizer import from_bytes

        best = from_bytes(cut, cp_isolation=["cp932", "euc_jp"]).best()
        if best is not None:
            return "euc-jp" if best.encoding.replace("_", "-") == "euc-jp" else "cp932"
        return decodable[0]
    raise IngestError(
        f"{path.name} is not UTF-8, CP932 (Shift_JIS) or EUC-JP text. Save it as UTF-8 and "
        "try again."
    )


def _empty(path: Path) -> IngestError:
    return IngestError(
        f"{path.name} is empty: there is nothing to import. Check that it was saved "
        "completely, or choose another file."
    )


def _looks_utf16(raw: bytes) -> bool:
    """UTF-16 without a BOM: Latin letters leave a NUL in every other byte, at the same
    parity; a binary file has its NULs anywhere."""
    head = raw[:8192]
    half = len(head) // 2
    if half < 8:
        return False
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) >= half // 4 and min(even, odd) <= half // 100


def _text_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding=encoding, newline="") as fh:
        line_no = 0
        try:
            for line_no, line in enumerate(bounded_lines(fh), 1):  # noqa: B007 (used below)
                yield line_no, line
        except LineTooLong as exc:
            raise IngestError(f"{path.name}, {exc}") from None
        except UnicodeDecodeError as exc:
            raise IngestError(
                f"{path.name}, after line {line_no}: not {encoding} text ({exc.reason}). The "
                "file mixes encodings; convert it to UTF-8."
            ) from exc


def _rows_jsonl(path: Path, encoding: str) -> Iterator[tuple[int, dict | Issue]]:
    for line_no, line in _text_lines(path, encoding):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            yield line_no, Issue(line_no, f"not valid JSON ({exc.msg})", "json", {"error": exc.msg})
            continue
        except RecursionError:  # skippable like any malformed row
            yield line_no, Issue(line_no, NESTED, "nested")
            continue
        if "\\u" in line.lower() and _lone_surrogate(row):
            yield line_no, Issue(line_no, SURROGATE, "surrogate")
            continue
        if not isinstance(row, dict):
            kind = type(row).__name__
            yield (
                line_no,
                Issue(line_no, f"a JSON {kind}, not an object", "not_object", {"kind": kind}),
            )
            continue
        yield line_no, row


def _lone_surrogate(row) -> bool:
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _rows_json(path: Path, encoding: str) -> Iterator[tuple[int, dict | Issue]]:
    if path.stat().st_size > MAX_JSON_LIST_BYTES:
        raise IngestError(
            f"{path.name} is a JSON file over {MAX_JSON_LIST_BYTES >> 20} MB, which would have to "
            "be read whole; convert it to JSON Lines (one object per line)."
        )
    try:
        data = json.loads(path.read_text(encoding=encoding))
    except ValueError as exc:
        raise IngestError(f"{path.name}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise IngestError(f"{path.name}: {NESTED}") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # {"data": [...]}
    if not isinstance(data, list):
        raise IngestError(
            f"{path.name} must hold a JSON list of objects, one per row "
            '([{"text": "..."}, ...]), or be saved as JSON Lines (.jsonl)'
        )
    for n, row in enumerate(data, 1):
        yield n, row if isinstance(row, dict) else Issue(n, "not a JSON object", "not_object",
                                                         {"kind": type(row).__name__})  # fmt: skip


class _LinewiseReader:
    """csv.reader for TSV: each line is one record. Quotes still group a field within its
    line, but a lone `"` cannot swallow the lines after it (TSV is not CSV: a record never
    spans lines), so one bad line is one malformed row, reported as such."""

    def __init__(self, lines, delimiter: str) -> None:
        self.lines, self.delimiter, self.line_num = lines, delimiter, 0

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        line = next(self.lines)
        self.line_num += 1
        return next(csv.reader([line.rstrip("\r\n")], delimiter=self.delimiter), [])


def _rows_csv(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, dict | Issue]]:
    lines = (line for _, line in _text_lines(path, encoding))
    with contextlib.closing(lines):
        if delimiter == "\t":
            reader = _LinewiseReader(lines, delimiter)
        else:
            reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise _empty(path) from None
        except csv.Error as exc:
            raise IngestError(f"{path.name}, line 1: {exc}") from exc
        header = [h.strip() for h in header]
        if len(set(header)) != len(header) or not all(header):
            raise IngestError(f"{path.name}, line 1: the header has empty or repeated names")
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, Issue(reader.line_num, str(exc))
                continue
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                yield (
                    reader.line_num,
                    Issue(
                        reader.line_num,
                        f"{len(values)} fields where the header has {len(header)}",
                        "fields",
                        {"n": len(values), "header": len(header)},
                    ),
                )
                continue
            yield reader.line_num, dict(zip(header, values, strict=True))


PARQUET_BATCH = 64  # rows decoded at a time: a few huge values cannot pile up
BOMB_RATIO = 200  # decoded bytes per byte of file past which a Parquet file is a bomb
BOMB_FLOOR = 1 << 30


def _row_chars(row: dict) -> int:
    """Characters in a row's values, nested ones included."""
    total, stack = 0, list(row.values())
    while stack:
        value = stack.pop()
        if isinstance(value, str | bytes):
            total += len(value)
        elif isinstance(value, dict):
            stack += value.values()
        elif isinstance(value, list | tuple):
            stack += value
    return total


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict | Issue]]:
    """Rows of a Parquet file, decoded a few at a time, with the same cap per row as a
    text file's line (a tiny Parquet file can hold one 200 MiB value, or a dictionary that
    decodes to gigabytes): an oversized row is a malformed row, and a file that decodes to
    far more than it weighs is refused."""
    from studio.data.records import MAX_LINE_CHARS, open_parquet

    try:
        reader = open_parquet(path)
    except Exception as exc:  # noqa: BLE001 (ArrowInvalid, OSError: truncated or not Parquet)
        raise IngestError(f"{path.name} is not a readable Parquet file ({exc})") from exc
    n, decoded = 0, 0
    limit = max(BOMB_FLOOR, BOMB_RATIO * path.stat().st_size)
    try:
        for batch in reader.iter_batches(batch_size=PARQUET_BATCH):
            decoded += batch.nbytes
            if decoded > limit:
                raise IngestError(
                    f"{path.name} ({path.stat().st_size:,} bytes) decodes to over "
                    f"{limit >> 20:,} MiB by row {n + batch.num_rows}: a file that expands this "
                    "much is refused; export the data again without extreme compression"
                )
            for row in batch.to_pylist():
                n += 1
                if _row_chars(row) > MAX_LINE_CHARS:
                    cap = MAX_LINE_CHARS >> 20
                    yield n, Issue(n, f"a row of over {cap} M characters", "too_long", {"m": cap})
                else:
                    yield n, row
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise IngestError(
            f"{path.name}, after row {n}: the Parquet data is damaged ({exc})"
        ) from exc


def txt_mode_of(path: Path, encoding: str) -> str:
    """`paragraphs` when blank lines separate multi-line blocks, else `lines`."""
    blank = multi = 0
    previous_text = False
    for n, (_, line) in enumerate(_text_lines(path, encoding)):
        if n > 5000:
            break
        if line.strip():
            if previous_text:
                multi += 1
            previous_text = True
        else:
            blank += 1
            previous_text = False
    return "paragraphs" if blank and multi else "lines"


def _rows_txt(path: Path, encoding: str, mode: str) -> Iterator[tuple[int, dict | Issue]]:
    if mode == "lines":
        for line_no, line in _text_lines(path, encoding):
            if line.strip():
                yield line_no, {"text": line.rstrip("\r\n")}
        return
    block: list[str] = []
    start = 0
    for line_no, line in _text_lines(path, encoding):
        if line.strip():
            if not block:
                start = line_no
            block.append(line.rstrip("\r\n"))
        elif block:
            yield start, {"text": "\n".join(block)}
            block = []
    if block:
        yield start, {"text": "\n".join(block)}


def read_rows(
    path: Path, *, encoding: str | None = None, txt_mode: str | None = None
) -> Iterator[tuple[int, dict | Issue]]:
    """(line or row number, row or Issue) for every row of a supported file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IngestError(
            f"{path.name}: unsupported file type {suffix or '(none)'}; bring one of "
            + ", ".join(SUFFIXES)
        )
    if not path.is_file():
        raise IngestError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise _empty(path)
    if suffix == ".parquet":
        return _rows_parquet(path)
    encoding = encoding or detect_encoding(path)
    if suffix == ".jsonl":
        return _rows_jsonl(path, encoding)
    if suffix == ".json":
        return _rows_json(path, encoding)
    if suffix in (".csv", ".tsv"):
        return _rows_csv(path, encoding, "\t" if suffix == ".tsv" else ",")
    return _rows_txt(path, encoding, txt_mode or txt_mode_of(path, encoding))


# --- layouts --------------------------------------------------------------------------
def detect_layout(columns: list[str] | set[str]) -> tuple[str, dict]:
    """The layout the columns suggest, and its column mapping (canonical -> column)."""
    cols = set(columns)
    if {"chosen", "rejected"} <= cols:
        mapping = {"chosen": "chosen", "rejected": "rejected"}
        for name in ("prompt", "messages", "conversations", "conversation", "history"):
            if name in cols:
                mapping["prompt"] = name
                break
        return "preference", mapping
    if {"completion", "label"} <= cols and "prompt" in cols:
        return "kto", {"prompt": "prompt", "completion": "completion", "label": "label"}
    if "messages" in cols:
        return "messages", {"messages": "messages"}
    if "conversations" in cols:
        return "sharegpt", {"conversations": "conversations"}
    if {"instruction", "output"} <= cols:
        mapping = {"instruction": "instruction", "output": "output"}
        if "input" in cols:
            mapping["input"] = "input"
        return "alpaca", mapping
    for prompt, completion in PAIR_ALIASES:
        if {prompt, completion} <= cols:
            return "prompt_completion", {"prompt": prompt, "completion": completion}
    for name in TEXT_ALIASES:
        if name in cols:
            return "text", {"text": name}
    strings = sorted(cols)
    if len(strings) == 1:
        return "text", {"text": strings[0]}
    names = sorted(cols)
    shown = ", ".join(names[:10]) + (f", ... ({len(names):,} columns)" if len(names) > 10 else "")
    raise IngestError(
        f"could not tell the row layout from the columns ({shown or 'none'}); "
        "choose the layout and map the columns (python -m studio data import: --layout and "
        "--map FIELD=COLUMN)"
    )


def layout_of_mapping(mapping: dict) -> str | None:
    """The layout a column mapping names by its fields (prompt+completion ->
    prompt_completion, ...), when exactly one fits."""
    keys = {k for k, v in (mapping or {}).items() if v}
    fits = [name for name, fields in LAYOUTS.items() if keys and keys <= set(fields)
            and name not in CHAT_VARIANT.values()]  # fmt: skip
    required = [n for n in fits if set(LAYOUTS[n]) - _optional(n) <= keys]
    return required[0] if len(required) == 1 else None


def guess_mapping(layout: str, columns: list[str]) -> dict:
    """A starting mapping for a layout the user chose: the columns named like its fields
    (also by the known aliases); the rest is left for the user."""
    cols = list(columns)
    guess = {f: f for f in LAYOUTS.get(layout, {}) if f in cols}
    if layout in ("prompt_completion", "prompt_completion_chat"):
        for prompt, completion in PAIR_ALIASES:
            if {prompt, completion} <= set(cols):
                guess = {"prompt": prompt, "completion": completion}
                break
    elif layout == "text" and "text" not in guess:
        named = [n for n in TEXT_ALIASES if n in cols]
        if named:
            guess["text"] = named[0]
    return guess


def _optional(layout: str) -> set[str]:
    """Fields a layout can do without: Alpaca's input; a preference set's prompt, when it
    is the shared beginning of its two conversations."""
    if layout == "alpaca":
        return {"input"}
    if layout.startswith("preference"):
        return {"prompt"}
    return set()


def check_mapping(layout: str, mapping: dict, columns: list[str]) -> dict:
    if layout not in LAYOUTS:
        raise IngestError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    optional = _optional(layout)
    clean = {}
    for key in LAYOUTS[layout]:
        column = (mapping or {}).get(key) or None
        if column is None:
            if key in optional:
                continue
            raise IngestError(f"the {layout} layout needs a column for {key!r}")
        if column not in columns:
            raise IngestError(
                f"column {column!r} (for {key!r}) is not in the file; its columns are "
                + ", ".join(columns[:10])
                + (f", ... ({len(columns):,} columns)" if len(columns) > 10 else "")
            )
        clean[key] = column
    return clean


def _string(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _messages_value(value):
    """A list of messages (a CSV or Parquet cell may hold it as JSON text), else None."""
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and "role" in value:
        value = [value]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return value
    return None


def _turns(value, key: str) -> list[dict]:
    turns = _messages_value(value)
    if turns is None:
        raise ValueError(f"{key!r} must be a list of {{role, content}} messages")
    out = []
    for turn in turns:
        role, content = turn.get("role"), turn.get("content")
        if role not in {"system", "user", "assistant", "tool", "developer"}:
            raise ValueError(f"unknown role {role!r} in {key!r}")
        out.append({"role": role, "content": _string(content)})
    return out


def _conversion_error(row: dict, layout: str, mapping: dict) -> Exception | None:
    """Why `row` does not convert with this layout and mapping, or None."""
    try:
        convert(row, layout, mapping)
    except (ValueError, TypeError, AttributeError) as exc:
        return exc
    return None


def convert(row: dict, layout: str, mapping: dict) -> dict:
    """One row in its canonical form; raises ValueError for a row that does not fit."""
    if layout.startswith(("preference", "kto")):
        return _preference(row, layout, mapping)
    if layout == "text":
        text = _string(row.get(mapping["text"]))
        if not text.strip():
            raise ValueError("empty text")
        return {"text": text}
    if layout == "prompt_completion_chat":
        prompt = _turns(row.get(mapping["prompt"]), "prompt")
        completion = _turns(row.get(mapping["completion"]), "completion")
        if not any(m["role"] == "assistant" for m in completion):
            raise ValueError("'completion' holds no assistant message")
        return {"messages": prompt + completion, "completion_start": len(prompt)}
    if layout == "prompt_completion":
        return {
            "prompt": _string(row.get(mapping["prompt"])),
            "completion": _string(row.get(mapping["completion"])),
        }
    if layout == "alpaca":
        instruction = _string(row.get(mapping["instruction"])).strip()
        extra = _string(row.get(mapping["input"])).strip() if "input" in mapping else ""
        prompt = f"{instruction}\n\n{extra}" if extra else instruction
        return {"prompt": prompt, "completion": _string(row.get(mapping["output"]))}
    key = mapping["messages" if layout == "messages" else "conversations"]
    turns = row.get(key)
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)  # a CSV cell holding JSON
        except ValueError:
            raise ValueError(
                f"column {key!r} holds text, not a list of turns; is the layout or the "
                "column mapping wrong?"
            ) from None
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{key!r} must be a non-empty list of turns")
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise ValueError("every turn must be an object")
        if layout == "messages":
            role, content = turn.get("role"), turn.get("content")
        else:
            role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
            content = turn.get("value")
        if role not in {"system", "user", "assistant", "tool", "developer"}:
            raise ValueError(f"unknown role {turn.get('role', turn.get('from'))!r}")
        messages.append({"role": role, "content": _string(content)})
    return {"messages": messages}


def _preference(row: dict, layout: str, mapping: dict) -> dict:
    from studio.data import preference

    if layout.startswith("kto"):
        out = preference.kto_row(row, mapping)
    else:
        out = preference.pair_row(row, {"prompt": None} | mapping)
        out.setdefault("chosen_model", "")
        out.setdefault("rejected_model", "")
    if preference.is_chat(out) != layout.endswith("_chat"):
        kind = "a list of messages" if layout.endswith("_chat") else "text"
        raise ValueError(f"the prompt must be {kind}, as in the file's first rows")
    return out


# --- inspecting and importing ---------------------------------------------------------
def inspect_file(
    path: Path, *, sample_rows: int = 20, scan_rows: int = 10000, txt_mode: str | None = None
) -> Inspection:
    """Encoding, layout, columns and the first rows of a file, and the malformed rows among
    its first `scan_rows`, without importing it."""
    path = Path(path)
    suffix = path.suffix.lower()
    rows = read_rows(path, txt_mode=txt_mode)
    encoding = None if suffix == ".parquet" else detect_encoding(path)
    mode = txt_mode or (txt_mode_of(path, encoding) if suffix == ".txt" else None)
    sample, issues, columns = [], [], []
    scanned = 0
    for _, row in rows:
        scanned += 1
        if isinstance(row, Issue):
            if len(issues) < MAX_REPORTED:
                issues.append(row)
        elif len(sample) < sample_rows:
            sample.append(row)
            columns += [c for c in row if c not in columns]
        if scanned >= scan_rows:
            break
    if not sample:
        first = f" (line {issues[0].line}: {issues[0].message})" if issues else ""
        raise IngestError(f"{path.name} has no readable rows{first}")
    layout, mapping, unknown = None, {}, None
    try:
        layout, mapping = detect_layout(columns)
    except IngestError as exc:  # not fatal: an explicit layout and mapping still import it
        unknown = str(exc)
    if layout == "prompt_completion" and all(
        _messages_value(row.get(mapping["prompt"])) is not None for row in sample
    ):
        layout = "prompt_completion_chat"  # trl's conversational prompt/completion
    if layout in ("preference", "kto") and _chat_prompts(sample, layout, mapping):
        layout += "_chat"
    return Inspection(
        path.name, suffix, encoding, layout, mapping, columns, sample, issues, mode, scanned,
        unknown,
    )  # fmt: skip


def _chat_prompts(sample: list[dict], layout: str, mapping: dict) -> bool:
    """Whether the first rows' prompts are chat messages (their converted form says)."""
    chat = 0
    for row in sample:
        try:
            out = _preference(row, layout + "_chat", mapping)
        except ValueError:
            continue
        chat += isinstance(out["prompt"], list)
    return chat > 0


FEATURE_COLUMNS = {
    "text": ["text"],
    "prompt_completion": ["prompt", "completion"],
    "messages": ["messages"],
}


def _features(form: str, layout: str | None = None):
    import datasets

    if form in ("preference", "kto"):
        from studio.data.preference import features

        return features(form, chat=bool(layout and layout.endswith("_chat")))
    string = datasets.Value("string")
    columns = {"id": string}
    if form == "text":
        columns["text"] = string
    elif form == "prompt_completion":
        columns |= {"prompt": string, "completion": string}
    else:
        columns["messages"] = datasets.List({"role": string, "content": string})
    if layout == "prompt_completion_chat":
        columns["completion_start"] = datasets.Value("int32")
    return datasets.Features(columns)


def import_path(
    ws,
    path: Path,
    *,
    name: str | None = None,
    layout: str | None = None,
    mapping: dict | None = None,
    skip_bad: bool = False,
    txt_mode: str | None = None,
    encoding: str | None = None,
    source: str | None = None,
    more: list[Path] | tuple = (),
    origin: dict | None = None,
):
    """Import a file as the next version of dataset `name` (default: the file's stem).
    Returns (version, report). With `skip_bad` off, the first malformed row stops the
    import with its line number and nothing is written. `more`: further files of the same
    kind read after it, as one dataset (a Hub dataset's shards); `origin`: where the files
    came from, kept in the version's manifest (a Hub repository, revision and files)."""
    path = Path(path)
    started = time.monotonic()
    seen = inspect_file(path, txt_mode=txt_mode)
    # What the user says wins over what the columns suggest.
    layout = layout or layout_of_mapping(mapping) or seen.layout
    if layout is None:
        raise IngestError(seen.layout_error or "choose the layout and map the columns")
    base = seen.mapping if layout == seen.layout else guess_mapping(layout, seen.columns)
    mapping = check_mapping(layout, base | (mapping or {}), seen.columns)
    errors = [_conversion_error(row, layout, mapping) for row in seen.sample]
    if all(errors):  # no sample row fits: the layout or the mapping is wrong, not the rows
        pairs = ", ".join(f"{k} <- {v}" for k, v in mapping.items())
        raise IngestError(
            f"the {layout} layout with the mapping {pairs} does not fit {path.name} "
            f"(first row: {errors[0]}); choose another layout or mapping"
        )
    form = FORM_OF_LAYOUT[layout]
    encoding = encoding or seen.encoding
    try:
        name = safe_name((name or path.stem)[:60] or "upload")
    except UnsafeInputError as exc:
        raise IngestError(f"{exc}. Choose another dataset name.") from None
    skipped: list[Issue] = []
    totals = {"read": 0, "skipped": 0}

    def rows():
        offset = 0  # row numbers continue across files, so that ids stay unique
        for part in (path, *map(Path, more)):
            last = 0
            for n, row in read_rows(part, encoding=encoding, txt_mode=seen.txt_mode):
                last = n
                yield from converted(part, n, offset + n, row)
            offset += last

    def converted(part: Path, n: int, number: int, row):
        """The row as the layout maps it (or its problem); `number` names it in its id."""
        totals["read"] += 1
        problem = row if isinstance(row, Issue) else None
        if problem is None:
            try:
                out = convert(row, layout, mapping)
            except (ValueError, TypeError) as exc:
                problem = Issue(n, str(exc))
        if problem is not None:
            if not skip_bad:
                error = IngestError(
                    f"{part.name}, line {problem.line}: {problem.message}. Fix the row, or "
                    "import again skipping malformed rows."
                )
                error.issue = problem  # for the UI, in the page's language
                raise error
            totals["skipped"] += 1
            if len(skipped) < MAX_REPORTED:
                skipped.append(problem)
            return
        ident = row.get("id")
        out["id"] = str(ident) if ident not in (None, "") else f"{name}-{number:07d}"
        yield out

    datasets = hf_datasets()
    with _scratch(ws, path) as scratch:
        try:
            data = datasets.Dataset.from_generator(
                rows,
                features=_features(form, layout),
                cache_dir=str(scratch),
                keep_in_memory=False,
            )
        except datasets.exceptions.DatasetGenerationError as exc:
            cause = exc.__cause__ or exc.__context__
            while cause is not None and not isinstance(cause, IngestError):
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, IngestError):
                raise cause from None
            raise IngestError(f"{path.name}: {exc}") from exc
        if len(data) == 0:
            raise IngestError(f"{path.name} has no usable rows ({totals['skipped']} malformed)")
        report = {
            "file": path.name,
            "encoding": encoding,
            "layout": layout,
            "mapping": mapping,
            "form": form,
            "rows": len(data),
            "skipped": totals["skipped"],
            "skipped_rows": [asdict(i) for i in skipped],
        }
        version = write_version(
            ws,
            name,
            data,
            format=form,
            operation="import",
            settings={
                "encoding": encoding,
                "layout": layout,
                "mapping": mapping,
                "txt_mode": seen.txt_mode,
                **({"origin": origin} if origin else {}),
            },
            counts={"rows": len(data), "skipped": totals["skipped"]},
            seconds=time.monotonic() - started,
            source=source or path.name,
        )
    return version, report


@contextlib.contextmanager
def _scratch(ws, path: Path):
    """A scratch folder of its own in the cache for one import, removed whatever happens:
    a failed or refused import leaves nothing behind (the cache grew with every failure
    before). A full disk meanwhile is said as such."""
    scratch = Path(tempfile.mkdtemp(prefix="import-", dir=cache_dir(ws)))
    try:
        yield scratch
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise IngestError(
                f"{path.name}: the disk filled up while importing; nothing was kept. Free some "
                "space (old runs, checkpoints, exports, token stores) and import again."
            ) from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
