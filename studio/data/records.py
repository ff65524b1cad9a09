"""Rows of a dataset in one of the three canonical forms the trainer reads.

- text: `{"text": "..."}`
- prompt/completion: `{"prompt": "...", "completion": "..."}`
- messages: `{"messages": [{"role": "user", "content": "..."}, ...]}`
- preference: `{"prompt": ..., "chosen": "...", "rejected": "..."}` and kto:
  `{"prompt": ..., "completion": "...", "label": true}` (`studio.data.preference`)

Rows are read lazily, one line at a time, so a large JSONL file is never held in memory.
Other layouts (CSV, Alpaca, ShareGPT, ...) are converted into these forms by the data tab.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError

# New forms go at the end: token stores keep a row's form as its index here.
FORMATS = ("text", "prompt_completion", "messages", "preference", "kto")
PREFERENCE_FORMATS = ("preference", "kto")
ROLES = ("system", "user", "assistant", "tool", "developer")
# One row of a line-based file may hold this many characters: a whole book is far below it,
# while a file that is one endless line (a dump without newlines, a binary blob) is refused
# after reading this much instead of being pulled into memory whole.
MAX_LINE_CHARS = 16 << 20


class RecordError(StudioError, ValueError):
    """A row or file that cannot be read as a canonical dataset; the message says where."""


class LineTooLong(StudioError, ValueError):
    """A line longer than `MAX_LINE_CHARS`; `line` is its number (1-based)."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(
            f"line {line} is longer than {MAX_LINE_CHARS >> 20} M characters, which is not one "
            "row of a dataset. Check that the file has one row per line (JSONL, CSV) and was "
            "not saved without line breaks; split very long documents into several rows"
        )


def bounded_lines(fh) -> Iterator[str]:
    """The lines of a text file object like `for line in fh`, but a line longer than
    `MAX_LINE_CHARS` raises `LineTooLong` after at most that much of it was read."""
    number = 0
    while line := fh.readline(MAX_LINE_CHARS + 2):  # room for the line's own "\r\n"
        number += 1
        if len(line) > MAX_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise LineTooLong(number)
        yield line


def is_conversational_pair(record: object) -> bool:
    """A conversational prompt/completion row (trl's form): `prompt` a list of messages,
    `completion` the assistant's message(s)."""
    return (
        isinstance(record, dict)
        and "messages" not in record
        and isinstance(record.get("prompt"), list)
        and isinstance(record.get("completion"), list | dict)
    )


def canonical(record: object) -> object:
    """A row in one of the studio's forms. A conversational prompt/completion row becomes a
    chat row whose `completion_start` says where the completion begins: only the turns from
    there on carry loss, as trl trains them. Preference and KTO rows in their published
    shapes become the canonical preference forms (`studio.data.preference`)."""
    from studio.data import preference

    try:
        if preference.looks_like_pair(record):
            return {**_extra(record), **preference.pair_row(record)}
        if preference.looks_like_kto(record):
            return {**_extra(record), **preference.kto_row(record)}
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    if not is_conversational_pair(record):
        return record
    completion = record["completion"]
    prompt = list(record["prompt"])
    out = {k: v for k, v in record.items() if k not in ("prompt", "completion")}
    out["messages"] = prompt + (completion if isinstance(completion, list) else [completion])
    out["completion_start"] = len(prompt)
    return out


def _extra(record: dict) -> dict:
    """The fields of a preference row that stay beside its canonical ones (its id)."""
    return {k: record[k] for k in ("id",) if k in record}


def detect_format(record: object) -> str:
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    if "chosen" in record and "rejected" in record:
        _check_preference(record, ("chosen", "rejected"))
        return "preference"
    if "label" in record and "completion" in record and "prompt" in record:
        _check_preference(record, ("completion",))
        if not isinstance(record["label"], bool):
            raise RecordError("'label' must be true or false")
        return "kto"
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m
            for m in messages
        ):
            raise RecordError("'messages' must be a list of {role, content} objects")
        for m in messages:
            if not isinstance(m["content"], str):
                raise RecordError("message 'content' must be a string")
        return "messages"
    if "prompt" in record and "completion" in record:
        if not isinstance(record["prompt"], str) or not isinstance(record["completion"], str):
            raise RecordError("'prompt' and 'completion' must be strings")
        return "prompt_completion"
    if "text" in record:
        if not isinstance(record["text"], str):
            raise RecordError("'text' must be a string")
        return "text"
    keys = ", ".join(sorted(record)) or "none"
    raise RecordError(
        f"no 'text', 'prompt'+'completion' or 'messages' field (fields: {keys}); "
        "convert the file to one of these forms first"
    )


def _check_preference(record: dict, replies: tuple[str, ...]) -> None:
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        detect_format({"messages": prompt})
    elif not isinstance(prompt, str):
        raise RecordError("'prompt' must be text or a list of messages")
    for key in replies:
        if not isinstance(record[key], str):
            raise RecordError(f"'{key}' must be a string")


@dataclass
class Record:
    index: int  # 0-based row number among the rows read
    line: int  # 1-based line in the file
    data: dict
    format: str


def iter_records(path: Path, *, limit: int | None = None) -> Iterator[Record]:
    """Yield the rows of a `.jsonl` file (or a `.json` list) in order.

    Blank lines are skipped. A malformed row raises `RecordError` naming its line.
    """
    path = Path(path)
    if path.suffix == ".json":
        yield from _iter_json_list(path, limit)
        return
    if path.suffix == ".parquet":
        yield from _iter_parquet(path, limit)
        return
    index = 0
    try:
        fh = open(path, encoding="utf-8-sig")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise RecordError(f"cannot open {path.name}: {exc.strerror}") from exc
    with fh:
        try:
            for line_no, line in enumerate(bounded_lines(fh), 1):
                if limit is not None and index >= limit:
                    return
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError as exc:
                    raise RecordError(f"{path.name}, line {line_no}: invalid JSON ({exc})") from exc
                except RecursionError:
                    raise RecordError(
                        f"{path.name}, line {line_no}: JSON nested too deeply"
                    ) from None
                try:
                    data = canonical(data)
                    fmt = detect_format(data)
                except RecordError as exc:
                    raise RecordError(f"{path.name}, line {line_no}: {exc}") from exc
                yield Record(index, line_no, data, fmt)
                index += 1
        except LineTooLong as exc:
            raise RecordError(f"{path.name}, {exc}") from None
        except UnicodeDecodeError as exc:
            raise RecordError(
                f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                "convert it to UTF-8 in the data tab first"
            ) from exc


def _iter_json_list(path: Path, limit: int | None) -> Iterator[Record]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"cannot read {path.name} as JSON: {exc}") from exc
    except RecursionError:
        raise RecordError(f"cannot read {path.name} as JSON: nested too deeply") from None
    if not isinstance(data, list):
        raise RecordError(f"{path.name} must hold a JSON list of rows")
    for index, item in enumerate(data[:limit] if limit is not None else data):
        try:
            item = canonical(item)
            fmt = detect_format(item)
        except RecordError as exc:
            raise RecordError(f"{path.name}, row {index + 1}: {exc}") from exc
        yield Record(index, index + 1, item, fmt)


def open_parquet(path: Path):
    """A Parquet file to read batch by batch in bounded memory: without pre-buffering, as
    with it pyarrow keeps every column chunk it has read until the reader goes (a 1 GB
    file grew the reading process by about 600 MB)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False)


def _iter_parquet(path: Path, limit: int | None) -> Iterator[Record]:
    """Rows of a Parquet file (what the data tab writes), a batch at a time."""

    try:
        reader = open_parquet(path)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise RecordError(f"cannot read {path.name} as Parquet: {exc}") from exc
    index = 0
    for batch in reader.iter_batches(batch_size=1024):
        for item in batch.to_pylist():
            if limit is not None and index >= limit:
                return
            try:
                fmt = detect_format(item)
            except RecordError as exc:
                raise RecordError(f"{path.name}, row {index + 1}: {exc}") from exc
            yield Record(index, index + 1, item, fmt)
            index += 1


def read_records(path: Path, *, limit: int | None = None) -> list[Record]:
    return list(iter_records(path, limit=limit))


def dataset_file(version) -> Path:
    """The primary data file of a registered dataset version."""
    if not version.files:
        raise RecordError(f"{version.name} {version.version} lists no data file")
    return Path(version.path) / version.files[0]


def import_file(ws, path: Path, *, operation: str, source: str | None = None):
    """Register a canonical JSONL/JSON file as the next version of a dataset named after it.

    Every row is read first: a malformed row, an empty file or a file that mixes row forms
    is refused before anything is written.
    """
    from studio.data.registry import add_version
    from studio.safety import safe_name

    path = Path(path)
    formats = {r.format for r in iter_records(path)}
    if not formats:
        raise RecordError(f"{path.name} has no rows")
    if len(formats) > 1:
        raise RecordError(f"{path.name} mixes row forms: {', '.join(sorted(formats))}")
    return add_version(
        ws.datasets,
        safe_name(path.stem[:60] or "upload"),
        {f"data{path.suffix}": path},
        format=formats.pop(),
        operation=operation,
        source=source or path.name,
    )
