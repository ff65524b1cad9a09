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
