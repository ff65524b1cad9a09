"""`guide`: the guided first run, its state, its steps run or skipped."""

from __future__ import annotations

import argparse

from studio.cli.common import CliError, open_ws
from studio.errors import StudioError


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    from studio.guide import STEPS

    gd = verbs.add_parser(
        "guide",
        parents=[common],
        help="the guided first run: where it stands; run or skip its steps",
        description="sample -> clean -> inspect -> train -> compare -> chat -> evaluate -> "
        "export, with the demo's settings. With no STEP, shows each step's state.",
    )
    gd.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        help=f"steps to run in order ({', '.join(STEPS)}), or `next`, or `all`",
    )
    gd.add_argument("--skip", nargs="+", default=[], metavar="STEP", help="mark steps skipped")
    gd.set_defaults(func=cmd_guide)


def cmd_guide(args) -> tuple[dict, str]:
    from studio import guide
    from studio.models.pool import ModelPool, pool_opener
    from studio.train.start import Blocked

    ws = open_ws(args)
    bad = [s for s in args.steps if s not in (*guide.STEPS, "all", "next")]
    bad += [s for s in args.skip if s not in guide.STEPS]
    if bad:
        raise CliError(f"unknown step {bad[0]!r}; the steps are: {', '.join(guide.STEPS)}")
    current = guide.states(ws)
    wanted: list[str] = []
    for step in args.steps:
        if step == "all":
            wanted += [s for s in guide.STEPS if current[s] != guide.DONE]
        elif step == "next":
            wanted += [s for s in [guide.first_open(current)] if s]
        else:
            wanted.append(step)
    for step in args.skip:
        guide.mark(ws, step, guide.SKIPPED)
    opener = pool_opener(ws, ModelPool())
    lines, done = [], {}
    try:
        for step in dict.fromkeys(wanted):
            done[step] = _guide_step(guide, ws, step, opener)
            lines.append(f"{step}: {done[step]}")
    except Blocked as exc:
        raise CliError(f"{step}: training is blocked: {exc}", code=exc.code) from exc
    except StudioError as exc:  # which step failed, with the error's own code
        raise CliError(f"{step}: {exc}", code=exc.code, **exc.params) from exc
    current = guide.states(ws)
    lines += [f"{n}. {s:<9} {current[s]}" for n, s in enumerate(guide.STEPS, 1)]
    return {"ran": done, "steps": current, "next": guide.next_step(ws)}, "\n".join(lines)


def _guide_step(guide, ws, step: str, opener) -> str:
    """Run one guide step; a line saying what it produced."""
    if step == "sample":
        s = guide.look_at_sample(ws)
        return f"{s.version}: {s.rows} documents, {s.mean_chars} characters on average"
    if step == "clean":
        r = guide.clean_sample(ws).report
        return f"{r['version']}: kept {r['rows_out']:,} of {r['rows_in']:,} documents"
    if step == "inspect":
        scan = guide.inspect_demo(ws).scan.to_dict()
        return (
            f"{scan['rows']} conversations, {100 * scan['trained_ratio']:.1f}% of tokens "
            f"trained, {'blocked' if scan['blocked'] else 'ready to train'}"
        )
    if step == "train":
        run = guide.train_demo(ws)
        state = guide.wait_for_training(ws, run)
        if state != "completed":
            raise guide.GuideError(
                f"run {run.id} ended {state}: python -m studio runs show {run.id}"
            )
        return f"run {run.id} completed"
    if step == "compare":
        rows = guide.compare_demo(ws, opener).summary()
        return "; ".join(f"{r['model']}: {r['eos']}/{r['replies']} end at EOS" for r in rows)
    if step == "chat":
        model, result = guide.chat_demo(ws, opener)
        return f"{model}: {result.text if result else ''}"
    if step == "evaluate":
        session = guide.evaluate_demo(ws, opener)
        return f"results {session['id']} (python -m studio eval --list)"
    exported = guide.export_demo(ws)
    return f"models/{exported.name} ({exported.bytes / 2**20:.1f} MiB)"
