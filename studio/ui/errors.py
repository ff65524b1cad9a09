"""How the UI shows an error a user must act on.

A Gradio error toast vanishes after 10 s, and every output of the failed event keeps a bare
"Error" badge that must be closed before the field can be used (issue 20). A `ShownError`
stays until the user closes it and prints no traceback in the terminal (it is the user's
mistake, not the app's). The badges are hidden by the theme's CSS (`ERROR_CSS`), which also
titles the toast in the page's language: the toast says what happened.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from pathlib import Path

import gradio as gr

from studio.errors import StudioError, crash_report
from studio.i18n import t

log = logging.getLogger(__name__)

# Output components of a failed event: no "Error" badge over the field (the toast explains).
# Gradio titles a toast with its kind in English, whatever the error's title: in a Japanese
# page (the app sets <html lang>) the title is replaced.
ERROR_CSS = """
[data-testid="status-tracker"]:has(> .clear-status) { display: none !important; }
html[lang="ja"] .toast-title { font-size: 0 !important; }
html[lang="ja"] .toast-title::before { font-size: var(--text-md); }
html[lang="ja"] .toast-title.error::before { content: "エラー"; }
html[lang="ja"] .toast-title.warning::before { content: "注意"; }
html[lang="ja"] .toast-title.info::before { content: "お知らせ"; }
html[lang="ja"] .toast-title.success::before { content: "完了"; }
"""


class ShownError(gr.Error):
    """An error shown to the user until closed (its title comes from `ERROR_CSS`)."""

    def __init__(self, message: str = "Error raised.") -> None:
        super().__init__(message, duration=None, print_exception=False)


def error_text(exc: Exception, lang: str) -> str:
    """An error's message in the page's language: a `StudioError`'s localised text, else
    the message as raised."""
    return exc.text(lang) if isinstance(exc, StudioError) else str(exc)


def refusal(what: Exception | str, lang: str, escape: bool = False) -> str:
    """What a status line shows when the action it reports was refused: the error's text in
    the page's language (`error_text`) after a warning sign. Errors of an action without a
    status line of its own are raised instead, and `shown_errors` shows them as a toast."""
    text = error_text(what, lang) if isinstance(what, Exception) else what
    return "⚠️ " + (html.escape(text) if escape else text)


def _language(fn, args, kwargs) -> str | None:
    """The page's language when the handler takes it (a parameter named `lang`)."""
    try:
        lang = inspect.signature(fn).bind_partial(*args, **kwargs).arguments.get("lang")
    except (TypeError, ValueError):
        return None
    return lang if lang in ("ja", "en") else None


def _shown(exc: Exception, logs: Path, lang: str | None) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, StudioError):  # what the user asked cannot be done: its message
        return ShownError(exc.text(lang or "en"))
    path = crash_report(exc, "app", logs)  # a bug: told as one, with where its details are
    log.error("unexpected error (details in %s): %r", path, exc)
    params = {"name": type(exc).__name__, "error": exc, "log": path or logs}
    langs = [lang] if lang else ["ja", "en"]  # not knowing the page's language: both
    return ShownError(" / ".join(t("errors.unexpected", one, **params) for one in langs))


def shown_errors(fn, logs: Path):
    """`fn`, with every error shown the one way: a Gradio error as raised; a `StudioError`
    with its message; anything else (the last resort) written with its traceback to a log
    in `logs` and shown as an apology that names it. Generators: each step. The signature
    is kept (Gradio reads it)."""
    if fn is None or inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return fn
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _shown(exc, logs, _language(fn, args, kwargs)) from exc

        return steps

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _shown(exc, logs, _language(fn, args, kwargs)) from exc

    return call
