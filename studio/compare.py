"""Side by side: several models (a base, its checkpoints, exports) on the same prompts with
the same decoding settings and seed, and the facts that tell a healthy fine-tune from a
broken one: did each reply end on EOS/end-of-turn or run into the limit, and does it
degenerate into repetition (the field reports read this off a table by eye).

Models are visited one after another, each for every prompt, through a model pool, so
checkpoints that share a base load it once.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.data.preference import known_model, two_models
from studio.errors import InputError, StudioError
from studio.generate import GenerationSettings, generate

# A reply whose longest repeated stretch covers this share of it or more is flagged.
REPETITIVE_SHARE = 0.3
# what a newcomer compares first: a greeting, a how-to and a fact (the persona demo's prompts)
DEMO_PROMPTS = "こんにちは。\nお茶の美味しい淹れ方を教えて。\n富士山の高さは？"
MIN_CHARS_FOR_REPETITION = 16


class PromptsError(StudioError, ValueError):
    """A prompt list that cannot be read; the message names the file and line."""


def distinct_n(text: str, n: int) -> float:
    """Unique character n-grams over all character n-grams (1.0 when too short to say)."""
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def longest_repeat(text: str) -> str:
    """The longest stretch of characters that occurs at least twice (overlaps allowed)."""

    def repeated(length: int) -> str | None:
        seen = set()
        for i in range(len(text) - length + 1):
            piece = text[i : i + length]
            if piece in seen:
                return piece
            seen.add(piece)
        return None

    lo, hi, best = 1, len(text) - 1, ""
    while lo <= hi:  # a repeat of length L implies one of every shorter length
        mid = (lo + hi) // 2
        found = repeated(mid)
        if found is None:
            hi = mid - 1
        else:
            best, lo = found, mid + 1
    return best


def repetition(text: str) -> dict:
    """distinct-2/distinct-4 over characters, and the share of the reply taken by its
    longest repeated stretch; `repetitive` when that share is large (a looping reply)."""
    stripped = text.strip()
    repeat = longest_repeat(stripped)
    share = len(repeat) / len(stripped) if stripped else 0.0
    return {
        "distinct_2": round(distinct_n(stripped, 2), 3),
        "distinct_4": round(distinct_n(stripped, 4), 3),
        "repeat_share": round(share, 3),
        "longest_repeat": repeat,
        "repetitive": len(stripped) >= MIN_CHARS_FOR_REPETITION and share >= REPETITIVE_SHARE,
    }


def parse_prompts(text: str, *, source: str = "prompts", jsonl: bool | None = None) -> list[str]:
    """Prompts from typed text or a file: one per line, or JSON Lines with a `prompt` field
    (a `.jsonl` file, or text whose first line is a JSON object)."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if jsonl is None:
        jsonl = first.lstrip().startswith("{")
    prompts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not jsonl:
            prompts.append(line.strip())
            continue
        try:
            row = json.loads(line)
            prompts.append(str(row["prompt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PromptsError(
                f"{source}:{n}: expected a JSON object with a 'prompt' field"
            ) from exc
    if not prompts:
        raise PromptsError(f"{source} holds no prompts")
    return prompts


def read_prompts(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptsError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except OSError as exc:
        raise PromptsError(f"cannot read prompts from {path}: {exc.strerror or exc}") from exc
    return parse_prompts(text, source=str(path), jsonl=Path(path).suffix == ".jsonl" or None)


@dataclass
class Cell:
    """One model's reply to one prompt."""

    model: str
    prompt_index: int
    prompt: str
    text: str
    new_tokens: int
    stop_reason: str
    seconds: float
    warnings: list[str]
    distinct_2: float
    distinct_4: float
    repeat_share: float
    longest_repeat: str
    repetitive: bool
    raw_text: str = ""  # with special tokens: shows which end marker was emitted
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Comparison:
    models: list[str]
    prompts: list[str]
    settings: dict
    chat: bool
    system: str | None
    cells: list[Cell]

    def cell(self, model: str, prompt_index: int) -> Cell | None:
        for c in self.cells:
            if c.model == model and c.prompt_index == prompt_index:
                return c
        return None

    def summary(self) -> list[dict]:
        """Per model: replies ending on EOS, flagged as repetitive, mean tokens and time."""
        rows = []
        for model in self.models:
            cells = [c for c in self.cells if c.model == model and c.error is None]
            n = len(cells) or 1
            rows.append(
                {
                    "model": model,
                    "replies": len(cells),
                    "eos": sum(c.stop_reason == "eos" for c in cells),
                    "repetitive": sum(c.repetitive for c in cells),
                    "mean_tokens": round(sum(c.new_tokens for c in cells) / n, 1),
                    "mean_distinct_2": round(sum(c.distinct_2 for c in cells) / n, 3),
                    "seconds": round(sum(c.seconds for c in cells), 2),
                }
            )
        return rows

    def to_dict(self) -> dict:
        return {
            "models": self.models,
            "prompts": self.prompts,
            "settings": self.settings,
            "chat": self.chat,
            "system": self.system,
            "summary": self.summary(),
            "cells": [c.to_dict() for c in self.cells],
        }

    def to_csv(self) -> str:
        """One row per reply: model, prompt, reply and its figures."""
        columns = [
            "model",
            "prompt_index",
            "prompt",
            "text",
            "new_tokens",
            "stop_reason",
            "repetitive",
            "repeat_share",
            "distinct_2",
            "distinct_4",
            "seconds",
            "warnings",
            "error",
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for c in self.cells:
            writer.writerow(c.to_dict() | {"warnings": " ".join(c.warnings)})
        return out.getvalue()

    def to_markdown(self) -> str:
        """The field report's table: a row per prompt, a column per model; each cell is the
        reply with how it ended ([EOS] or [len]) and a [rep] mark when it loops."""

        def cell_text(c: Cell | None) -> str:
            if c is None:
                return ""
            if c.error:
                return f"(error: {c.error})"
            marks = ["EOS" if c.stop_reason == "eos" else "len"]
            if c.repetitive:
                marks.append("rep")
            body = c.text.strip().replace("|", "\\|").replace("\n", "<br>")
            return f"{body} [{', '.join(marks)}, {c.new_tokens} tok]"

        header = "| prompt | " + " | ".join(m.replace("|", "\\|") for m in self.models) + " |"
        lines = [header, "|" + "---|" * (len(self.models) + 1)]
        for i, prompt in enumerate(self.prompts):
            cells = [cell_text(self.cell(m, i)) for m in self.models]
            lines.append(f"| {prompt.replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def compare_iter(
    open_model: Callable,
    models: list[str],
    prompts: list[str],
    settings: GenerationSettings,
    *,
    chat: bool = False,
    system: str | None = None,
    keep_going: bool = True,
) -> Iterator[Comparison]:
    """Fill the grid model by model, yielding the comparison after every reply.

    `open_model(name)` is a context manager giving a loaded model (`ModelPool.use`). A model
    that cannot be loaded fills its column with the error instead of stopping the others
    (unless `keep_going` is off: then the error is raised)."""
    if len(models) < 1:
        raise InputError("Choose at least one model.", code="no_models")
    if not prompts:
        raise InputError("Type at least one prompt.", code="no_prompts")
    settings.validate()
    result = Comparison(list(models), list(prompts), asdict(settings), chat, system, [])
    for model in models:
        try:
            with open_model(model) as loaded:
                for i, prompt in enumerate(prompts):
                    reply = generate(loaded, prompt, settings, chat=chat, system=system)
                    result.cells.append(
                        Cell(
                            model=model,
                            prompt_index=i,
                            prompt=prompt,
                            text=reply.text,
                            new_tokens=reply.new_tokens,
                            stop_reason=reply.stop_reason,
                            seconds=reply.seconds,
                            warnings=reply.warnings,
                            **repetition(reply.text),
                            raw_text=reply.raw_text,
                        )
                    )
                    yield result
        except (OSError, ValueError, RuntimeError) as exc:  # ModelLoadError is a RuntimeError
            if not keep_going:
                raise
            done = {c.prompt_index for c in result.cells if c.model == model}
            for i, prompt in enumerate(prompts):
                if i not in done:
                    result.cells.append(_failed(model, i, prompt, str(exc)))
            yield result


def compare(open_model: Callable, models, prompts, settings, **kwargs) -> Comparison:
    *_, result = compare_iter(open_model, models, prompts, settings, **kwargs)
    return result


def _failed(model: str, index: int, prompt: str, error: str) -> Cell:
    return Cell(model, index, prompt, "", 0, "error", 0.0, [], **repetition(""), error=error)


def default_models(ws) -> list[str]:
    """The embedded base and the newest finished run: what a newcomer wants to see first."""
    from studio.evaluate.runner import latest_finetune
    from studio.paths import EMBEDDED_MODEL_NAME

    tuned = latest_finetune(ws)
    return [EMBEDDED_MODEL_NAME] + ([tuned] if tuned else [])


# --- preference pairs from a grid (studio/data/preference.py writes them) -----------------
# What a person says of one row: reply 1 is better, reply 2 is better, a tie, or skip it.
CHOICES = ("1", "2", "=", "skip")
CSV_REQUIRED = ("model", "prompt_index", "prompt", "text")


class ComparisonFileError(StudioError, ValueError):
    """A saved comparison or marks file that cannot be read; the message names the file."""


def _comparison_from_rows(rows: list[dict], source: str, chat: bool, system: str | None) -> dict:
    """A comparison dict (`Comparison.to_dict()`'s keys) from the grid's CSV rows."""
    models: list[str] = []
    prompts: dict[int, str] = {}
    cells = []
    for n, row in enumerate(rows, 2):  # line 1 is the header
        try:
            index = int(str(row["prompt_index"]).strip())
        except ValueError:
            raise ComparisonFileError(
                f"{source}:{n}: prompt_index must be a whole number, got {row['prompt_index']!r}"
            ) from None
        if index < 0:
            raise ComparisonFileError(f"{source}:{n}: prompt_index must not be negative")
        model = (row["model"] or "").strip()
        if not model:
            raise ComparisonFileError(f"{source}:{n}: the model is empty")
        if prompts.setdefault(index, row["prompt"] or "") != (row["prompt"] or ""):
            raise ComparisonFileError(f"{source}:{n}: prompt {index + 1} differs between rows")
        if model not in models:
            models.append(model)
        cells.append(
            {
                **{k: v for k, v in row.items() if k},
                "model": model,
                "prompt_index": index,
                "prompt": row["prompt"] or "",
                "text": row["text"] or "",
                "error": row.get("error") or None,
            }
        )
    if not cells:
        raise ComparisonFileError(f"{source} holds no replies")
    missing = [i + 1 for i in range(max(prompts) + 1) if i not in prompts]
    if missing:
        raise ComparisonFileError(f"{source}: no reply to prompt {missing[0]}")
    return {
        "models": models,
        "prompts": [prompts[i] for i in range(len(prompts))],
        "settings": {},
        "chat": bool(chat),
        "system": (system or None) if chat else None,
        "cells": cells,
    }


def _check_comparison(data: object, source: str) -> dict:
    if not isinstance(data, dict) or not all(k in data for k in ("models", "prompts", "cells")):
        raise ComparisonFileError(
            f"{source} is not a saved comparison (a JSON object with models, prompts and cells)"
        )
    for n, cell in enumerate(data["cells"], 1):
        if not isinstance(cell, dict) or not all(k in cell for k in CSV_REQUIRED):
            raise ComparisonFileError(f"{source}: cell {n} lacks one of {', '.join(CSV_REQUIRED)}")
    return data


def read_comparison(path: Path, *, chat: bool = False, system: str | None = None) -> dict:
    """A comparison saved by the Compare tab or `python -m studio generate` as a dict with
    `Comparison.to_dict()`'s keys: its JSON (`--json`), or the grid's CSV (`to_csv()`). A CSV
    does not say whether the prompts were asked in the chat template (nor with which system
    prompt): `chat` and `system` say it; a JSON file says it itself."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ComparisonFileError(
            f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from exc
    except OSError as exc:
        raise ComparisonFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ComparisonFileError(f"{path} is not valid JSON: {exc}") from None
        return _check_comparison(data, str(path))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    absent = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
    if absent:
        raise ComparisonFileError(
            f"{path} is neither a comparison's JSON nor its CSV (no column {', '.join(absent)})"
        )
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ComparisonFileError(f"{path}: {exc}") from None
    return _comparison_from_rows(rows, str(path), chat, system)


def read_marks(path: Path) -> list[dict]:
    """Marks as JSON Lines, one per row: `{"prompt_index": i, "chosen": MODEL, "rejected":
    MODEL}`, `{"prompt_index": i, "tie": true}` or `{"prompt_index": i, "skip": true}`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ComparisonFileError(f"cannot read marks from {path}: {exc}") from exc
    marks = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            mark = json.loads(line)
        except ValueError:
            mark = None
        if not isinstance(mark, dict) or not isinstance(mark.get("prompt_index"), int):
            raise ComparisonFileError(
                f"{path}:{n}: expected a JSON object with a whole-number prompt_index"
            )
        if not (mark.get("tie") or mark.get("skip")) and not (
            isinstance(mark.get("chosen"), str) and isinstance(mark.get("rejected"), str)
        ):
            raise ComparisonFileError(
                f"{path}:{n}: a mark says chosen and rejected (model names), tie or skip"
            )
        marks.append(mark)
    if not marks:
        raise ComparisonFileError(f"{path} holds no marks")
    return marks


def preference_mark(comparison: dict, index: int, choice: str, first: str, second: str) -> dict:
    """The mark a person gives row `index` of a grid (a comparison dict) when `first` wrote
    reply 1 and `second` reply 2: `choice` "1" or "2" (that reply is better), "=" (a tie)
    or "skip"."""
    if choice not in CHOICES:
        raise InputError(f"a mark is one of {', '.join(CHOICES)}, not {choice!r}")
    total = len(comparison["prompts"])
    if not 0 <= index < total:
        raise InputError(
            f"row {index + 1} is not in the comparison (1 to {total})",
            code="row_not_compared",
            row=index + 1,
            total=total,
        )
    if choice == "skip":
        return {"prompt_index": index, "skip": True}
    for model in (first, second):
        known_model(comparison, model)
    two_models(first, second)
    for model in (first, second):
        found = [
            c for c in comparison["cells"] if c["model"] == model and c["prompt_index"] == index
        ]
        if not found:
            raise InputError(
                f"{model} has not answered row {index + 1} yet",
                code="reply_not_ready",
                model=model,
                row=index + 1,
            )
    if choice == "=":
        return {"prompt_index": index, "tie": True}
    chosen, rejected = (first, second) if choice == "1" else (second, first)
    return {"prompt_index": index, "chosen": chosen, "rejected": rejected}


def mark_counts(marks: list[dict]) -> dict:
    """How many rows are marked, and as what (before the pairs are checked)."""
    ties = sum(bool(m.get("tie")) for m in marks)
    skipped = sum(bool(m.get("skip")) and not m.get("tie") for m in marks)
    return {"marked": len(marks), "pairs": len(marks) - ties - skipped, "ties": ties,
            "skipped": skipped}  # fmt: skip
