"""What every verb shares: the common flags, the workspace, the error the user can act on
and the encoding progress line. Nothing in the library imports this package."""

from __future__ import annotations

import argparse
import sys

from studio.errors import StudioError


class CliError(StudioError, RuntimeError):
    """A failure the user can act on; its message is shown as is."""


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)"
    )
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return common


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="",
        help="embedded model name (default), a workspace model, a local folder or a hub id",
    )
    p.add_argument("--trust-remote-code", action="store_true", help="run code shipped with it")
    p.add_argument("--allow-pickle", action="store_true", help="allow *.bin pickle weights")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")


def open_ws(args):
    from studio.workspace import open_workspace

    return open_workspace(args.workspace)


def progress_printer(stream=None):
    """Encoding progress for a terminal: a bar redrawn in place on a TTY, else a line
    every few seconds (a log file, CI)."""
    import time

    stream = stream or sys.stderr
    tty = stream.isatty()
    shown = {"at": 0.0, "state": "", "width": 0}

    def show(progress) -> None:
        now = time.monotonic()
        line = progress.line()
        done = progress.state == "encoding" and progress.fraction == 1.0
        if tty:
            stream.write("\r" + line.ljust(shown["width"]) + ("\n" if done else ""))
            shown["width"] = 0 if done else len(line)
        elif progress.state != shown["state"] or now - shown["at"] >= 5 or done:
            stream.write(line + "\n")
            shown["at"] = now
        else:
            return
        shown["state"] = progress.state
        stream.flush()

    return show


def pull_printer(stream=None):
    """A Hub download's progress (`models.hub.PullProgress`): a line every few seconds."""
    import time

    stream = stream or sys.stderr
    shown = {"at": 0.0}

    def show(progress) -> None:
        if time.monotonic() - shown["at"] >= 2 or progress.done >= progress.total:
            print(f"[pull] {progress.line()}", file=stream, flush=True)
            shown["at"] = time.monotonic()

    return show
