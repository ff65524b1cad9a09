"""Evaluation suites: files of items, their schema check, and their versions in the workspace.

A suite is a version folder under `workspace/evals/suites/<name>/vNNNN/` (see
`studio.data.registry`) holding `items.jsonl`, for short-answer QA optionally `shots.jsonl`
(the fixed few-shot examples, the same prompt for every model), and `manifest.json` whose
`format` is the suite's kind. Four kinds, told apart by the fields of the rows:

| kind | fields of a row |
|---|---|
| `short_answer_qa` | `question`, `answers` (accepted answers; or one `answer`) |
| `candidate_ranking` | `template` with one `{word}` slot, `candidates`, `answer` (one of them) |
| `multiple_choice` | `question`, `choices`, `answer` (index or the choice text), opt. `context` |
| `perplexity` | `text` |

Every row may carry an `id` (default: `line-<n>`). Rows are checked before anything is
written; a malformed row is reported with its file and line.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from studio.data.registry import DatasetVersion, add_version, list_eval_suites
from studio.evaluate import EvalError
from studio.safety import UnsafeInputError, safe_name

SHORT_ANSWER_QA = "short_answer_qa"
CANDIDATE_RANKING = "candidate_ranking"
MULTIPLE_CHOICE = "multiple_choice"
PERPLEXITY = "perplexity"
KINDS = (SHORT_ANSWER_QA, CANDIDATE_RANKING, MULTIPLE_CHOICE, PERPLEXITY)
SLOT = "{word}"
ITEMS_FILE = "items.jsonl"
SHOTS_FILE = "shots.jsonl"
MAX_UPLOAD_BYTES = 50 * 2**20


class SuiteError(EvalError):
    """A suite file that cannot be used; the message names the file and line."""


@dataclass
class Suite:
    name: str
    version: str
    kind: str
    items: list[dict]
    shots: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}" if self.version else self.name


# --- reading and checking rows ---------------------------------------------------------------


def read_rows(path: Path) -> list[tuple[str, dict]]:
    """(where, row) for every row of a JSONL file (or a JSON array); `where` is `file:line`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise SuiteError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SuiteError(f"{path.name}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        found = [(f"{path.name} item {i}", row) for i, row in enumerate(data, 1)]
    else:
        found = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                found.append((f"{path.name}:{n}", json.loads(line)))
            except ValueError as exc:
                raise SuiteError(f"{path.name}:{n}: not valid JSON ({exc.msg})") from exc
    for where, row in found:
        if not isinstance(row, dict):
            raise SuiteError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return found


def detect_kind(row: dict) -> str | None:
    if "template" in row or "candidates" in row:
        return CANDIDATE_RANKING
    if "choices" in row:
        return MULTIPLE_CHOICE
    if "question" in row:
        return SHORT_ANSWER_QA
    if "text" in row:
        return PERPLEXITY
    return None


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SuiteError(f"{where}: '{key}' must be a non-empty string")
    return value


def _texts(row: dict, key: str, where: str, *, at_least: int) -> list[str]:
    value = row.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SuiteError(f"{where}: '{key}' must be a list of non-empty strings")
    unique = list(dict.fromkeys(value))  # a candidate listed twice is one candidate
    if len(unique) < at_least:
        raise SuiteError(f"{where}: '{key}' needs at least {at_least} different entries")
    return unique


def check_row(row: dict, kind: str, where: str) -> dict:
    """The row in canonical form, or a SuiteError naming `where` and the field."""
    if kind == SHORT_ANSWER_QA:
        question = _text(row, "question", where)
        if "answers" in row:
            answers = _texts(row, "answers", where, at_least=1)
        elif isinstance(row.get("answer"), str) and row["answer"].strip():
            answers = [row["answer"]]
        else:
            raise SuiteError(f"{where}: needs 'answers' (a list of accepted answers)")
        return {"question": question, "answers": answers}
    if kind == CANDIDATE_RANKING:
        template = _text(row, "template", where)
        if template.count(SLOT) != 1:
            raise SuiteError(
                f"{where}: 'template' must contain the slot {SLOT} exactly once "
                f"(found {template.count(SLOT)})"
            )
        candidates = _texts(row, "candidates", where, at_least=2)
        answer = _text(row, "answer", where)
        if answer not in candidates:
            raise SuiteError(f"{where}: the answer {answer!r} is not among the candidates")
        return {"template": template, "candidates": candidates, "answer": answer}
    if kind == MULTIPLE_CHOICE:
        question = _text(row, "question", where)
        choices = row.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            raise SuiteError(f"{where}: 'choices' must be a list of at least 2 strings")
        if not all(isinstance(c, str) and c.strip() for c in choices):
            raise SuiteError(f"{where}: 'choices' must be a list of non-empty strings")
        answer = row.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int | str):
            raise SuiteError(f"{where}: 'answer' must be the index of a choice or its text")
        if isinstance(answer, str):
            if answer not in choices:
                raise SuiteError(f"{where}: the answer {answer!r} is not among the choices")
            answer = choices.index(answer)
        if not 0 <= answer < len(choices):
            raise SuiteError(
                f"{where}: 'answer' {answer} is not a choice index 0-{len(choices) - 1}"
            )
        context = row.get("context")
        if context is not None and not isinstance(context, str):
            raise SuiteError(f"{where}: 'context' must be a string")
        return {"question": question, "choices": choices, "answer": answer, "context": context}
    if kind == PERPLEXITY:
        return {"text": _text(row, "text", where)}
    raise SuiteError(f"unknown suite kind {kind!r} (known: {', '.join(KINDS)})")


def parse_rows(rows: list[tuple[str, dict]], kind: str | None = None) -> tuple[str, list[dict]]:
    """Check every row; returns (kind, items with `id`). The kind comes from the first row
    unless given; a row of another kind is reported with its line."""
    if not rows:
        raise SuiteError("the suite has no rows")
    first_where, first = rows[0]
    kind = kind or detect_kind(first)
    if kind is None:
        raise SuiteError(
            f"{first_where}: cannot tell the suite kind from the fields "
            f"{', '.join(sorted(first)) or '(none)'}; use question+answers, "
            f"template+candidates+answer, question+choices+answer, or text"
        )
    items, seen = [], {}
    for where, row in rows:
        found = detect_kind(row)
        if found is not None and found != kind:
            raise SuiteError(f"{where}: looks like a {found} row, but the suite is {kind}")
        item = check_row(row, kind, where)
        item_id = row.get("id", f"line-{where.rsplit(':', 1)[-1].rsplit(' ', 1)[-1]}")
        if not isinstance(item_id, str | int) or isinstance(item_id, bool):
            raise SuiteError(f"{where}: 'id' must be a string or a number")
        item_id = str(item_id)
        if item_id in seen:
            raise SuiteError(f"{where}: the id {item_id!r} is already used at {seen[item_id]}")
        seen[item_id] = where
        if row.get("shot"):
            item["shot"] = True
        items.append({"id": item_id, **item})
    return kind, items


def check_file(path: Path, kind: str | None = None) -> tuple[str, list[dict]]:
    return parse_rows(read_rows(path), kind)


# --- suites in the workspace -----------------------------------------------------------------


def suite_choices(ws) -> list[str]:
    """`name/vNNNN` of every suite version, newest version of each name first."""
    versions = sorted(list_eval_suites(ws), key=lambda d: (d.name, d.version))
    latest: dict[str, list[str]] = {}
    for d in versions:
        latest.setdefault(d.name, []).insert(0, f"{d.name}/{d.version}")
    return [label for name in sorted(latest) for label in latest[name]]


def find_suite(ws, spec: str) -> DatasetVersion:
    """A suite version by `name` (its latest version) or `name/vNNNN`."""
    name, _, version = (spec or "").strip().partition("/")
    suites = list_eval_suites(ws)
    matches = [d for d in suites if d.name == name and (not version or d.version == version)]
    if not matches:
        known = ", ".join(sorted({d.name for d in suites})) or "none"
        raise SuiteError(f"no evaluation suite {spec!r} in the workspace (suites: {known})")
    return max(matches, key=lambda d: d.version)


def load_suite(version: DatasetVersion) -> Suite:
    items_path = version.path / (version.files[0] if version.files else ITEMS_FILE)
    kind = version.format if version.format in KINDS else None
    kind, items = check_file(items_path, kind)
    shots: list[dict] = []
    if (version.path / SHOTS_FILE).is_file():
        _, shots = check_file(version.path / SHOTS_FILE, kind)
    # Rows flagged as shots inside the items file are shots too (never scored).
    shots += [i for i in items if i.pop("shot", False)]
    items = [i for i in items if i not in shots]
    return Suite(
        name=version.name,
        version=version.version,
        kind=kind,
        items=items,
        shots=shots,
        settings=dict(version.settings or {}),
        path=version.path,
    )


def open_suite(ws, spec: str) -> Suite:
    return load_suite(find_suite(ws, spec))


def import_suite(
    ws,
    path: Path,
    *,
    name: str | None = None,
    kind: str | None = None,
    shots: Path | None = None,
    operation: str = "upload",
    source: str | None = None,
) -> DatasetVersion:
    """Check a suite file (and an optional shots file) and add it as the next version of
    the suite `name` (default: the file's name). Nothing is written when a row is bad.
    Rows of a QA file flagged `"shot": true` become the suite's fixed shots."""
    path = Path(path)
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise SuiteError(f"{path.name} is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    kind, items = check_file(path, kind)
    shot_rows = [i for i in items if i.pop("shot", False)]
    if shots is not None:
        shot_rows += check_file(Path(shots), kind)[1]
    if shot_rows and kind != SHORT_ANSWER_QA:
        raise SuiteError(f"{path.name}: only short-answer QA suites take few-shot examples")
    items = [i for i in items if i not in shot_rows]
    if not items:
        raise SuiteError(f"{path.name}: every row is a shot; nothing is left to score")
    try:
        name = safe_name(name or path.stem[:60] or "suite")
    except UnsafeInputError as exc:
        raise SuiteError(str(exc)) from exc
    tmp = Path(tempfile.mkdtemp(prefix="suite-"))
    try:
        files = {ITEMS_FILE: _write_jsonl(tmp / ITEMS_FILE, items)}
        if shot_rows:
            files[SHOTS_FILE] = _write_jsonl(tmp / SHOTS_FILE, shot_rows)
        return add_version(
            ws.evals / "suites",
            name,
            files,
            format=kind,
            operation=operation,
            source=source or path.name,
            settings={"k": len(shot_rows)} if shot_rows else {},
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_text(ws, text: str, *, name: str, kind: str | None = None) -> DatasetVersion:
    """Rows pasted as text (JSON Lines) become a suite version, as an upload would."""
    if not (text or "").strip():
        raise SuiteError("paste at least one JSON row")
    tmp = Path(tempfile.mkdtemp(prefix="suite-"))
    try:
        path = tmp / f"{safe_name(name or 'suite')}.jsonl"
        path.write_text(text.strip() + "\n", encoding="utf-8")
        return import_suite(ws, path, name=name, kind=kind, operation="create", source="pasted")
    except UnsafeInputError as exc:
        raise SuiteError(str(exc)) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    clean = [{k: v for k, v in r.items() if v is not None} for r in rows]
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in clean), encoding="utf-8"
    )
    return path
