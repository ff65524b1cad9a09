"""`python -m studio <verb>`: the same library functions the UI calls, for scripts.

Every verb takes `--workspace` and `--json`. With `--json` exactly one JSON object is
printed on stdout (`{"ok": true, ...}` or `{"ok": false, "error": {...}}`); anything the
libraries print goes to stderr. The exit status is 0 on success, 1 on failure (a
`StudioError`, an OS error, or, as a last resort, an unexpected error whose traceback is
written to a log file the message names) and 2 for a usage error; `inspect` exits 3 when
it finds an error-level problem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from studio.cli import data, evaluate, export, guide, inspect, model, runs, tokens, train, workspace
from studio.cli.common import common_parser

# The verbs in the order `--help` lists them.
VERBS = (workspace, model, inspect, train, runs, export, guide, tokens, data, evaluate)


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="python -m studio",
        description="Tsumugi Studio from the command line: the same steps as the web UI.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.add_parser(verbs, common)
    return parser


# --- entry point -----------------------------------------------------------------------


def run(func: Callable, args) -> int:
    from studio.errors import StudioError, crash_log_dir, crash_report

    real_stdout = sys.stdout

    def fail(error: dict, text: str) -> int:
        if args.json:
            print(json.dumps({"ok": False, "error": error}, ensure_ascii=False), file=real_stdout)
        else:
            print(f"error: {text}", file=sys.stderr)
        return 1

    try:
        # With --json, whatever the libraries print must not corrupt the one JSON object.
        redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with redirect:
            payload, text = func(args)
    except StudioError as exc:  # what the user asked cannot be done: its message
        return fail(exc.to_dict(), str(exc))
    except OSError as exc:  # a file or folder: missing, unreadable, a full disk
        return fail({"type": type(exc).__name__, "code": "os_error", "message": str(exc)}, str(exc))
    except Exception as exc:  # noqa: BLE001  the last resort: a bug, told as one
        from studio.i18n import t

        log = crash_report(exc, "cli", crash_log_dir(getattr(args, "workspace", None)))
        where = log or "a log that could not be written"
        text = t("errors.unexpected", "en", name=type(exc).__name__, error=exc, log=where)
        error = {"type": type(exc).__name__, "code": "unexpected", "message": str(exc)}
        return fail({**error, "log": str(log) if log else None}, text)
    # A verb may report a finding through the exit status (inspect: 3 = errors found).
    status = payload.pop("exit_code", 0)
    # ... and whether what it did succeeded (train: a run that failed is not ok).
    ok = bool(payload.pop("ok", True))
    if args.json:
        print(json.dumps({"ok": ok, **payload}, ensure_ascii=False, default=str), file=real_stdout)
    else:
        print(text, file=real_stdout)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    return run(args.func, args)
