"""`python -m studio data synthesize ...`: SFT pairs generated from a cleaned corpus.

- `synthesize VERSION --model M --template NAME|FILE.yaml [--passages N] ...` cuts the
  version's documents into passages, asks the model for question/answer pairs (or a short
  chat) grounded in each, checks every pair and writes the accepted ones as a new version.
  It runs in this process; Ctrl-C stops after the current batch (twice: at once), and
  `--resume JOB` continues without repeating a finished batch.
- `synthesize --templates` lists the bundled templates.
"""

from __future__ import annotations

import argparse
import signal
import sys

from studio.cli.common import CliError, open_ws
from studio.synth.generators import WHY


def register(actions, common) -> None:
    from studio.synth.generators import BACKENDS
    from studio.synth.job import OUTPUTS
    from studio.synth.passages import UNITS

    syn = actions.add_parser(
        "synthesize",
        parents=[common],
        help="generate question/answer or chat pairs from a corpus with a local model",
        description="Cut VERSION's documents into passages, ask --model for pairs grounded in "
        "each with --template, check every pair (format, empty, end markers, copies of the "
        "prompt, language, grounding in the passage, duplicates) and write the accepted pairs "
        "as a new version whose rows name their source document and offsets. The job's files "
        "are kept under <workspace>/synth/<job>/; --resume JOB continues a stopped one.",
    )
    syn.add_argument("version", nargs="?", help="dataset NAME (latest version) or NAME/vNNNN")
    syn.add_argument("--model", help="the generator: a workspace model, run:<id>, a folder")
    syn.add_argument("--template", default="qa-ja", help="bundled name or a YAML file")
    syn.add_argument("--persona", default="", help="who answers (added to the prompt)")
    syn.add_argument("--passages", type=int, help="at most this many passages (the first)")
    syn.add_argument("--unit", choices=UNITS, default="chars", help="cut by (default chars)")
    syn.add_argument("--size", type=int, default=600, help="passage size in units (600)")
    syn.add_argument("--overlap", type=int, default=100, help="overlap in units (100)")
    syn.add_argument("--batch-size", type=int, default=8, help="passages per batch (8)")
    syn.add_argument("--max-new-tokens", type=int, default=256)
    syn.add_argument("--temperature", type=float, default=0.7)
    syn.add_argument("--greedy", action="store_true", help="greedy decoding")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--backend", choices=BACKENDS, default="auto")
    syn.add_argument("--output", choices=OUTPUTS, default="messages", help="row form")
    syn.add_argument("--name", default="", help="the new dataset (default <name>-synth)")
    syn.add_argument("--resume", metavar="JOB", help="continue a stopped or failed job")
    syn.add_argument("--templates", action="store_true", help="list the bundled templates")
    syn.add_argument("--job-dir", help=argparse.SUPPRESS)  # the Data tab's child process
    syn.set_defaults(func=cmd_synthesize)


def _templates() -> tuple[dict, str]:
    from studio.synth.templates import load_template, template_names

    found = [load_template(n) for n in template_names()]
    lines = [f"{t.name:<10} {t.form:<5} {t.language}  {t.description.get('en', '')}" for t in found]
    return {"templates": [t.to_dict() for t in found]}, "\n".join(lines)


def _settings(args):
    from studio.generate import GenerationSettings
    from studio.synth.job import SynthSettings
    from studio.synth.passages import PassageSettings
    from studio.synth.templates import load_template

    if not args.version or not args.model:
        raise CliError("give a dataset VERSION and --model (or --resume JOB)")
    return SynthSettings(
        source=args.version,
        model=args.model,
        template=load_template(args.template).to_dict(),
        persona=args.persona,
        passages=PassageSettings(unit=args.unit, size=args.size, overlap=args.overlap),
        limit=args.passages,
        generation=GenerationSettings(
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=0.9,
            greedy=args.greedy,
            seed=args.seed,
        ),
        batch_size=args.batch_size,
        backend=args.backend,
        output=args.output,
        name=args.name,
    )


def summary(job, status: dict) -> tuple[dict, str]:
    """The job's outcome as `--json` and as lines (also what the Data tab's report reads)."""
    report = job.report() or {}
    payload = {"job": job.id, **status, "report": report}
    lines = [
        f"job {job.id}: {status['state']}"
        + (f" ({status['reason']})" if status.get("reason") else ""),
        f"  backend: {WHY.get(status.get('backend_why'), status.get('backend'))}",
        f"  passages: {status.get('passages_done', 0):,}/{status.get('passages_total', 0):,}; "
        f"pairs kept: {status.get('accepted', 0):,}"
        + (f" of {report['pairs']:,} ({report['accepted_share']:.0%})" if report else ""),
    ]
    for reason, count in (status.get("rejected") or {}).items():
        lines.append(f"  rejected, {reason}: {count:,}")
    if status.get("tokens_per_s"):
        lines.append(
            f"  {status['tokens_per_s']:,} output tokens/s, {status['passages_per_s']} passages/s"
        )
    if status.get("version"):
        lines.append(f"  wrote {status['version']}")
    elif status["state"] in ("stopped", "failed", "interrupted"):
        lines.append(f"  continue with: python -m studio data synthesize --resume {job.id}")
    if status.get("message") and status["state"] != "completed":
        lines.append(f"  {status['message']}")
    return payload, "\n".join(lines)


def cmd_synthesize(args) -> tuple[dict, str]:
    from studio.synth.job import SynthJob, check_resumable, execute, new_job, open_job

    if args.templates:
        return _templates()
    ws = open_ws(args)
    if args.job_dir:  # started by the Data tab: the job directory is already written
        job = SynthJob(open_job(ws, args.job_dir.rstrip("/").rsplit("/", 1)[-1]).root)
    elif args.resume:
        job = open_job(ws, args.resume)
        check_resumable(job)
        job.clear_stop()
    else:
        job = new_job(ws, _settings(args))
        print(f"[synth] job {job.id}", file=sys.stderr, flush=True)

    def first_interrupt(*_):
        job.request_stop()
        print("[synth] stopping after this batch (Ctrl-C again: at once)", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first_interrupt)
    try:
        status = execute(ws, job, log=lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        signal.signal(signal.SIGINT, previous)
    return summary(job, status)
