"""The cleaning pipeline: an ordered list of filters run over a dataset version.

A pipeline is a list of steps `{filter: NAME, enabled: true, PARAM: VALUE, ...}` (see
`studio.data.filters.FILTERS` for the filters and their parameters), saved as YAML:

    name: my-pipeline
    steps:
      - filter: mojibake
        enabled: true
        max_ratio: 0.01
      - filter: nfkc
      ...

The same YAML is used by the UI (table, upload/download) and the CLI (`--pipeline`);
`presets/cleaning/{ja,en,mixed}.yaml` are the language presets (`ja` is the default).

`run_pipeline` maps the steps over a version with `datasets.Dataset.map(batched=True,
num_proc=N)`: for each document it records which step dropped it (the first that rejects)
and the rewritten text (normalisation, masking), plus per-step time; the kept rows become a
new version (`write_version`, operation `clean`, settings = the pipeline, counts per step).
The report says, per step: documents and bytes removed, documents rewritten, seconds
(summed over workers) and a few removed documents; and the length histograms before/after.

Rows in any form are cleaned: the filters judge `document_text(row)` (text; prompt +
completion; every message) and rewriting steps rewrite each text field on its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import yaml
from hojichar import Document

from studio.data.filters import FILTERS, PipelineError, build_filter, parse_words, read_word_list
from studio.data.store import DataError, document_text, open_version, resolve, write_version
from studio.fsutil import atomic_write_text
from studio.paths import PRESETS_DIR
from studio.safety import UnsafeInputError, YamlRefused, load_yaml, user_path
from studio.settings import as_bool

PRESET_DIR = PRESETS_DIR / "cleaning"
DEFAULT_PRESET = "ja"
SAMPLES_PER_STEP = 5
SAMPLE_CHARS = 600
# Length buckets (characters) of the before/after histograms.
LENGTH_EDGES = [0, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200]
AUTO_PARALLEL_ROWS = 20_000


# --- the pipeline -----------------------------------------------------------------------


@dataclass
class Step:
    filter: str
    enabled: bool = True
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"filter": self.filter, "enabled": self.enabled, **self.params}

    @property
    def rewrites(self) -> bool:
        return FILTERS[self.filter].rewrites

    def label(self, index: int) -> str:
        return f"{index + 1}. {self.filter}"


@dataclass
class Pipeline:
    steps: list[Step]
    name: str = ""
    description: str = ""

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        if self.name:
            d["name"] = self.name
        if self.description:
            d["description"] = self.description
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False, width=100)

    @property
    def active(self) -> list[Step]:
        return [s for s in self.steps if s.enabled]

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_value(where: str, p, value):
    """The value converted to the parameter's type, or PipelineError naming where."""
    kind = p.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise PipelineError(f"{where}: {p.name} must be true or false, got {shown(value)}")
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise PipelineError(f"{where}: {p.name} must be a number, got {shown(value)}")
        try:
            number = float(value) if kind == "float" else _as_int(value)
        except (TypeError, ValueError):
            what = "an integer" if kind == "int" else "a number"
            raise PipelineError(f"{where}: {p.name} must be {what}, got {shown(value)}") from None
        if p.min is not None and number < p.min:
            raise PipelineError(f"{where}: {p.name} must be at least {p.min}, got {shown(value)}")
        if p.max is not None and number > p.max:
            raise PipelineError(f"{where}: {p.name} must be at most {p.max}, got {shown(value)}")
        return number
    if kind == "str":
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise PipelineError(f"{where}: {p.name} must be text, got {shown(value)}")
        return str(value)
    if kind == "choice":
        if value not in p.choices:
            raise PipelineError(
                f"{where}: {p.name} must be one of {', '.join(p.choices)}, got {shown(value)}"
            )
        return value
    if kind == "words":
        if value is None:
            return []
        if isinstance(value, str):
            return parse_words(value)
        if not isinstance(value, list) or not all(isinstance(w, (str, int)) for w in value):
            raise PipelineError(f"{where}: {p.name} must be a list of strings, got {shown(value)}")
        return [str(w) for w in value]
    raise AssertionError(kind)


def _as_int(value) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, int):
        return value
    raise TypeError(value)


def shown(value: Any) -> str:
    """A value as a message shows it: short, whatever its size."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = 60
    r.maxlist = r.maxdict = 6
    r.maxlevel = 3
    return r.repr(value)


def validate_step(raw: Any, index: int, base_dir: Path | None = None) -> Step:
    """One step from its YAML mapping; errors name the step (1-based) and the key."""
    where = f"step {index + 1}"
    if not isinstance(raw, dict):
        raise PipelineError(f"{where}: expected a mapping with 'filter:', got {shown(raw)}")
    raw = dict(raw)
    name = raw.pop("filter", None)
    if not isinstance(name, str) or not name.strip():
        raise PipelineError(f"{where}: 'filter' is missing (e.g. filter: nfkc)")
    name = name.strip()
    if name not in FILTERS:
        raise PipelineError(
            f"{where}: unknown filter {name!r} (known: {', '.join(sorted(FILTERS))})"
        )
    where = f"step {index + 1} ({name})"
    spec = FILTERS[name]
    enabled = raw.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise PipelineError(f"{where}: enabled must be true or false, got {shown(enabled)}")
    params = {}
    for key, value in raw.items():
        p = spec.param(str(key))
        if p is None:
            known = ", ".join(q.name for q in spec.params) or "none"
            raise PipelineError(f"{where}: unknown parameter {key!r} (parameters: {known})")
        params[p.name] = _check_value(where, p, value)
    for p in spec.params:
        params.setdefault(p.name, copy.deepcopy(p.default))
    if name == "doc_length" and params["min_chars"] > params["max_chars"]:
        raise PipelineError(f"{where}: min_chars ({params['min_chars']}) is above max_chars")
    if name in ("ad_lines", "nav_lines"):
        import re

        for pattern in params["extra_patterns"]:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PipelineError(
                    f"{where}: extra_patterns: {pattern!r} is not a regular expression ({exc})"
                ) from None
    if name == "ng_words" and params["words_file"]:
        try:  # exposed: inside the workspace, whether or not the file exists
            path = user_path(params["words_file"], base_dir)
        except UnsafeInputError as exc:
            raise PipelineError(f"{where}: words_file: {exc}") from None
        read_word_list(path)  # a missing or non-UTF-8 file fails here, named
        params["words_file"] = str(path)
    return Step(name, enabled, params)


def validate_pipeline(data: Any, base_dir: Path | None = None) -> Pipeline:
    """A pipeline from parsed YAML: a mapping with `steps:` (or a bare list of steps)."""
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict):
        raise PipelineError("a pipeline is a mapping with a 'steps:' list")
    unknown = set(data) - {"name", "description", "steps"}
    if unknown:
        raise PipelineError(
            f"unknown top-level key {sorted(unknown)[0]!r} (expected name, description, steps)"
        )
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise PipelineError("'steps:' must be a non-empty list of filters")
    return Pipeline(
        steps=[validate_step(raw, i, base_dir) for i, raw in enumerate(steps)],
        name=str(data.get("name") or ""),
        description=str(data.get("description") or ""),
    )


def parse_pipeline(text: str, source: str = "pipeline", base_dir: Path | None = None):
    """A pipeline from YAML text; errors are prefixed with `source` (a file name)."""
    try:
        data = load_yaml(text)
    except YamlRefused as exc:
        raise PipelineError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineError(f"{source}{at}: not valid YAML ({problem})") from None
    try:
        return validate_pipeline(data, base_dir)
    except PipelineError as exc:
        raise PipelineError(f"{source}: {exc}") from None


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PipelineError(f"{path.name} is not UTF-8 text; save it as UTF-8") from None
    return parse_pipeline(text, path.name, base_dir=path.parent)


def save_pipeline(pipeline: Pipeline, path: str | Path) -> Path:
    return atomic_write_text(path, pipeline.to_yaml())


def list_presets() -> list[dict]:
    """The bundled presets: name, description, path, number of steps."""
    out = []
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        try:
            p = load_pipeline(path)
        except PipelineError as exc:
            out.append({"name": path.stem, "path": str(path), "error": str(exc)})
            continue
        out.append(
            {
                "name": path.stem,
                "description": p.description,
                "path": str(path),
                "steps": len(p.steps),
                "enabled": len(p.active),
            }
        )
    return out


def preset(name: str = DEFAULT_PRESET) -> Pipeline:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(PRESET_DIR.glob("*.yaml")))
        raise PipelineError(f"no cleaning preset {name!r} (presets: {known})")
    return load_pipeline(path)


def resolve_pipeline(ref: str | Path | Pipeline | None) -> Pipeline:
    """A Pipeline from a preset name (ja, en, mixed), a YAML file, or itself."""
    if isinstance(ref, Pipeline):
        return ref
    if ref is None or str(ref).strip() == "":
        return preset(DEFAULT_PRESET)
    text = str(ref).strip()
    if (PRESET_DIR / f"{text}.yaml").is_file() and os.sep not in text:
        return preset(text)
    path = Path(text).expanduser()
    if path.is_file():
        return load_pipeline(path)
    known = ", ".join(p.stem for p in sorted(PRESET_DIR.glob("*.yaml")))
    raise PipelineError(f"no pipeline file {text!r} and no preset of that name (presets: {known})")


# --- the table the UI edits ---------------------------------------------------------------

TABLE_HEADERS = ["on", "filter", "settings"]


def _flow(params: dict) -> str:
    """Settings as one line of YAML flow mapping (what the UI table shows)."""
    if not params:
        return ""
    text = yaml.safe_dump(params, allow_unicode=True, default_flow_style=True, width=10_000)
    return text.strip()


def pipeline_to_rows(pipeline: Pipeline, hide_words: bool = True) -> list[list]:
    """[on, filter, settings] rows; the NG words are edited in their own box (hide_words)."""
    rows = []
    for step in pipeline.steps:
        params = dict(step.params)
        if hide_words and step.filter == "ng_words":
            params.pop("words", None)
        rows.append([step.enabled, step.filter, _flow(params)])
    return rows


def pipeline_from_rows(rows, ng_words: str | list[str] | None = None, name: str = "") -> Pipeline:
    """The pipeline the UI table describes. `rows` is a list of [on, filter, settings]
    (or a pandas DataFrame); `ng_words` (text, one word per line) feeds the ng_words step,
    one is added when there are words and no such step. Errors name the row."""
    if hasattr(rows, "values") and hasattr(rows, "columns"):
        rows = rows.values.tolist()
    steps = []
    for row in rows or []:
        row = list(row) + [None] * (3 - len(row))
        on, name_, settings = row[:3]
        if (name_ is None or str(name_).strip() == "") and not str(settings or "").strip():
            continue  # an empty row the table added
        try:  # studio/settings.py: the same reading as run configs (an empty cell: off)
            enabled = as_bool(on, "on") if on not in (None, "") else False
        except ValueError as exc:
            raise PipelineError(f"step {len(steps) + 1}: {exc}") from None
        raw: dict[str, Any] = {"filter": str(name_ or "").strip(), "enabled": enabled}
        settings = str(settings or "").strip()
        if settings:
            text = settings if settings.startswith("{") else "{" + settings + "}"
            try:
                parsed = load_yaml(text)
            except YamlRefused as exc:
                raise PipelineError(f"step {len(steps) + 1}: {exc}") from None
            except yaml.YAMLError:
                raise PipelineError(
                    f"step {len(steps) + 1}: settings {settings!r} are not 'key: value, ...'"
                ) from None
            if not isinstance(parsed, dict):
                raise PipelineError(f"step {len(steps) + 1}: settings must be 'key: value, ...'")
            for key in ("filter", "enabled"):
                if key in parsed:
                    raise PipelineError(f"step {len(steps) + 1}: {key!r} is not a setting")
            raw.update(parsed)
        steps.append(raw)
    words = parse_words(ng_words) if isinstance(ng_words, str) else list(ng_words or [])
    ng = [s for s in steps if s["filter"] == "ng_words"]
    if ng:
        ng[0]["words"] = words
    elif words:
        at = next(
            (i for i, s in enumerate(steps) if s["filter"] in ("pii_mask", "hojichar_pii_mask")),
            len(steps),
        )
        steps.insert(at, {"filter": "ng_words", "enabled": True, "words": words})
    return validate_pipeline({"name": name, "steps": steps})


def pipeline_words(pipeline: Pipeline) -> str:
    """The NG words of the first ng_words step, one per line (for the UI's box)."""
    for step in pipeline.steps:
        if step.filter == "ng_words":
            return "\n".join(step.params.get("words") or [])
    return ""


# --- running it ---------------------------------------------------------------------------


class Cleaner:
    """The steps of a pipeline applied to documents; picklable (the filters are built in
    each worker on first use)."""

    def __init__(self, pipeline: Pipeline, fmt: str = "text") -> None:
        self.steps = [(s.filter, s.params, s.rewrites) for s in pipeline.active]
        self.fmt = fmt
        self._filters = None
        self._applies = None

    def __getstate__(self):
        return {"steps": self.steps, "fmt": self.fmt, "_filters": None, "_applies": None}

    def filters(self):
        if self._filters is None:
            self._filters = [(build_filter(n, p), rw) for n, p, rw in self.steps]
            self._applies = [(f.apply, rw) for f, rw in self._filters]
        return self._filters

    def clean_fields(self, fields: list[str], ns: list[int], changed: list[int]):
        """(index of the step that dropped the document or -1, the rewritten fields)."""
        filters = self.filters()
        if len(fields) == 1:
            doc = Document(fields[0])
            for i, (apply, rewrites) in enumerate(self._applies):
                before = doc.text
                t0 = perf_counter_ns()
                apply(doc)
                ns[i] += perf_counter_ns() - t0
                if doc.is_rejected:
                    return i, [doc.text]
                if rewrites and doc.text is not before and doc.text != before:
                    changed[i] += 1
            return -1, [doc.text]
        fields = list(fields)
        joined = None
        for i, (f, rewrites) in enumerate(filters):
            t0 = perf_counter_ns()
            if rewrites:
                new = []
                for text in fields:
                    d = Document(text)
                    f.apply(d)
                    new.append(d.text)
                if new != fields:
                    changed[i] += 1
                    fields = new
                    joined = None
                ns[i] += perf_counter_ns() - t0
                continue
            if joined is None:
                joined = "\n".join(fields)
            d = Document(joined)
            f.apply(d)
            ns[i] += perf_counter_ns() - t0
            if d.is_rejected:
                return i, fields
        return -1, fields

    def clean_text(self, text: str) -> tuple[int, str]:
        n = len(self.steps)
        drop, fields = self.clean_fields([text], [0] * n, [0] * n)
        return drop, fields[0]

    def __call__(self, *columns) -> dict:
        """One batch, given as the columns named in `INPUT_COLUMNS[fmt]` (`Dataset.map`
        with `input_columns`: the other columns are carried over without conversion)."""
        n = len(self.steps)
        ns, changed = [0] * n, [0] * n
        size = len(columns[0]) if columns else 0
        drops, in_bytes, in_chars, out_chars = [], [], [], []
        fmt = self.fmt
        out: dict[str, list] = {name: [] for name in INPUT_COLUMNS[fmt]}
        for r in range(size):
            if fmt == "text":
                fields = [str(columns[0][r] or "")]
            elif fmt == "prompt_completion":
                fields = [str(columns[0][r] or ""), str(columns[1][r] or "")]
            else:
                messages = columns[0][r] or []
                fields = [str(m.get("content") or "") for m in messages]
            joined = fields[0] if len(fields) == 1 else "\n".join(fields)
            in_bytes.append(len(joined.encode("utf-8")))
            in_chars.append(len(joined))
            drop, new = self.clean_fields(fields, ns, changed)
            drops.append(drop)
            if drop >= 0:
                out_chars.append(0)
            else:
                out_chars.append(len(new[0]) if len(new) == 1 else len("\n".join(new)))
            if fmt == "text":
                out["text"].append(new[0])
            elif fmt == "prompt_completion":
                out["prompt"].append(new[0])
                out["completion"].append(new[1])
            else:
                msgs = [dict(m) for m in messages]
                for m, text in zip(msgs, new, strict=True):
                    m["content"] = text
                out["messages"].append(msgs)
        stats = [None] * size
        if size:
            stats[0] = ns + changed  # per batch: nanoseconds, then rewritten docs, per step
        out.update(
            {
                "__clean_drop": drops,
                "__clean_in_bytes": in_bytes,
                "__clean_in_chars": in_chars,
                "__clean_out_chars": out_chars,
                "__clean_stats": stats,
            }
        )
        return out


INPUT_COLUMNS = {
    "text": ["text"],
    "prompt_completion": ["prompt", "completion"],
    "messages": ["messages"],
}
HELPER_COLUMNS = [
    "__clean_drop",
    "__clean_in_bytes",
    "__clean_in_chars",
    "__clean_out_chars",
    "__clean_stats",
]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_num_proc() -> int:
    """The most worker processes a step starts, whatever was asked: twice the cores."""
    return max(2, 2 * available_cpus())


def auto_num_proc(rows: int) -> int:
    """Worker processes for `rows` documents: one below 20k rows (start-up costs more than
    it saves), else every available core, up to 8."""
    if rows < AUTO_PARALLEL_ROWS:
        return 1
    return max(1, min(available_cpus(), 8))


def length_histogram(before, after) -> list[dict]:
    """Bucketed document lengths (characters): [{bucket, lo, hi, before, after}]."""
    import numpy as np

    edges = LENGTH_EDGES + [max(int(np.max(before, initial=0)) + 1, LENGTH_EDGES[-1] + 1)]
    b, _ = np.histogram(before, bins=edges)
    a, _ = np.histogram(after, bins=edges)
    rows = []
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        label = f"{lo}-{hi - 1}" if i < len(edges) - 2 else f"{lo}+"
        rows.append({"bucket": label, "lo": lo, "hi": hi, "before": int(b[i]), "after": int(a[i])})
    while rows and rows[-1]["before"] == 0 and rows[-1]["after"] == 0:
        rows.pop()
    return rows


@dataclass
class CleanResult:
    version: Any  # DatasetVersion, or None for a dry run
    report: dict


# A clean that would remove more than this share of the rows (and at least MOST_ROWS of them)
# saves nothing unless the user confirms: a corpus preset on a chat set removes almost all.
MOST_SHARE = 0.5
MOST_ROWS = 5


class MostRemoved(DataError):
    """The pipeline would remove most rows; nothing was saved. `report` is what it found."""

    def __init__(self, report: dict) -> None:
        self.report = report
        top = max(report["steps"], key=lambda s: s["removed"])
        self.top_step = top["step"]
        self.share = report["removed"] / max(1, report["rows_in"])
        super().__init__(
            f"the pipeline would remove {report['removed']:,} of {report['rows_in']:,} rows "
            f"({self.share:.0%}), most of them by {top['step']}; nothing was saved. The bundled "
            "presets are made for web text corpora, not for chat or QA sets. Loosen or switch "
            "off that step, or confirm to save anyway (--allow-most-removed)."
        )


def run_pipeline(
    ws,
    spec,
    pipeline: Pipeline | str | Path | None = None,
    *,
    num_proc: int | None = None,
    samples: int = SAMPLES_PER_STEP,
    dry_run: bool = False,
    batch_size: int = 1000,
    allow_most_removed: bool = False,
) -> CleanResult:
    """Clean version `spec` with `pipeline` (a Pipeline, preset name or YAML path; default
    the Japanese preset) and write the kept rows as a new version (not with `dry_run`).
    A pipeline that would remove most rows raises `MostRemoved` unless
    `allow_most_removed`."""
    started = time.perf_counter()
    pipeline = resolve_pipeline(pipeline)
    if not pipeline.active:
        raise DataError("every step of the pipeline is switched off; switch one on")
    source = resolve(ws, spec)
    data = open_version(ws, source)
    rows = len(data)
    if rows == 0:
        raise DataError(f"{source.spec} has no rows")
    if num_proc is None or num_proc <= 0:
        num_proc = auto_num_proc(rows)
    # Never more processes than rows, nor than twice the cores: a typo like 100000 would
    # otherwise fork until memory runs out.
    num_proc = max(1, min(int(num_proc), rows, max_num_proc()))
    cleaner = Cleaner(pipeline, source.format)
    missing = [c for c in INPUT_COLUMNS.get(source.format, []) if c not in data.column_names]
    if source.format not in INPUT_COLUMNS or missing:
        raise DataError(
            f"{source.spec} ({source.format} rows) has no column {', '.join(missing) or '?'}"
        )
    mapped = data.map(
        cleaner,
        input_columns=INPUT_COLUMNS[source.format],
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc > 1 else None,
        load_from_cache_file=False,
        new_fingerprint=hashlib.sha256(
            f"clean {pipeline.fingerprint()} {data._fingerprint} {time.time_ns()}".encode()
        ).hexdigest()[:32],
        desc=f"cleaning {source.spec}",
    )
    try:
        report = _report(data, mapped, pipeline, source, samples)
        keep = report.pop("_keep")
        report["num_proc"] = num_proc
        version = None
        if not dry_run and len(keep) == 0:
            raise DataError(
                f"the pipeline removed every row of {source.spec}, so it left no rows; nothing "
                "was saved. Loosen or switch off the steps that removed the most (try a dry "
                "run to see them) and run it again."
            )
        removed = report["removed"]
        if (
            not (dry_run or allow_most_removed)
            and removed >= MOST_ROWS
            and (removed > MOST_SHARE * report["rows_in"])
        ):
            report["seconds"] = round(time.perf_counter() - started, 3)
            raise MostRemoved(report)
        if not dry_run:
            kept = mapped.select(keep).remove_columns(HELPER_COLUMNS)
            report["seconds"] = round(time.perf_counter() - started, 3)
            version = write_version(
                ws,
                source.name,
                kept,
                format=source.format,
                operation="clean",
                parent=source,
                settings={"pipeline": pipeline.to_dict(), "num_proc": num_proc},
                counts=report["counts"],
                seconds=time.perf_counter() - started,
            )
            report["version"] = version.spec
        report["seconds"] = round(time.perf_counter() - started, 3)
    finally:
        _drop_cache_files(mapped, data)
    return CleanResult(version, report)


def _drop_cache_files(mapped, data) -> None:
    """Remove the Arrow files `map` wrote (a 2 GB corpus would leave 2 GB behind)."""
    keep = {f["filename"] for f in data.cache_files}
    for f in mapped.cache_files:
        path = Path(f["filename"])
        if str(path) not in keep and path.name.startswith("cache-"):
            path.unlink(missing_ok=True)


def _report(data, mapped, pipeline: Pipeline, source, samples: int) -> dict:
    import numpy as np

    table = mapped.data
    drop = table.column("__clean_drop").to_numpy()
    in_bytes = table.column("__clean_in_bytes").to_numpy()
    in_chars = table.column("__clean_in_chars").to_numpy()
    out_chars = table.column("__clean_out_chars").to_numpy()
    active = [(i, s) for i, s in enumerate(pipeline.steps) if s.enabled]
    n = len(active)
    ns = np.zeros(n, dtype=np.int64)
    changed = np.zeros(n, dtype=np.int64)
    for batch_stats in table.column("__clean_stats").drop_null().to_pylist():
        ns += np.asarray(batch_stats[:n], dtype=np.int64)
        changed += np.asarray(batch_stats[n:], dtype=np.int64)
    keep = np.flatnonzero(drop < 0)
    per_step = []
    removed, removed_bytes = {}, {}
    for i, (position, step) in enumerate(active):
        hit = drop == i
        count = int(hit.sum())
        label = step.label(position)
        idx = np.flatnonzero(hit)[:samples].tolist()
        sample_rows = data.select(idx).to_list() if idx else []
        per_step.append(
            {
                "step": label,
                "filter": step.filter,
                "rewrites": step.rewrites,
                "params": step.params,
                "removed": count,
                "removed_bytes": int(in_bytes[hit].sum()),
                "rewritten": int(changed[i]),
                "seconds": round(float(ns[i]) / 1e9, 4),
                "samples": [
                    {
                        "row": j,
                        "id": r.get("id"),
                        "text": document_text(r, source.format)[:SAMPLE_CHARS],
                    }
                    for j, r in zip(idx, sample_rows, strict=True)
                ],
            }
        )
        if not step.rewrites:
            removed[label] = count
            removed_bytes[label] = int(in_bytes[hit].sum())
    total_in = int(len(drop))
    counts = {
        "in": total_in,
        "out": int(len(keep)),
        "removed": removed,
        "removed_bytes": removed_bytes,
        "rewritten": {s["step"]: s["rewritten"] for s in per_step if s["rewrites"]},
        "bytes_in": int(in_bytes.sum()),
        "bytes_out_before_rewrite": int(in_bytes[keep].sum()),
    }
    return {
        "source": source.spec,
        "pipeline": pipeline.name or "",
        "rows_in": total_in,
        "rows_out": int(len(keep)),
        "removed": total_in - int(len(keep)),
        "bytes_in": counts["bytes_in"],
        "bytes_removed": int(in_bytes.sum() - in_bytes[keep].sum()),
        "filter_seconds": round(float(ns.sum()) / 1e9, 3),
        "steps": per_step,
        "histogram": length_histogram(in_chars, out_chars[keep]),
        "counts": counts,
        "_keep": keep,
    }


def report_text(report: dict) -> str:
    """A plain-text summary (the CLI's output)."""
    lines = [
        f"{report['source']}: {report['rows_in']:,} documents in, {report['rows_out']:,} kept, "
        f"{report['removed']:,} removed ({report['bytes_removed']:,} bytes) "
        f"in {report.get('seconds', 0)} s ({report.get('num_proc', 1)} process(es))"
    ]
    width = max((len(s["step"]) for s in report["steps"]), default=10)
    for s in report["steps"]:
        what = (
            f"{s['rewritten']:>7,} rewritten"
            if s["rewrites"]
            else f"{s['removed']:>7,} removed {s['removed_bytes']:>11,} bytes"
        )
        lines.append(f"  {s['step']:<{width}}  {what}  {s['seconds']:>8.3f} s")
    if report.get("version"):
        lines.append(f"new version: {report['version']}")
    return "\n".join(lines)
