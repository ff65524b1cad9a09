"""A synthesis job: a cleaned dataset version in, a new SFT dataset version out.

    synth/<job id>/
      job.json       what to do: source version, model, template, passages, generation
      status.json    state, pid, progress, throughput, ETA (rewritten atomically)
      plan.npy       every passage as (row, start, end) in the source version
      parts/         batch-<k>.jsonl, one per finished batch of passages (written atomically)
      report.json    counts by rejection reason, with samples (when the job ends)
      synth.log      what the job's process printed
      stop           present while a stop is requested

The job runs in its own process like a training run (`python -m studio data synthesize
--job-dir DIR`; the Data tab starts it with `spawn_job`), so it survives a closed browser
and can be stopped. Passage k always belongs to batch k // batch_size, and a batch's file
appears only when the whole batch is done: a stopped, killed or crashed job started again
skips every batch whose file exists and repeats none. The dataset version is written when
every batch is done, from the batch files in passage order; each row names its source
document and the passage's character offsets.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.errors import InputError, StudioError
from studio.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from studio.generate import GenerationSettings
from studio.runs.store import ACTIVE, Run, reconcile_run, start_time
from studio.safety import safe_name
from studio.synth.checks import REASONS, Pair, instruction_spans, judge
from studio.synth.generators import WHY
from studio.synth.passages import Passage, PassageSettings, plan
from studio.synth.templates import Template, template_from_dict

OUTPUTS = ("messages", "prompt_completion")
SAMPLES = 3  # rejected and accepted examples kept per reason in the report


class SynthError(StudioError, RuntimeError):
    pass


def default_generation() -> GenerationSettings:
    return GenerationSettings(max_new_tokens=256, temperature=0.7, top_p=0.9)


@dataclass
class SynthSettings:
    source: str  # dataset version spec
    model: str
    template: dict  # Template fields (a bundled template, or one edited by the user)
    persona: str = ""
    passages: PassageSettings = field(default_factory=PassageSettings)
    limit: int | None = None  # at most this many passages (the first ones)
    generation: GenerationSettings = field(default_factory=default_generation)
    batch_size: int = 8
    backend: str = "auto"
    output: str = "messages"
    name: str = ""  # the new dataset's name; default <source name>-synth

    @property
    def template_obj(self) -> Template:
        return template_from_dict(self.template)

    def validate(self) -> SynthSettings:
        template = self.template_obj
        self.passages.validate()
        self.generation.validate()
        if not 1 <= int(self.batch_size) <= 1024:
            raise InputError("batch size must be between 1 and 1024", code="bad_batch_size")
        if self.limit is not None and int(self.limit) < 1:
            raise InputError("the number of passages must be at least 1", code="bad_limit")
        if self.output not in OUTPUTS:
            raise InputError(f"output must be one of {', '.join(OUTPUTS)}", code="bad_output")
        if self.output == "prompt_completion" and template.form == "chat":
            raise InputError(
                "a chat template makes conversations; write them as messages",
                code="chat_needs_messages",
            )
        if not str(self.model or "").strip():
            raise InputError("choose the generator model", code="no_generator_model")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SynthSettings:
        data = dict(data)
        data["passages"] = PassageSettings(**data.get("passages", {}))
        data["generation"] = GenerationSettings(**data.get("generation", {}))
        return cls(**data)


class SynthJob(Run):
    """A job directory; status, stop and liveness work as a run's do."""

    process_name = "synthesis"
    resume_point = "the last finished batch"
    kept_on_failure = "Finished batches are kept; resume continues after the last of them."

    config_path = property(lambda self: self.root / "job.json")
    log_path = property(lambda self: self.root / "synth.log")
    parts_dir = property(lambda self: self.root / "parts")
    report_path = property(lambda self: self.root / "report.json")
    plan_path = property(lambda self: self.root / "plan.npy")

    def settings(self) -> SynthSettings:
        return SynthSettings.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))

    def part_path(self, batch: int) -> Path:
        return self.parts_dir / f"batch-{batch:06d}.jsonl"

    def finished_batches(self) -> set[int]:
        if not self.parts_dir.is_dir():
            return set()
        return {int(p.stem.split("-")[1]) for p in self.parts_dir.glob("batch-*.jsonl")}

    def iter_records(self):
        """Every finished passage's record, in passage order, one at a time (batch files
        are named in batch order, and a batch holds its passages in order)."""
        if not self.parts_dir.is_dir():
            return
        for path in sorted(self.parts_dir.glob("batch-*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)

    def records(self) -> list[dict]:
        return list(self.iter_records())

    def report(self) -> dict | None:
        return self.json_of(self.report_path)


def jobs_dir(ws) -> Path:
    return ws.root / "synth"


def new_job(ws, settings: SynthSettings) -> SynthJob:
    """Check everything that can be checked without the model and write the job directory."""
    from studio.data.store import resolve
    from studio.models.load import resolve_source

    version = resolve(ws, settings.source)
    settings.validate()
    settings.source = version.spec
    settings.name = safe_name(settings.name or f"{version.name}-synth")
    resolve_source(settings.model, named_dirs=ws.model_dirs())  # a clear error for a bad name
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(version.name)[:40]}"
    job_id, n = stem, 2
    while (jobs_dir(ws) / job_id).exists():
        job_id, n = f"{stem}-{n}", n + 1
    job = SynthJob(jobs_dir(ws) / job_id)
    job.parts_dir.mkdir(parents=True)
    atomic_write_json(job.config_path, settings.to_dict())
    job.set_status("queued", created=time.time())
    return job


def open_job(ws, job_id: str) -> SynthJob:
    path = jobs_dir(ws) / safe_name(job_id)
    if not (path / "job.json").is_file():
        raise SynthError(
            f"no synthesis job named {job_id!r} in {jobs_dir(ws)}", code="no_such_job", job=job_id
        )
    return SynthJob(path)


def list_jobs(ws) -> list[SynthJob]:
    folder = jobs_dir(ws)
    if not folder.is_dir():
        return []
    found = [SynthJob(p) for p in folder.iterdir() if (p / "job.json").is_file()]
    return sorted(found, key=lambda j: j.id, reverse=True)


def job_command(job: SynthJob, ws) -> list[str]:
    import sys

    return [sys.executable, "-m", "studio", "data", "synthesize", "--workspace", str(ws.root)] + [
        "--job-dir",
        str(job.root),
    ]


def check_resumable(job: SynthJob) -> None:
    state = job.state
    if state == "completed":
        raise SynthError(f"{job.id} has completed", code="job_completed", job=job.id)
    if state in ACTIVE and job.alive():
        raise SynthError(f"{job.id} is still running", code="job_running", job=job.id)


def spawn_job(job: SynthJob, ws, *, resume: bool = False):
    """Start (or resume) the job in its own process, watched like a training run."""
    from studio.runs.launcher import spawn

    if resume:
        check_resumable(job)
        job.clear_stop()
        job.set_status("queued", reason=None, message=None, ended=None)
    return spawn(job, ws, command=job_command(job, ws))


# --- the work ------------------------------------------------------------------------------
TEXT_COLUMNS = {"text": ["text"], "prompt_completion": ["prompt", "completion"],
                "messages": ["messages"]}  # fmt: skip


def documents(ws, spec: str, *, ids: bool = True):
    """(row, id, text) of every document of a version with text, in order; read in batches
    of the columns the text needs (and `id`), so no column is ever held whole."""
    from studio.data.store import document_text, open_version, resolve

    version = resolve(ws, spec)
    data = open_version(ws, version)
    columns = list(TEXT_COLUMNS[version.format])
    if ids and "id" in data.column_names:
        columns.append("id")
    row = 0
    for batch in data.select_columns(columns).iter(batch_size=1024):
        for i in range(len(batch[columns[0]])):
            record = {c: batch[c][i] for c in columns}
            text = document_text(record, version.format)
            if text.strip():
                yield row, record.get("id") or f"row-{row}", text
            row += 1


def open_generator(ws, settings: SynthSettings, template: Template):
    """(generator, why, a context manager to close it) for the settings' model."""
    import contextlib

    from studio.models.load import resolve_source
    from studio.models.pool import ModelPool, adapter_base, pool_opener
    from studio.synth.generators import TransformersGenerator, VllmGenerator, pick_backend

    source = resolve_source(settings.model, named_dirs=ws.model_dirs())
    backend, why = pick_backend(settings.backend, adapter=adapter_base(source) is not None)
    if backend == "vllm":
        return (
            VllmGenerator(source.ref, settings.generation, template.response_prefix),
            why,
            (contextlib.nullcontext()),
        )
    stack = contextlib.ExitStack()
    loaded = stack.enter_context(pool_opener(ws, ModelPool(max_models=1))(settings.model))
    generator = TransformersGenerator(loaded, settings.generation, template.response_prefix)
    return generator, why, stack


class _Stop:
    def __init__(self, job: SynthJob) -> None:
        self.job, self.signalled = job, False

    def __bool__(self) -> bool:
        return self.signalled or self.job.stop_requested


def _count_totals(records, into: dict | None = None) -> dict:
    """Passages done, pairs kept, rejections by reason and output tokens of `records` (any
    iterable: the batch files are read one record at a time), added to `into` when given."""
    totals = into or {"passages_done": 0, "accepted": 0, "rejected": {}, "new_tokens": 0}
    rejected = Counter(totals["rejected"])
    for rec in records:
        totals["passages_done"] += 1
        totals["accepted"] += len(rec["accepted"])
        totals["new_tokens"] += rec["new_tokens"]
        rejected.update(r["reason"] for r in rec["rejected"])
    totals["rejected"] = {k: rejected[k] for k in REASONS if rejected[k]}
    return totals


def load_plan(ws, job: SynthJob, settings: SynthSettings, tokenizer):
    """The job's passages as (row, start, end): planned once, in one pass over the version,
    and kept in the job (a resumed job does not plan again)."""
    import numpy as np

    if job.plan_path.is_file():
        try:
            return np.load(job.plan_path)
        except (OSError, ValueError):
            pass  # damaged: plan again (it is deterministic)
    offsets = plan(
        documents(ws, settings.source, ids=False),
        settings.passages,
        tokenizer,
        limit=settings.limit,
    )
    buffer = io.BytesIO()
    np.save(buffer, offsets)
    atomic_write_bytes(job.plan_path, buffer.getvalue())
    return offsets


def batch_passages(data, fmt: str, offsets, first: int) -> list[Passage]:
    """The passages of one batch, their texts read from the version as it runs."""
    from studio.data.store import document_text

    found = []
    for i, (row, start, end) in enumerate(offsets.tolist()):
        record = data[row]
        text = document_text(record, fmt)
        doc_id = record.get("id") or f"row-{row}"
        found.append(Passage(first + i, row, str(doc_id), start, end, text[start:end]))
    return found


def execute(ws, job: SynthJob, *, generator=None, log=print) -> dict:
    """Do the job's unfinished batches, then write the dataset version. `generator` (any
    object with `generate(conversations, seed)` and a `backend`) replaces the model's.
    Returns the final status."""
    settings = job.settings()
    template = settings.template_obj
    stop = _Stop(job)
    previous = signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "signalled", True))
    job.set_status("running", pid=os.getpid(), pid_started=start_time())
    try:
        return _execute(ws, job, settings, template, generator, stop, log)
    except StudioError as exc:
        params = {k: str(v) for k, v in exc.params.items()}
        job.set_status(
            "failed", reason=exc.code, params=params, message=str(exc), ended=time.time()
        )
        raise
    except KeyboardInterrupt:
        job.set_status(
            "stopped",
            reason="killed",
            message="stopped at once: the batch in progress is lost; resume continues after "
            "the last finished batch",
            ended=time.time(),
        )
        raise
    except BaseException as exc:
        oom = type(exc).__name__ == "OutOfMemoryError"
        message = (
            "the GPU ran out of memory; lower the batch size or max new tokens and resume"
            if oom
            else f"{type(exc).__name__}: {exc}"
        )
        job.set_status(
            "failed",
            reason="out_of_memory" if oom else "crashed",
            message=message,
            ended=time.time(),
        )
        if not oom:
            log(traceback.format_exc())
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(ws, job, settings, template, generator, stop, log) -> dict:
    import contextlib

    closer = contextlib.nullcontext()
    why = "given"  # a generator handed in (a test's stand-in)
    if generator is None:
        generator, why, closer = open_generator(ws, settings, template)
    with closer:
        from studio.data.store import open_version, resolve

        tokenizer = getattr(generator, "tokenizer", None)
        offsets = load_plan(ws, job, settings, tokenizer)
        total = len(offsets)
        if not total:
            raise SynthError(
                f"{settings.source} has no passage of at least {settings.passages.min_chars} "
                "characters",
                code="no_passages",
                source=settings.source,
                min_chars=settings.passages.min_chars,
            )
        version = resolve(ws, settings.source)
        data = open_version(ws, version)
        size = int(settings.batch_size)
        batches = (total + size - 1) // size
        done = job.finished_batches()
        totals = _count_totals(job.iter_records())
        job.set_status(
            "running",
            backend=generator.backend,
            backend_why=why,  # a key of generators.WHY
            passages_total=total,
            batches_total=batches,
            **totals,
        )
        log(f"[synth] {total} passages in {batches} batches; {len(done)} done; {WHY.get(why, why)}")
        spans = instruction_spans(template.instructions(settings.persona))
        session = {"seconds": 0.0, "passages": 0, "tokens": 0}
        for k in range(batches):
            if k in done:
                continue
            if stop:
                job.set_status("stopped", reason="stopped", ended=time.time(), **totals)
                log(f"[synth] stopped; {totals['passages_done']} passages done")
                return job.status()
            batch = batch_passages(
                data, version.format, offsets[k * size : (k + 1) * size], k * size
            )
            started = time.perf_counter()
            replies = generator.generate(
                [template.messages(p.text, settings.persona) for p in batch], seed=k
            )
            seconds = time.perf_counter() - started
            records = []
            for p, reply in zip(batch, replies, strict=True):
                if reply.too_long:
                    accepted, rejected = [], [Pair([], reason="too_long")]
                else:
                    accepted, rejected = judge(
                        reply.text, p.text, template, spans, cut=not reply.stopped
                    )
                record = {
                    "passage": p.index,
                    "row": p.row,
                    "doc_id": p.doc_id,
                    "start": p.start,
                    "end": p.end,
                    "reply": reply.text,
                    "prompt_tokens": reply.prompt_tokens,
                    "new_tokens": reply.new_tokens,
                    "stopped": reply.stopped,
                    "accepted": [{"turns": a.turns, **a.notes} for a in accepted],
                    "rejected": [
                        {"turns": r.turns, "reason": r.reason, **r.notes} for r in rejected
                    ],
                }
                records.append(record)
            lines = (json.dumps(record, ensure_ascii=False) for record in records)
            atomic_write_text(job.part_path(k), "\n".join(lines) + "\n")
            _count_totals(records, into=totals)
            session["seconds"] += seconds
            session["passages"] += len(batch)
            session["tokens"] += sum(r.new_tokens for r in replies)
            left = total - totals["passages_done"]
            per_s = session["passages"] / max(session["seconds"], 1e-9)
            job.set_status(
                "running",
                **totals,
                tokens_per_s=round(session["tokens"] / max(session["seconds"], 1e-9), 1),
                passages_per_s=round(per_s, 3),
                eta_s=round(left / per_s, 1) if per_s > 0 else None,
            )
            log(
                f"[synth] batch {k + 1}/{batches}: {totals['passages_done']}/{total} "
                f"passages, {totals['accepted']} pairs kept, {per_s:.2f} passages/s"
            )
    return finish(ws, job, settings, template)


def _rows(job: SynthJob, output: str):
    """The accepted pairs as dataset rows, streamed from the batch files."""
    roles = ("user", "assistant")
    for rec in job.iter_records():
        for k, pair in enumerate(rec["accepted"]):
            turns = pair["turns"]
            row = {"id": f"{job.id}-p{rec['passage']:06d}-{k}"}
            if output == "prompt_completion":
                row.update(prompt=turns[0], completion=turns[1])
            else:
                row["messages"] = [
                    {"role": roles[i % 2], "content": text} for i, text in enumerate(turns)
                ]
            row.update(
                source_id=rec["doc_id"],
                source_row=rec["row"],
                source_start=rec["start"],
                source_end=rec["end"],
                passage=rec["passage"],
            )
            yield row


def finish(ws, job: SynthJob, settings: SynthSettings, template: Template) -> dict:
    """Write the report and, when any pair was accepted, the new dataset version (rows
    streamed from the batch files into Arrow on disk, never all in memory)."""
    import shutil
    import tempfile

    from studio.data.store import cache_dir, hf_datasets, write_version

    report = build_report(job.iter_records())
    atomic_write_json(job.report_path, report)
    totals = {k: report[k] for k in ("passages_done", "accepted", "rejected", "new_tokens")}
    if not totals["accepted"]:
        return job.set_status(
            "completed",
            reason="no_pairs_accepted",
            message="every generated pair was rejected; see the report for why",
            version=None,
            ended=time.time(),
            **totals,
        )
    status = job.status()
    scratch = Path(tempfile.mkdtemp(prefix="synth-", dir=cache_dir(ws)))
    try:
        rows = hf_datasets().Dataset.from_generator(
            _rows, gen_kwargs={"job": job, "output": settings.output}, cache_dir=str(scratch)
        )
        version = write_version(
            ws,
            settings.name,
            rows,
            format="prompt_completion" if settings.output == "prompt_completion" else "messages",
            operation="synthesize",
            parent=settings.source,
            settings={
                "job": job.id,
                "model": settings.model,
                "backend": status.get("backend"),
                "template": template.name,
                "template_language": template.language,
                "persona": settings.persona,
                "passages": settings.passages.to_dict(),
                "limit": settings.limit,
                "generation": asdict(settings.generation),
            },
            counts={
                "passages": totals["passages_done"],
                "pairs": report["pairs"],
                "accepted": totals["accepted"],
                "rejected": totals["rejected"],
                "new_tokens": totals["new_tokens"],
            },
            source=f"synth:{job.id}",
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return job.set_status(
        "completed", reason=None, version=version.spec, ended=time.time(), **totals
    )


def build_report(records) -> dict:
    """Counts by reason with a few samples each (the passage's offsets and the pair), and
    accepted samples: what the Data tab and `--json` show. One pass over `records`."""
    samples: dict[str, list] = {r: [] for r in REASONS}
    accepted = []

    def sampled():
        for rec in records:
            where = {"passage": rec["passage"], "doc_id": rec["doc_id"], "start": rec["start"]}
            for r in rec["rejected"]:
                if len(samples[r["reason"]]) < SAMPLES:
                    extra = {k: v for k, v in r.items() if k not in ("turns", "reason")}
                    if r["reason"] == "too_long":
                        extra["prompt_tokens"] = rec.get("prompt_tokens")
                    samples[r["reason"]].append({**where, "turns": r["turns"], **extra})
            for a in rec["accepted"]:
                if len(accepted) < SAMPLES:
                    accepted.append({**where, "turns": a["turns"], "grounding": a.get("grounding")})
            yield rec

    totals = _count_totals(sampled())
    pairs = totals["accepted"] + sum(totals["rejected"].values())
    return {
        **totals,
        "pairs": pairs,
        "accepted_share": round(totals["accepted"] / pairs, 4) if pairs else 0.0,
        "samples": {r: s for r, s in samples.items() if s},
        "accepted_samples": accepted,
    }


def progress_of(job: SynthJob) -> dict:
    """The job's status, with a job whose process is gone marked interrupted."""
    reconcile_run(job)
    return job.status()
