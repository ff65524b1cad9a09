"""One error type for everything a user can cause and act on.

Every such error derives from `StudioError` (the packages' own classes keep their names and
their old bases too, so `except ValueError` still catches a bad config). Each carries a
stable `code` (its class's, in snake case, unless the class or the raise names one), the
parameters of its message, and `text(lang)`: the message in the user's language when the
locale files have `errors.<code>`, else the message as raised (in English). The front ends
catch `StudioError` for what the user did, and one last-resort handler each for the rest
(`crash_report`): a traceback in a log file and an apology that names it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import traceback
from pathlib import Path


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class StudioError(Exception):
    """An error the user can act on; its message says what happened and what to do."""

    code = "studio_error"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = _snake(cls.__name__)

    def __init__(self, *args, code: str | None = None, **params) -> None:
        super().__init__(*args)
        if code:
            self.code = code
        self.params = params

    def text(self, lang: str = "en") -> str:
        from studio.i18n import catalog, t

        key = f"errors.{self.code}"
        if key in catalog():
            return t(key, lang, **self.params)
        return str(self)

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, "code": self.code, "message": str(self)}


class InputError(StudioError, ValueError):
    """A value the user must correct (a setting, a choice, an empty prompt, data that leaves
    nothing to do); the message names it."""


def crash_log_dir(workspace: str | Path | None = None) -> Path:
    """Where last-resort tracebacks go: the logs of the workspace (the one named, else
    $STUDIO_WORKSPACE, else ./workspace) when that folder exists, else the system's
    temporary folder."""
    root = Path(workspace or os.environ.get("STUDIO_WORKSPACE") or "workspace")
    if root.is_dir():
        return root / "logs"
    return Path(tempfile.gettempdir()) / "studio-logs"


def crash_report(exc: BaseException, where: str, folder: Path | None = None) -> Path | None:
    """Write `exc`'s traceback to a new log file (in `folder`, else `crash_log_dir()`); its
    path, or None when even that failed."""
    try:
        folder = folder or crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        path = folder / f"crash-{where}-{stamp}.log"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        path.write_text(text, encoding="utf-8")
        return path
    except OSError:
        return None
