"""How the UI shows an error a user must act on.

A Gradio error toast vanishes after 10 s, and every output of the failed event keeps a bare
"Error" badge that must be closed before the field can be used (issue 20). A `ShownError`
stays until the user closes it and prints no traceback in the terminal (it is the user's
mistake, not the app's). The badges are hidden by the theme's CSS (`ERROR_CSS`), which also
titles the toast in the page's language: the toast says what happened.
"""

from __future__ import annotations

import gradio as gr

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
